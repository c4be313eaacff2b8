# Stage 1: data. The demo collection is generated from a seed; nothing is downloaded.


if DEMO:

    rule demo_data:
        output:
            manifest=demo_manifest(),
        params:
            settings={key: value for key, value in DEMO.items() if key != "name"},
            name=DEMO["name"],
            scoreddocs=demo_scoreddocs(),
        log:
            f"{LOGS}/data/{DEMO['name']}.log",
        conda:
            "../envs/pipeline.yaml"
        script:
            "../workflow/scripts/demo_data.py"
