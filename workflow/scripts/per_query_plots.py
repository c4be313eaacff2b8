# Rule per_query_plots: each compared system's per-query scatter against the baseline.
from rank_distillm.logs import log_to
from rank_distillm.report.files import write_per_query_plots

with log_to(snakemake.log[0]):
    write_per_query_plots(snakemake.params.spec)
