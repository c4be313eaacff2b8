# Target `tables`: rebuild the tables and plots from the metrics on disk, nothing upstream.
from rank_distillm.logs import log_to
from rank_distillm.report.files import rebuild_tables

with log_to(snakemake.log[0]):
    rebuild_tables(snakemake.params.spec)
