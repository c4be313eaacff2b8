# Stage 2: first-stage retrieval, BM25 with PyTerrier + PISA (one index per corpus).
# First stages given as run files (the paper's published runs) need no rule.


rule bm25_index:
    input:
        EXP.manifests(),
    output:
        directory(f"{EXP.root}/index/{{corpus}}"),
    params:
        manifests=EXP.manifests(),
        corpus=lambda wildcards: CORPORA[wildcards.corpus],
    resources:
        mem_mb=COMPUTE["prepare_mem_mb"],
        runtime=240,
    log:
        EXP.log("retrieve", "index-{corpus}"),
    benchmark:
        EXP.benchmark("retrieve", "index-{corpus}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/bm25_index.py"


rule bm25_run:
    input:
        EXP.manifests(),
        index=lambda wildcards: EXP.index_dir(EXP.corpus(wildcards.split)),
    output:
        run=f"{EXP.root}/runs/{{split}}/{{bm25_stage}}/{{bm25_stage}}.run",
    params:
        manifests=EXP.manifests(),
        dataset=lambda wildcards: EXP.dataset_id(wildcards.split),
        settings=lambda wildcards: EXP.first_stages[wildcards.bm25_stage].bm25,
        num_results=lambda wildcards: EXP.first_stage_depth(wildcards.bm25_stage, wildcards.split),
    resources:
        mem_mb=COMPUTE["prepare_mem_mb"],
        runtime=240,
    log:
        EXP.log("retrieve", "{split}", "{bm25_stage}"),
    benchmark:
        EXP.benchmark("retrieve", "{split}", "{bm25_stage}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/bm25_run.py"
