# Rule hard_negative_table: first-stage candidates with qrels labels (stage 1 data).
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import prepare_hard_negative_table

p = snakemake.params
with log_to(snakemake.log[0]):
    prepare_hard_negative_table(
        p.manifests,
        p.dataset,
        Path(snakemake.input.first_stage),
        Path(snakemake.output.table),
        Path(snakemake.output.stats),
        num_queries=p.num_queries,
        depth=p.depth,
        seed=p.seed,
        relevance_level=p.relevance_level,
    )
