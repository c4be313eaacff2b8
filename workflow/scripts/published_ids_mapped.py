# Rule published_ids_mapped: the archive's Cranfield first-stage run with ir_datasets'
# query ids (cran.qry's .I numbers mapped to 1, 2, ... in file order), for re-ranking.
from rank_distillm.evaluation.published import IrDatasetsJudgements, write_ids_mapped
from rank_distillm.logs import log_to

with log_to(snakemake.log[0]):
    numbers = IrDatasetsJudgements(snakemake.params.manifests).cranfield_numbers()
    for source, target in snakemake.params.runs.items():
        write_ids_mapped(source, target, numbers)
