# Rule model_zoo: the model-zoo table and plot.
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import model_zoo

p = snakemake.params
with log_to(snakemake.log[0]):
    model_zoo(
        p.cells,
        Path(snakemake.output.md),
        Path(snakemake.output.csv),
        Path(snakemake.output.png),
        title=p.title,
        notes=p.notes,
        measures=p.measures,
    )
