# Rule bm25_run: BM25 top-k run of one query set.
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import retrieve_bm25_run

p = snakemake.params
with log_to(snakemake.log[0]):
    retrieve_bm25_run(
        p.manifests,
        p.dataset,
        Path(snakemake.input.index),
        Path(snakemake.output.run),
        settings=p.settings,
        num_results=p.num_results,
    )
