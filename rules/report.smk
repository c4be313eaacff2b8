# Stage 7: the model-zoo table (Markdown, CSV) and plot, with the paper's figures beside
# the reproduced ones where the config has them.


rule model_zoo:
    input:
        [cell[-1] for cell in zoo_cells()],
        [cell[3] for cell in tirex_cells()],
    output:
        **EXP.zoo_outputs(),
    params:
        cells=zoo_cells(),
        rows=[(row.key, row.label) for row in EXP.rows],
        first_stages={name: stage.label for name, stage in EXP.first_stages.items()},
        evaluation={name: e.label for name, e in EXP.evaluation.items()},
        relevance_levels={
            e.label: e.relevance_level for e in EXP.evaluation.values() if not e.tirex
        },
        references=EXP.references,
        tirex_cells=tirex_cells(),
        tirex_config=TIREX_CONFIG,
        tirex_rule=EXP.tirex_rule,
        tirex_stage=EXP.tirex_first_stage,
        title=config["report"]["title"],
        notes=[*EXP.table_notes(), *config["report"]["notes"]],
        measures=config["measures"],
    log:
        EXP.log("report", "model-zoo"),
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/model_zoo.py"


if EXP.tirex:

    rule tirex_tables:
        input:
            [cell[3] for cell in tirex_cells()],
        output:
            **EXP.tirex_outputs(),
        params:
            cells=tirex_cells(),
            tirex_config=TIREX_CONFIG,
            rule=EXP.tirex_rule,
            title=f"TIREx: {config['report']['title']}",
        log:
            EXP.log("report", "tirex"),
        conda:
            "../envs/pipeline.yaml"
        script:
            "../workflow/scripts/tirex_tables.py"
