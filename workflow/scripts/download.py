# Rule download: fetch one configured file and verify its MD5 (the configured one, else
# the one recorded in checksums/<file>.md5 at the first download, which it records).
from pathlib import Path

from rank_distillm.data.download import fetch
from rank_distillm.logs import log_to

with log_to(snakemake.log[0]):
    fetch(
        snakemake.params.url,
        Path(snakemake.output[0]),
        snakemake.params.md5,
        snakemake.params.checksum_file,
    )
