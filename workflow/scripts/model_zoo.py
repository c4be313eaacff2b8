# Rule model_zoo: the model-zoo table and plot.
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import write_model_zoo_files

p = snakemake.params
with log_to(snakemake.log[0]):
    write_model_zoo_files(
        p.cells,
        {name: Path(path) for name, path in snakemake.output.items()},
        first_stages=p.first_stages,
        rows=p.rows,
        evaluation=p.evaluation,
        relevance_levels=p.relevance_levels,
        references=p.references,
        tirex_cells=p.tirex_cells,
        tirex_config=p.tirex_config,
        tirex_rule=p.tirex_rule,
        tirex_stage=p.tirex_stage,
        title=p.title,
        notes=p.notes,
        measures=p.measures,
    )
