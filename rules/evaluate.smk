# Stage 6: per-query evaluation with ir_measures: every cell of each re-ranker in one job,
# and each first-stage or teacher run on its own.


rule evaluate_reranker:
    input:
        EXP.manifests(),
        runs=[EXP.run_file(split, stage, "{reranker}") for stage, split in EXP.pairs],
    output:
        metrics=[EXP.metrics_file(split, stage, "{reranker}") for stage, split in EXP.pairs],
    params:
        manifests=EXP.manifests(),
        jobs=lambda wildcards: [
            metrics_job(split, stage, wildcards.reranker) for stage, split in EXP.pairs
        ],
        measures=config["measures"],
    log:
        EXP.log("evaluate", "{reranker}"),
    benchmark:
        EXP.benchmark("evaluate", "{reranker}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/evaluate.py"


rule evaluate:
    input:
        EXP.manifests(),
        run=lambda wildcards: EXP.system_run(wildcards.split, wildcards.first_stage, wildcards.run_system),
    output:
        metrics=EXP.metrics_file("{split}", "{first_stage}", "{run_system}"),
    params:
        manifests=EXP.manifests(),
        jobs=lambda wildcards: [
            metrics_job(wildcards.split, wildcards.first_stage, wildcards.run_system)
        ],
        measures=config["measures"],
    log:
        EXP.log("evaluate", "{split}", "{first_stage}", "{run_system}"),
    benchmark:
        EXP.benchmark("evaluate", "{split}", "{first_stage}", "{run_system}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/evaluate.py"
