# Rule train_model: one training stage from a backbone or an earlier model.
from pathlib import Path

import torch

from rank_distillm.logs import log_to
from rank_distillm.steps import train_model

torch.set_num_threads(snakemake.threads)
with log_to(snakemake.log[0]):
    train_model(
        snakemake.params.start,
        Path(snakemake.input.table),
        Path(snakemake.output.checkpoint),
        Path(snakemake.output.loss),
        snakemake.params.settings,
    )
