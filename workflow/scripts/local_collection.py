# Rule local_collection: register a corpus on disk (config collections) and build its docstore.
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import register_local_collection

with log_to(snakemake.log[0]):
    register_local_collection(
        snakemake.params.name, snakemake.params.entry, Path(snakemake.output.manifest)
    )
