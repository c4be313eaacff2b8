# Stage 2: first-stage retrieval, BM25 with PyTerrier + PISA.


rule bm25_index:
    input:
        manifests(),
    output:
        directory(index_dir()),
    params:
        manifests=manifests(),
        collection=config["collection"],
    log:
        f"{LOGS}/retrieve/index.log",
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/bm25_index.py"


rule bm25_run:
    input:
        manifests(),
        index=index_dir(),
    output:
        run=f"{RESULTS}/runs/{{split}}/{FIRST_STAGE['name']}.run",
    params:
        manifests=manifests(),
        dataset=lambda wildcards: dataset_id(wildcards.split),
        k1=FIRST_STAGE["k1"],
        b=FIRST_STAGE["b"],
        num_results=lambda wildcards: first_stage_depth(wildcards.split),
    log:
        f"{LOGS}/retrieve/{{split}}.log",
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/bm25_run.py"
