# Rule environment: the config used and the package versions, for the report.
from rank_distillm.logs import log_to
from rank_distillm.report.files import write_environment

with log_to(snakemake.log[0]):
    write_environment(snakemake.params.config, snakemake.output.html, snakemake.output.config)
