# Rule published_tables: the paper's tables from the published runs, beside the printed.
from rank_distillm.logs import log_to
from rank_distillm.report.published_tables import write_published_tables

with log_to(snakemake.log[0]):
    write_published_tables(snakemake.params.spec)
