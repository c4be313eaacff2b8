# Rule train_model: one training stage from a backbone or an earlier model.
from pathlib import Path

import torch

from rank_distillm.logs import log_to
from rank_distillm.steps import train_checkpoint

# A fixed thread count (config compute.train_threads), whatever --cores or the cluster
# grants: results depend on it through the floating-point order.
torch.set_num_threads(snakemake.params.threads)
p = snakemake.params
with log_to(snakemake.log[0]):
    train_checkpoint(
        p.start,
        Path(snakemake.input.table),
        p.manifests,
        p.dataset,
        Path(snakemake.output.checkpoint),
        Path(snakemake.output.loss),
        p.settings,
    )
