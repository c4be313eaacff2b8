# Rule docstore: build a corpus's ir_datasets docstore once, before jobs read it.
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import write_docstore_marker

with log_to(snakemake.log[0]):
    write_docstore_marker(
        snakemake.params.manifests, snakemake.params.corpus, Path(snakemake.output.ready)
    )
