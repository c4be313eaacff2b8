# Stage 4: fine-tuning (stage 1 hard negatives, stage 2 distillation; any chain of them).


rule tiny_backbone:
    input:
        manifests(),
    output:
        directory(f"{RESULTS}/backbones/{{backbone}}"),
    params:
        manifests=manifests(),
        collection=config["collection"],
        settings=lambda wildcards: BACKBONES[wildcards.backbone]["tiny"],
    log:
        f"{LOGS}/train/backbone-{{backbone}}.log",
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/tiny_backbone.py"


rule train_model:
    input:
        model_start_inputs,
        table=model_table,
    output:
        checkpoint=directory(checkpoint_dir("{model}")),
        loss=f"{RESULTS}/models/{{model}}/loss.csv",
    params:
        start=model_start,
        settings=training_settings,
    threads: workflow.cores
    resources:
        gpu=1,
    log:
        f"{LOGS}/train/{{model}}.log",
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/train_model.py"
