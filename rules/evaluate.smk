# Stage 6: per-query evaluation with ir_measures.


rule evaluate:
    input:
        manifests(),
        run=system_run,
    output:
        metrics=metrics_file("{split}", "{system}"),
    params:
        manifests=manifests(),
        dataset=lambda wildcards: dataset_id(wildcards.split),
        measures=config["measures"],
    log:
        f"{LOGS}/evaluate/{{split}}/{{system}}.log",
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/evaluate.py"
