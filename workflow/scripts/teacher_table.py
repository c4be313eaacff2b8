# Rule teacher_table: a teacher run cut to queries x depth (stage 2 data), sub-sampled to
# the first stage's top depth when the depth is below the teacher's.
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import prepare_teacher_table

p = snakemake.params
first_stage, published = snakemake.input.get("first_stage"), snakemake.input.get("published")
with log_to(snakemake.log[0]):
    prepare_teacher_table(
        p.manifests,
        p.dataset,
        Path(snakemake.input.teacher_run),
        Path(snakemake.output.table),
        Path(snakemake.output.stats),
        num_queries=p.num_queries,
        depth=p.depth,
        seed=p.seed,
        first_stage_run=Path(first_stage) if first_stage else None,
        published=Path(published) if published else None,
    )
