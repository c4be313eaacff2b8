# Stage 3b: stage-1 training tables: a first stage's candidates for the training queries
# with qrels labels as targets (ids only; texts are looked up when training).


rule hard_negative_table:
    input:
        EXP.manifests(),
        first_stage=lambda wildcards: EXP.first_stage_run(wildcards.first_stage, "train"),
    output:
        table=f"{EXP.root}/training/hard-negatives/{{first_stage}}.parquet",
        stats=f"{EXP.root}/training/hard-negatives/{{first_stage}}.json",
    params:
        manifests=EXP.manifests(),
        dataset=EXP.train_dataset,
        num_queries=EXP.hard_negatives["num_queries"],
        depth=EXP.hard_negatives["depth"],
        seed=EXP.hard_negatives["seed"],
        relevance_level=EXP.hard_negatives["relevance_level"],
    resources:
        mem_mb=COMPUTE["prepare_mem_mb"],
        runtime=240,
    log:
        EXP.log("hard-negatives", "{first_stage}"),
    benchmark:
        EXP.benchmark("hard-negatives", "{first_stage}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/hard_negative_table.py"
