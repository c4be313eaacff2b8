# Rule benchmark_summary: runtime and peak memory of every job, from its benchmark file.
from rank_distillm.logs import log_to
from rank_distillm.report.files import write_benchmark_summary

with log_to(snakemake.log[0]):
    write_benchmark_summary(snakemake.params.folders, snakemake.output.html, snakemake.output.png)
