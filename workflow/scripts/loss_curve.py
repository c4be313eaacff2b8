# Rule loss_curve: one trained model's loss per optimizer step.
from rank_distillm.logs import log_to
from rank_distillm.report.files import write_loss_plot

with log_to(snakemake.log[0]):
    write_loss_plot(snakemake.input.loss, snakemake.output.png, snakemake.params.label)
