# Rule tirex_tables: TIREx nDCG@10 per corpus group with significance markers, the
# paper's aggregates, in md, csv, tex and html, and the per-group chart.
from rank_distillm.logs import log_to
from rank_distillm.report.files import write_tirex_files

with log_to(snakemake.log[0]):
    write_tirex_files(snakemake.params.spec)
