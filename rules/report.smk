# Stage 7: the model-zoo table (Markdown, CSV) and plot.


rule model_zoo:
    input:
        [cell[2] for cell in model_zoo_cells()],
    output:
        md=f"{RESULTS}/model-zoo.md",
        csv=f"{RESULTS}/model-zoo.csv",
        png=f"{RESULTS}/model-zoo.png",
    params:
        cells=model_zoo_cells(),
        title=config["report"]["title"],
        notes=config["report"]["notes"],
        measures=config["measures"],
    log:
        f"{LOGS}/report/model-zoo.log",
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/model_zoo.py"
