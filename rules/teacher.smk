# Stage 3: teacher runs and stage-2 training tables (ids, ranks and targets; texts are
# looked up when training).


rule simulated_teacher_run:
    input:
        EXP.manifests(),
        first_stage=lambda wildcards: EXP.first_stage_run(wildcards.first_stage, wildcards.split),
    output:
        run=f"{EXP.root}/runs/{{split}}/{{first_stage}}/{{simulated}}.run",
    params:
        manifests=EXP.manifests(),
        dataset=lambda wildcards: EXP.dataset_id(wildcards.split),
        depth=lambda wildcards: (
            EXP.teachers[wildcards.simulated].depth
            if wildcards.split == "train"
            else EXP.first_stages[wildcards.first_stage].depth
        ),
        noise=lambda wildcards: EXP.teachers[wildcards.simulated].noise,
        seed=lambda wildcards: EXP.teachers[wildcards.simulated].seed,
    log:
        EXP.log("teacher", "{split}", "{first_stage}", "{simulated}"),
    benchmark:
        EXP.benchmark("teacher", "{split}", "{first_stage}", "{simulated}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/simulated_teacher.py"


rule generate_teacher_run:
    input:
        lambda wildcards: EXP.text_inputs(wildcards.split),
        lambda wildcards: local([EXP.teachers[wildcards.generated].generate["model"]]),
        first_stage=lambda wildcards: EXP.first_stage_run(wildcards.first_stage, wildcards.split),
    output:
        run=f"{EXP.root}/runs/{{split}}/{{first_stage}}/{{generated}}.run",
        stats=f"{EXP.root}/runs/{{split}}/{{first_stage}}/{{generated}}.json",
    params:
        manifests=EXP.manifests(),
        dataset=lambda wildcards: EXP.dataset_id(wildcards.split),
        settings=lambda wildcards: generation_settings(wildcards.generated, wildcards.split, wildcards.first_stage),
        num_queries=lambda wildcards: generation_queries(wildcards.generated, wildcards.split),
        portable_numerics=COMPUTE["portable_numerics"],
    resources:
        gpu=1,
        mem_mb=COMPUTE["rerank_mem_mb"],
        runtime=lambda wildcards: (
            EXP.generation_runtime_minutes(wildcards.generated)
            if wildcards.split == "train"
            else 60
        ),
    log:
        EXP.log("teacher", "{split}", "{first_stage}", "{generated}"),
    benchmark:
        EXP.benchmark("teacher", "{split}", "{first_stage}", "{generated}")
    conda:
        "../envs/vllm.yaml"
    script:
        "../workflow/scripts/generate_teacher_run.py"


# generate.shards > 1: the training run is generated in shards, one GPU job each (scatter),
# then checked and merged into the run the teacher table reads (gather). The shard count
# is in the file names, so shards of another partition are never taken for this one's.
rule generate_teacher_shard:
    input:
        EXP.text_inputs("train"),
        lambda wildcards: local([EXP.teachers[wildcards.generated].generate["model"]]),
        first_stage=lambda wildcards: EXP.first_stage_run(wildcards.first_stage, "train"),
    output:
        run=f"{EXP.root}/runs/train/{{first_stage}}/{{generated}}.shards/{{shard}}-of-{{shards}}.run",
        stats=f"{EXP.root}/runs/train/{{first_stage}}/{{generated}}.shards/{{shard}}-of-{{shards}}.json",
    params:
        manifests=EXP.manifests(),
        dataset=EXP.train_dataset,
        settings=lambda wildcards: generation_settings(wildcards.generated, "train", wildcards.first_stage),
        num_queries=lambda wildcards: generation_queries(wildcards.generated, "train"),
        shard=lambda wildcards: (int(wildcards.shard), int(wildcards.shards)),
        portable_numerics=COMPUTE["portable_numerics"],
    resources:
        gpu=1,
        mem_mb=COMPUTE["rerank_mem_mb"],
        runtime=lambda wildcards: EXP.generation_runtime_minutes(wildcards.generated),
    log:
        EXP.log("teacher", "train", "{first_stage}", "{generated}.shards", "{shard}-of-{shards}"),
    benchmark:
        EXP.benchmark("teacher", "train", "{first_stage}", "{generated}.shards", "{shard}-of-{shards}")
    conda:
        "../envs/vllm.yaml"
    script:
        "../workflow/scripts/generate_teacher_run.py"


rule merge_teacher_shards:
    input:
        first_stage=lambda wildcards: EXP.first_stage_run(wildcards.first_stage, "train"),
        shard_runs=lambda wildcards: teacher_shard_files(wildcards, "run"),
        shard_stats=lambda wildcards: teacher_shard_files(wildcards, "json"),
    output:
        run=f"{EXP.root}/runs/train/{{first_stage}}/{{sharded}}.run",
        stats=f"{EXP.root}/runs/train/{{first_stage}}/{{sharded}}.json",
    params:
        settings=lambda wildcards: generation_settings(wildcards.sharded, "train", wildcards.first_stage),
        num_queries=lambda wildcards: generation_queries(wildcards.sharded, "train"),
    resources:
        mem_mb=COMPUTE["prepare_mem_mb"],
        runtime=60,
    log:
        EXP.log("teacher", "train", "{first_stage}", "{sharded}"),
    benchmark:
        EXP.benchmark("teacher", "train", "{first_stage}", "{sharded}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/merge_teacher_shards.py"


ruleorder: merge_teacher_shards > generate_teacher_run


# Below the teacher's depth, the table is the paper's sub-sample: the teacher's pairs in
# the first stage's top {depth}, in teacher order (so it also reads the first-stage run).
rule teacher_table:
    input:
        EXP.manifests(),
        unpack(
            lambda wildcards: EXP.teacher_table_inputs(
                wildcards.teacher,
                None if wildcards.queries == "all" else int(wildcards.queries),
                int(wildcards.depth),
            )
        ),
    output:
        table=f"{EXP.root}/training/teachers/{{teacher}}.{{queries}}x{{depth}}.parquet",
        stats=f"{EXP.root}/training/teachers/{{teacher}}.{{queries}}x{{depth}}.json",
    params:
        manifests=EXP.manifests(),
        dataset=EXP.train_dataset,
        num_queries=lambda wildcards: None if wildcards.queries == "all" else int(wildcards.queries),
        depth=lambda wildcards: int(wildcards.depth),
        seed=lambda wildcards: EXP.teachers[wildcards.teacher].seed,
    resources:
        mem_mb=COMPUTE["prepare_mem_mb"],
        runtime=120,
    log:
        EXP.log("teacher", "table-{teacher}.{queries}x{depth}"),
    benchmark:
        EXP.benchmark("teacher", "table-{teacher}.{queries}x{depth}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/teacher_table.py"
