# Rule bm25_index: PISA index of one corpus.
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import build_bm25_index

with log_to(snakemake.log[0]):
    build_bm25_index(snakemake.params.manifests, snakemake.params.corpus, Path(snakemake.output[0]))
