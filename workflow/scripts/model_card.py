# Rule model_card: the model's Hugging Face card beside its checkpoint folder.
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import write_model_readme

with log_to(snakemake.log[0]):
    write_model_readme(snakemake.params.facts, Path(snakemake.output.card))
