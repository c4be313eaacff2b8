# Rule demo_data: generate the embedded demo collection.
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import make_demo

with log_to(snakemake.log[0]):
    make_demo(
        snakemake.params.settings,
        Path(snakemake.output.manifest),
        snakemake.params.name,
        snakemake.params.scoreddocs,
    )
