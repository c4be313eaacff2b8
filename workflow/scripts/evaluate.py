# Rule evaluate: per-query measures of one run with ir_measures.
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import write_metrics

p = snakemake.params
with log_to(snakemake.log[0]):
    write_metrics(
        p.manifests,
        p.dataset,
        Path(snakemake.input.run),
        Path(snakemake.output.metrics),
        p.measures,
        p.relevance_level,
    )
