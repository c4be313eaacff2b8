# Rule evaluate: per-query nDCG@10, RR@10, MAP@100 with ir_measures.
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import evaluate_run

p = snakemake.params
with log_to(snakemake.log[0]):
    evaluate_run(
        p.manifests,
        p.dataset,
        Path(snakemake.input.run),
        Path(snakemake.output.metrics),
        p.measures,
    )
