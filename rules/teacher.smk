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
        settings=lambda wildcards: {
            **EXP.teachers[wildcards.generated].generate,
            "depth": (
                EXP.teachers[wildcards.generated].depth
                if wildcards.split == "train"
                else EXP.first_stages[wildcards.first_stage].depth
            ),
        },
        num_queries=lambda wildcards: (
            EXP.teachers[wildcards.generated].queries if wildcards.split == "train" else None
        ),
        portable_numerics=COMPUTE["portable_numerics"],
    resources:
        gpu=1,
        mem_mb=COMPUTE["rerank_mem_mb"],
        runtime=lambda wildcards: 600 if wildcards.split == "train" else 60,
    log:
        EXP.log("teacher", "{split}", "{first_stage}", "{generated}"),
    benchmark:
        EXP.benchmark("teacher", "{split}", "{first_stage}", "{generated}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/generate_teacher_run.py"


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
