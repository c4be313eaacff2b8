# Stage 4: fine-tuning (stage 1 hard negatives, stage 2 distillation; any chain of them).


rule tiny_backbone:
    input:
        EXP.manifests(),
    output:
        directory(f"{EXP.root}/backbones/{{backbone}}"),
    params:
        manifests=EXP.manifests(),
        collection=EXP.collection,
        settings=lambda wildcards: EXP.backbones[wildcards.backbone].tiny,
        portable_numerics=COMPUTE["portable_numerics"],
    log:
        EXP.log("train", "backbone-{backbone}"),
    benchmark:
        EXP.benchmark("train", "backbone-{backbone}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/tiny_backbone.py"


rule train_model:
    input:
        lambda wildcards: local([EXP.model_start(wildcards.model)]),
        EXP.text_inputs("train"),
        table=lambda wildcards: EXP.model_table(wildcards.model),
    output:
        checkpoint=directory(EXP.checkpoint_dir("{model}")),
        loss=f"{EXP.root}/models/{{model}}/loss.csv",
    params:
        start=lambda wildcards: EXP.model_start(wildcards.model),
        settings=lambda wildcards: training_settings(wildcards.model),
        manifests=EXP.manifests(),
        dataset=EXP.train_dataset,
        threads=COMPUTE["train_threads"],
        portable_numerics=COMPUTE["portable_numerics"],
    threads: COMPUTE["train_threads"]
    resources:
        gpu=COMPUTE["train_gpus"],
        mem_mb=COMPUTE["train_mem_mb"],
        runtime=lambda wildcards: EXP.train_runtime_minutes(wildcards.model),
    log:
        EXP.log("train", "{model}"),
    benchmark:
        EXP.benchmark("train", "{model}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/train_model.py"
