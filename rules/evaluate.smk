# Stage 6: per-query evaluation with ir_measures.


rule evaluate:
    input:
        EXP.manifests(),
        run=lambda wildcards: EXP.system_run(wildcards.split, wildcards.first_stage, wildcards.system),
    output:
        metrics=EXP.metrics_file("{split}", "{first_stage}", "{system}"),
    params:
        manifests=EXP.manifests(),
        dataset=lambda wildcards: EXP.dataset_id(wildcards.split),
        measures=config["measures"],
        relevance_level=lambda wildcards: EXP.evaluation[wildcards.split].relevance_level,
    log:
        EXP.log("evaluate", "{split}", "{first_stage}", "{system}"),
    benchmark:
        EXP.benchmark("evaluate", "{split}", "{first_stage}", "{system}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/evaluate.py"
