# Stage 5: re-ranking every (first stage, evaluation set) cell with each model and
# published checkpoint: one job per checkpoint, which loads it once.


rule rerank:
    input:
        EXP.manifests(),
        lambda wildcards: local([EXP.reranker_path(wildcards.reranker)]),
        [EXP.text_inputs(split) for _, split in EXP.pairs],
        first_stages=[EXP.first_stage_run(stage, split) for stage, split in EXP.pairs],
    output:
        runs=[EXP.run_file(split, stage, "{reranker}") for stage, split in EXP.pairs],
    params:
        checkpoint=lambda wildcards: EXP.reranker_path(wildcards.reranker),
        manifests=EXP.manifests(),
        jobs=lambda wildcards: [
            {
                "dataset": EXP.dataset_id(split),
                "first_stage_run": EXP.first_stage_run(stage, split),
                "out_run": EXP.run_file(split, stage, wildcards.reranker),
                "depth": EXP.first_stages[stage].depth,
            }
            for stage, split in EXP.pairs
        ],
        batch_size=config["rerank"]["batch_size"],
        precision=config["rerank"]["precision"],
        portable_numerics=COMPUTE["portable_numerics"],
    resources:
        gpu=1,
        mem_mb=COMPUTE["rerank_mem_mb"],
        runtime=30 + 10 * len(EXP.pairs),
    log:
        EXP.log("rerank", "{reranker}"),
    benchmark:
        EXP.benchmark("rerank", "{reranker}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/rerank.py"
