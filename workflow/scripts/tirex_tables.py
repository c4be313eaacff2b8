# Rule tirex_tables: TIREx nDCG@10 per corpus group, the paper's aggregates, and a plot.
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import write_tirex_files

p = snakemake.params
with log_to(snakemake.log[0]):
    write_tirex_files(
        p.cells,
        p.tirex_config,
        p.rule,
        {name: Path(path) for name, path in snakemake.output.items()},
        p.title,
    )
