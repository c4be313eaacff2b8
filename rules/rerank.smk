# Stage 5: re-ranking the first stage's top passages with each model.


rule rerank:
    input:
        manifests(),
        checkpoint=checkpoint_dir("{model}"),
        first_stage=lambda wildcards: first_stage_run(wildcards.split),
    output:
        run=f"{RESULTS}/runs/{{split}}/{{model}}.run",
    params:
        manifests=manifests(),
        dataset=lambda wildcards: dataset_id(wildcards.split),
        depth=config["rerank"]["depth"],
        batch_size=config["rerank"]["batch_size"],
    resources:
        gpu=1,
    log:
        f"{LOGS}/rerank/{{split}}/{{model}}.log",
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/rerank.py"
