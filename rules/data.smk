# Stage 1: data. The demo collection is generated from a seed; real corpora are read
# through ir_datasets, whose docstore is built once here so later jobs only read it.


if EXP.demo:

    rule demo_data:
        output:
            manifest=EXP.demo_manifest(),
        params:
            settings={key: value for key, value in EXP.demo.items() if key != "name"},
            name=EXP.demo["name"],
            scoreddocs=demo_scoreddocs(),
        log:
            EXP.log("data", EXP.demo["name"]),
        benchmark:
            EXP.benchmark("data", EXP.demo["name"])
        conda:
            "../envs/pipeline.yaml"
        script:
            "../workflow/scripts/demo_data.py"


rule docstore:
    input:
        EXP.manifests(),
    output:
        ready=f"{EXP.root}/data/docstores/{{corpus}}.json",
    params:
        manifests=EXP.manifests(),
        corpus=lambda wildcards: CORPORA[wildcards.corpus],
    resources:
        mem_mb=COMPUTE["prepare_mem_mb"],
        runtime=240,
    log:
        EXP.log("data", "docstore-{corpus}"),
    benchmark:
        EXP.benchmark("data", "docstore-{corpus}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/docstore.py"


rule local_collection:
    output:
        manifest=f"{EXP.root}/data/collections/{{collection}}/manifest.json",
    params:
        name=lambda wildcards: COLLECTIONS[wildcards.collection],
        entry=lambda wildcards: EXP.collections[COLLECTIONS[wildcards.collection]],
    resources:
        mem_mb=COMPUTE["prepare_mem_mb"],
        runtime=240,
    log:
        EXP.log("data", "collection-{collection}"),
    benchmark:
        EXP.benchmark("data", "collection-{collection}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/local_collection.py"


if EXP.demo_tirex:

    rule demo_tirex_data:
        output:
            manifests=list(EXP.demo_tirex_manifests().values()),
        params:
            settings=EXP.demo_tirex,
        log:
            EXP.log("data", "demo-tirex"),
        benchmark:
            EXP.benchmark("data", "demo-tirex")
        conda:
            "../envs/pipeline.yaml"
        script:
            "../workflow/scripts/demo_tirex_data.py"
