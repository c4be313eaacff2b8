# Rule model_zoo: the model-zoo tables (md, csv, tex, html), the tests and the bar chart.
from rank_distillm.logs import log_to
from rank_distillm.report.files import write_model_zoo_files

with log_to(snakemake.log[0]):
    write_model_zoo_files(snakemake.params.spec)
