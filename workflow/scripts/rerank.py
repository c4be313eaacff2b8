# Rule rerank: re-rank every first-stage cell with one checkpoint.
from rank_distillm.model import numerics

# First, before torch starts (config compute.portable_numerics).
numerics.pin(snakemake.params.portable_numerics)

import torch  # noqa: E402

from rank_distillm.logs import log_to  # noqa: E402
from rank_distillm.steps import rerank_first_stages  # noqa: E402

torch.set_num_threads(snakemake.threads)
p = snakemake.params
with log_to(snakemake.log[0]):
    rerank_first_stages(
        p.checkpoint,
        p.manifests,
        p.jobs,
        batch_size=p.batch_size,
        tag=snakemake.wildcards.reranker,
        precision=p.precision,
    )
