# Rule tiny_backbone: WordPiece tokenizer + randomly initialised tiny ELECTRA.
from pathlib import Path

from rank_distillm.model import numerics

# First, before torch starts (config compute.portable_numerics): the random
# initialisation runs ATen kernels too.
numerics.pin(snakemake.params.portable_numerics)

from rank_distillm.logs import log_to  # noqa: E402
from rank_distillm.steps import build_tiny_backbone  # noqa: E402

p = snakemake.params
with log_to(snakemake.log[0]):
    build_tiny_backbone(p.manifests, p.collection, p.settings, Path(snakemake.output[0]))
