# Rule rerank: re-rank every first-stage cell with one checkpoint.
import torch

from rank_distillm.logs import log_to
from rank_distillm.steps import rerank_first_stages

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
