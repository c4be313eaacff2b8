# Rule published_runs: stream the authors' archive once, check its MD5 (configured, or
# recorded at the first download) and write the runs the config needs (an empty file for
# an optional run the archive lacks).
from rank_distillm.data.published_archive import extract_runs
from rank_distillm.logs import log_to

spec = snakemake.params.spec
with log_to(snakemake.log[0]):
    extract_runs(
        spec.archive, spec.run_files(), spec.md5, spec.checksum_file, spec.optional_entries()
    )
