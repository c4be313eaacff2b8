# Stage 3: teacher runs and training tables (texts joined, targets attached).


rule simulated_teacher_run:
    input:
        manifests(),
        first_stage=lambda wildcards: first_stage_run(wildcards.split),
    output:
        run=f"{RESULTS}/runs/{{split}}/{TEACHER['name']}.run",
    params:
        manifests=manifests(),
        dataset=lambda wildcards: dataset_id(wildcards.split),
        depth=lambda wildcards: (
            TEACHER["depth"] if wildcards.split == "train" else config["rerank"]["depth"]
        ),
        noise=TEACHER["noise"],
        seed=TEACHER["seed"],
    log:
        f"{LOGS}/teacher/simulated-{{split}}.log",
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/simulated_teacher.py"


rule teacher_table:
    input:
        manifests(),
        teacher_run=teacher_run("train"),
    output:
        table=training_table(TEACHER["name"]),
        stats=f"{RESULTS}/training/{TEACHER['name']}.json",
    params:
        manifests=manifests(),
        dataset=config["train_dataset"],
        num_queries=TEACHER["num_queries"],
        depth=TEACHER["depth"],
        seed=TEACHER["seed"],
    log:
        f"{LOGS}/teacher/table.log",
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/teacher_table.py"


rule hard_negative_table:
    input:
        manifests(),
        first_stage=first_stage_run("train"),
    output:
        table=training_table("hard-negatives"),
        stats=f"{RESULTS}/training/hard-negatives.json",
    params:
        manifests=manifests(),
        dataset=config["train_dataset"],
        num_queries=config["hard_negatives"]["num_queries"],
        depth=config["hard_negatives"]["depth"],
        seed=config["hard_negatives"]["seed"],
    log:
        f"{LOGS}/teacher/hard-negatives.log",
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/hard_negative_table.py"
