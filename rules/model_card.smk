# Stage 7: a Hugging Face model card (README.md) per trained model, from its recipe, loss
# log, training-table statistics and evaluation figures. It sits beside the checkpoint
# folder, not in it: the folder is train_model's directory output, which no other rule
# may write into. docs/using-a-model.md shows how to upload both to the hub.
from rank_distillm.report_plan import card_facts


rule model_card:
    input:
        EXP.checkpoint_dir("{model}"),
        loss=f"{EXP.root}/models/{{model}}/loss.csv",
        stats=lambda wildcards: card_facts(EXP, wildcards.model)["table_stats"],
        metrics=lambda wildcards: [
            cell["metrics"] for cell in card_facts(EXP, wildcards.model)["evaluation"]
        ],
    output:
        card=f"{EXP.root}/models/{{model}}/README.md",
    params:
        facts=lambda wildcards: card_facts(EXP, wildcards.model),
    log:
        EXP.log("model-card", "{model}"),
    benchmark:
        EXP.benchmark("model-card", "{model}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/model_card.py"
