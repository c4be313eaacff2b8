# Stage 7: the model-zoo table (Markdown, CSV) and plot, with the paper's figures beside
# the reproduced ones where the config has them.


rule model_zoo:
    input:
        [cell[-1] for cell in zoo_cells()],
    output:
        **EXP.zoo_outputs(),
    params:
        cells=zoo_cells(),
        first_stages={name: stage.label for name, stage in EXP.first_stages.items()},
        evaluation={name: e.label for name, e in EXP.evaluation.items()},
        relevance_levels={e.label: e.relevance_level for e in EXP.evaluation.values()},
        references=EXP.references,
        title=config["report"]["title"],
        notes=[*EXP.table_notes(), *config["report"]["notes"]],
        measures=config["measures"],
    log:
        EXP.log("report", "model-zoo"),
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/model_zoo.py"
