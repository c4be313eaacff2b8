# Rule bm25_index: PISA index of the collection.
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import bm25_index

with log_to(snakemake.log[0]):
    bm25_index(snakemake.params.manifests, snakemake.params.collection, Path(snakemake.output[0]))
