# Rules evaluate and evaluate_reranker: per-query measures of runs with ir_measures.
from rank_distillm.logs import log_to
from rank_distillm.steps import write_metrics

p = snakemake.params
with log_to(snakemake.log[0]):
    write_metrics(p.manifests, p.jobs, p.measures)
