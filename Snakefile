# Rank-DistiLLM: distilling LLM re-rankers into monoELECTRA cross-encoders.
# `snakemake --cores all` runs the embedded offline demo (config.yaml); presets in
# configs/ switch to the paper's data. See README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/download.smk"
include: "rules/retrieve.smk"
include: "rules/teacher.smk"
include: "rules/train.smk"
include: "rules/rerank.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    input:
        model_zoo_outputs(),
    default_target: True
