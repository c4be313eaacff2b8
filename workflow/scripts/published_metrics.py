# Rule published_metrics: per-query nDCG@10 of the published runs by the authors' rules.
from rank_distillm.logs import log_to
from rank_distillm.published_eval import IrDatasetsJudgements, write_published_metrics

spec = snakemake.params.spec
with log_to(snakemake.log[0]):
    write_published_metrics(spec, IrDatasetsJudgements(spec.manifests))
