# Rule simulated_teacher_run: the demo's noisy-oracle teacher run.
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import write_simulated_teacher_run

p = snakemake.params
with log_to(snakemake.log[0]):
    write_simulated_teacher_run(
        p.manifests,
        p.dataset,
        Path(snakemake.input.first_stage),
        Path(snakemake.output.run),
        depth=p.depth,
        noise=p.noise,
        seed=p.seed,
    )
