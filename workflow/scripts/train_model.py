# Rule train_model: one training stage from a backbone or an earlier model, in one
# process per GPU the job was given (compute.train_gpus), or one process on a CPU.
from pathlib import Path

from rank_distillm.model import numerics

# First, before torch starts (config compute.portable_numerics): ATen, MKL and OpenMP read
# their settings as they load. The processes launch() starts inherit the environment.
numerics.pin(snakemake.params.portable_numerics)

import torch  # noqa: E402

from rank_distillm.logs import log_to  # noqa: E402
from rank_distillm.steps import train_checkpoint  # noqa: E402
from rank_distillm.training.launch import launch, training_processes  # noqa: E402

if __name__ == "__main__":  # launch() starts fresh processes that import this file
    p = snakemake.params
    # A fixed thread count (config compute.train_threads), whatever --cores or the cluster
    # grants: results depend on it through the floating-point order.
    torch.set_num_threads(p.threads)
    with log_to(snakemake.log[0]):
        launch(
            training_processes(snakemake.resources.gpu),
            train_checkpoint,
            p.start,
            Path(snakemake.input.table),
            p.manifests,
            p.dataset,
            Path(snakemake.output.checkpoint),
            Path(snakemake.output.loss),
            p.settings,
            threads=p.threads,
        )
