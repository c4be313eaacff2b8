# Rule download: fetch one configured file and verify its MD5.
from pathlib import Path

from rank_distillm.download import download
from rank_distillm.logs import log_to

with log_to(snakemake.log[0]):
    download(snakemake.params.url, Path(snakemake.output[0]), snakemake.params.md5)
