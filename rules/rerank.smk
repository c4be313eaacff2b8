# Stage 5: re-ranking each first stage's top passages with each model and published
# checkpoint.


rule rerank:
    input:
        lambda wildcards: EXP.text_inputs(wildcards.split),
        lambda wildcards: local([EXP.reranker_path(wildcards.reranker)]),
        first_stage=lambda wildcards: EXP.first_stage_run(wildcards.first_stage, wildcards.split),
    output:
        run=EXP.run_file("{split}", "{first_stage}", "{reranker}"),
    params:
        checkpoint=lambda wildcards: EXP.reranker_path(wildcards.reranker),
        manifests=EXP.manifests(),
        dataset=lambda wildcards: EXP.dataset_id(wildcards.split),
        depth=lambda wildcards: EXP.first_stages[wildcards.first_stage].depth,
        batch_size=config["rerank"]["batch_size"],
    resources:
        gpu=1,
        mem_mb=COMPUTE["rerank_mem_mb"],
        runtime=60,
    log:
        EXP.log("rerank", "{split}", "{first_stage}", "{reranker}"),
    benchmark:
        EXP.benchmark("rerank", "{split}", "{first_stage}", "{reranker}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/rerank.py"
