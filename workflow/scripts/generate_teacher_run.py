# Rules generate_teacher_run and generate_teacher_shard: an open LLM re-ranks the first
# stage's top candidates (of all the sampled queries, or of one shard of them).
from pathlib import Path

from rank_distillm.model import numerics

# First, before torch starts (config compute.portable_numerics).
numerics.pin(snakemake.params.portable_numerics)

import torch  # noqa: E402

from rank_distillm.logs import log_to  # noqa: E402
from rank_distillm.steps import write_generated_teacher_run  # noqa: E402

# A fixed thread count (the rule's: one), whatever --cores or the cluster gives the job:
# on a CPU, the model's floating-point order, and so a greedy answer, depends on it.
torch.set_num_threads(snakemake.threads)
p = snakemake.params
with log_to(snakemake.log[0]):
    write_generated_teacher_run(
        p.manifests,
        p.dataset,
        Path(snakemake.input.first_stage),
        Path(snakemake.output.run),
        Path(snakemake.output.stats),
        p.settings,
        p.num_queries,
        tag=snakemake.wildcards.generated,
        shard=p.get("shard"),
    )
