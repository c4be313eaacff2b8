# Rank-DistiLLM: distilling LLM re-rankers into monoELECTRA cross-encoders.
# `snakemake --cores all` runs the embedded offline demo (config.yaml);
# `snakemake --configfile configs/paper.yaml` runs the paper instead (a preset replaces
# the demo's config; later --configfile files override single values). See README.md.
from snakemake.utils import min_version

min_version("9.0")


if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/download.smk"
include: "rules/published.smk"
include: "rules/retrieve.smk"
include: "rules/teacher.smk"
include: "rules/hard_negatives.smk"
include: "rules/train.smk"
include: "rules/rerank.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
include: "rules/model_card.smk"


report: "workflow/report/workflow.rst"


rule all:
    input:
        REPORT.targets(),
        expand(rules.model_card.output.card, model=EXP.models),
        list(PUBLISHED.table_files().values()) if PUBLISHED else [],
    default_target: True
