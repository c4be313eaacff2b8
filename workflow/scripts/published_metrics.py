# Rule published_metrics: per-query nDCG@10 of the published runs by the authors' rules.
from rank_distillm.evaluation.published import IrDatasetsJudgements, write_published_metrics
from rank_distillm.logs import log_to

spec = snakemake.params.spec
with log_to(snakemake.log[0]):
    write_published_metrics(spec, IrDatasetsJudgements(spec.manifests))
