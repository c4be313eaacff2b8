# Rule rerank: re-rank a first-stage run with a checkpoint.
from pathlib import Path

import torch

from rank_distillm.logs import log_to
from rank_distillm.steps import rerank_first_stage

torch.set_num_threads(snakemake.threads)
p = snakemake.params
with log_to(snakemake.log[0]):
    rerank_first_stage(
        p.checkpoint,
        p.manifests,
        p.dataset,
        Path(snakemake.input.first_stage),
        Path(snakemake.output.run),
        depth=p.depth,
        batch_size=p.batch_size,
        tag=snakemake.wildcards.reranker,
    )
