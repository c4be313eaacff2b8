# Rule tiny_backbone: WordPiece tokenizer + randomly initialised tiny ELECTRA.
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import build_tiny_backbone

p = snakemake.params
with log_to(snakemake.log[0]):
    build_tiny_backbone(p.manifests, p.collection, p.settings, Path(snakemake.output[0]))
