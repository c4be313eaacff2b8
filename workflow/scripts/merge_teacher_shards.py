# Rule merge_teacher_shards: the shards' runs of a generated teacher, checked and merged.
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import write_merged_teacher_run

p = snakemake.params
with log_to(snakemake.log[0]):
    write_merged_teacher_run(
        Path(snakemake.input.first_stage),
        snakemake.input.shard_runs,
        snakemake.input.shard_stats,
        Path(snakemake.output.run),
        Path(snakemake.output.stats),
        p.settings,
        p.num_queries,
        tag=snakemake.wildcards.sharded,
    )
