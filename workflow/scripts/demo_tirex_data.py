# Rule demo_tirex_data: generate the demo's TIREx-like corpora.
from pathlib import Path

from rank_distillm.logs import log_to
from rank_distillm.steps import make_demo_tirex

with log_to(snakemake.log[0]):
    # Each corpus goes to <folder>/<name>/: the folder above the first manifest's.
    make_demo_tirex(snakemake.params.settings, Path(snakemake.output.manifests[0]).parents[1])
