"""Model cards for trained checkpoints, in the Hugging Face hub's format.

A card is a ``README.md`` with YAML front matter (``library_name``, ``pipeline_tag``,
``tags``, ``base_model``, ``datasets``, ``metrics`` and a ``model-index`` holding the
evaluation figures, written with ``huggingface_hub.ModelCardData``) and a body that says
how the model was trained (its recipe as a config excerpt, teacher, data sizes, optimiser
steps from ``loss.csv``), what it scores (per evaluation set, from the per-query metrics
files) and how to use it (PyTerrier, the command line, lightning-ir).

Everything on the card is read from the experiment and the files of the run: ``facts``
(:func:`rank_distillm.report_plan.card_facts`: plain data from the config, so a Snakemake
rule can pass it as a parameter) and ``render_card`` (text from those facts and the
files' contents).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rank_distillm.model import families

if TYPE_CHECKING:
    import pandas as pd


LIBRARY = "lightning-ir"
PIPELINE_TAG = "text-ranking"
TAGS = ["cross-encoder", "monoelectra", "passage-re-ranking", "rank-distillm", "pyterrier"]
PAPER = "arXiv 2405.07920"
PAPER_URL = "https://arxiv.org/abs/2405.07920"
CITATION = """@inproceedings{schlatt:2025:rank-distillm,
  author    = {Ferdinand Schlatt and Maik Fr{\\"o}be and Harrisen Scells and Shengyao Zhuang
               and Bevan Koopman and Guido Zuccon and Benno Stein and Martin Potthast
               and Matthias Hagen},
  title     = {Rank-DistiLLM: Closing the Effectiveness Gap Between Cross-Encoders and
               LLMs for Passage Re-ranking},
  booktitle = {Advances in Information Retrieval: 47th European Conference on
               Information Retrieval, ECIR 2025},
  year      = {2025},
}"""
#: Placeholder for the hub repository the card's snippets load from.
REPO_PLACEHOLDER = "<hub-namespace>/{name}"
#: Optimiser steps averaged for the card's "final loss".
FINAL_LOSS_STEPS = 10


# --------------------------------------------------------------------------- figures


def metric_id(measure: str) -> str:
    """The hub's (MTEB-style) metric id: ``nDCG@10`` -> ``ndcg_at_10``, ``RR@10`` ->
    ``mrr_at_10``, ``AP@100`` -> ``map_at_100``."""
    name, _, cutoff = measure.partition("@")
    name = {"RR": "MRR", "AP": "MAP"}.get(name, name).lower()
    return f"{name}_at_{cutoff}" if cutoff else name


def evaluation_table(facts: Mapping[str, Any]) -> pd.DataFrame:
    """Mean and query count of every measure per (first stage, evaluation set), read from
    the per-query metrics files the evaluate stage wrote."""
    import pandas as pd

    from rank_distillm.evaluation.measures import aggregate, read_per_query

    rows = []
    for cell in facts["evaluation"]:
        summary = aggregate(read_per_query(cell["metrics"])).set_index("measure")
        missing = [m for m in facts["measures"] if m not in summary.index]
        if missing:
            raise ValueError(f"{cell['metrics']}: no values for {missing}")
        for measure in facts["measures"]:
            rows.append(
                {
                    **{key: cell[key] for key in cell if key != "metrics"},
                    "measure": measure,
                    "value": float(summary.loc[measure, "value"]),
                    "queries": int(summary.loc[measure, "queries"]),
                }
            )
    return pd.DataFrame(rows)


def training_summary(loss_log: Path, table_stats: Path) -> dict[str, Any]:
    """Steps, epochs, final loss and time from ``loss.csv``; table sizes from its stats."""
    import pandas as pd

    loss = pd.read_csv(loss_log)
    expected = ["step", "epoch", "loss", "learning_rate", "seconds"]
    if list(loss.columns) != expected or loss.empty:
        raise ValueError(f"{loss_log}: expected a header {expected} and at least one step")
    stats = json.loads(Path(table_stats).read_text())
    return {
        "steps": int(loss["step"].iloc[-1]),
        "epochs": int(loss["epoch"].max()) + 1,
        "final_loss": float(loss["loss"].tail(FINAL_LOSS_STEPS).mean()),
        "seconds": float(loss["seconds"].iloc[-1]),
        "table": stats,
    }


# --------------------------------------------------------------------------- card


def card_metadata(facts: Mapping[str, Any], figures: pd.DataFrame) -> Any:
    """The front matter as ``huggingface_hub.ModelCardData`` (``model-index`` included)."""
    from huggingface_hub import EvalResult, ModelCardData

    from rank_distillm.evaluation.measures import display_name

    results = [
        EvalResult(
            task_type=PIPELINE_TAG,
            task_name="Passage re-ranking",
            dataset_type=row.dataset,
            dataset_name=row.label,
            dataset_config=row.first_stage,
            dataset_split="test",
            dataset_args={"first_stage": row.first_stage_label, "depth": int(row.depth)},
            metric_type=metric_id(row.measure),
            metric_value=round(row.value, 4),
            metric_name=f"{display_name(row.measure)} ({row.first_stage_label} top {row.depth})",
        )
        for row in figures.itertuples()
    ]
    return ModelCardData(
        library_name=LIBRARY,
        pipeline_tag=PIPELINE_TAG,
        tags=[*TAGS, *(["demo"] if facts["demo"] else [])],
        base_model=facts["base_model"],
        datasets=[facts["data"]["dataset"]],
        metrics=[metric_id(m) for m in facts["measures"]],
        model_name=facts["name"],
        eval_results=results or None,
    )


def _figures_markdown(facts: Mapping[str, Any], figures: pd.DataFrame) -> list[str]:
    from rank_distillm.evaluation.measures import display_name, relevance_notes

    measures = facts["measures"]
    header = ["Evaluation set", "ir_datasets id", "Re-ranking", *map(display_name, measures)]
    lines = [
        "| " + " | ".join([*header, "queries"]) + " |",
        "|---|---|---|" + "---:|" * (len(measures) + 1),
    ]
    for _, cell in figures.groupby(["first_stage", "split"], sort=False):
        first = cell.iloc[0]
        values = cell.set_index("measure")["value"]
        lines.append(
            f"| {first.label}{' (TIREx task)' * bool(first.tirex)} | `{first.dataset}` | "
            f"{first.first_stage_label} top {first.depth} | "
            + " | ".join(f"{values[m]:.3f}" for m in measures)
            + f" | {int(cell['queries'].max())} |"
        )
    levels = {cell["label"]: cell["relevance_level"] for cell in facts["evaluation"]}
    notes = relevance_notes(measures, levels)
    return [*lines, "", *[f"{note}" for note in notes]] if notes else lines


def _data_sentence(facts: Mapping[str, Any], table: Mapping[str, Any]) -> str:
    data = facts["data"]
    low, high = table["passages_per_query_min"], table["passages_per_query_max"]
    per_query = (
        f"{low} passages per query"
        if low == high
        else f"{low}-{high} passages per query, {table['passages_per_query_mean']:.1f} on average"
    )
    sizes = f"{table['queries']:,} queries, {table['rows']:,} query-passage rows ({per_query})"
    if data["kind"] == "hard_negatives":
        return (
            f"Stage 1 (hard negatives): the {data['first_stage']} run on `{data['dataset']}`, "
            f"top {data['depth']} per query, with relevance targets from the qrels: {sizes}."
        )
    if data["simulated_noise"] is not None:
        source = (
            f"a **simulated** teacher (qrels label + Gaussian noise, sigma = "
            f"{data['simulated_noise']} grades, not an LLM)"
        )
    elif data["generated_by"]:
        source = f"a run the pipeline generated with `{data['generated_by']}`"
    else:
        source = f"the run `{data['teacher_run']}`" if data["teacher_run"] else "its run"
    return (
        f"Distillation from {data['teacher']}: {source}, re-ranking {data['teacher_first_stage']} "
        f"candidates of `{data['dataset']}`, cut to {data['num_queries'] or 'all'} queries x "
        f"depth {data['depth']}, targets from the teacher's ranks: {sizes}."
    )


def _usage(facts: Mapping[str, Any]) -> list[str]:
    usage = facts["usage"]
    repo = REPO_PLACEHOLDER.format(name=facts["name"])
    register = [
        "from rank_distillm import datasets",
        "",
        *[
            f'datasets.register_manifest("{path}")  # a local collection'
            for path in usage["manifests"]
        ],
    ]
    manifests = "".join(f" --manifest {path}" for path in usage["manifests"])
    dataset = usage["dataset"]
    return [
        "## Usage",
        "",
        f"`{repo}` stands for this model's hub repository; the checkpoint folder "
        f"(`{facts['checkpoint']}` in the pipeline's results) works the same way. Paths below "
        "are the pipeline's; use your own index and runs elsewhere.",
        "",
        "### PyTerrier",
        "",
        "```python",
        "import ir_measures",
        "import pyterrier as pt",
        "from pyterrier_pisa import PisaIndex",
        "",
        "from rank_distillm.pyterrier import CrossEncoderReranker",
        *(register if usage["manifests"] else []),
        "",
        f'dataset = pt.get_dataset("irds:{dataset}")',
        f'bm25 = PisaIndex("{usage["index"]}").bm25(num_results={usage["depth"]})',
        f'reranker = CrossEncoderReranker("{repo}", texts="{usage["corpus"]}")',
        "pt.Experiment(",
        "    [bm25, bm25 >> reranker],",
        "    dataset.get_topics(),",
        "    dataset.get_qrels(),",
        "    [ir_measures.nDCG @ 10],",
        f'    names=["BM25", "{facts["name"]}"],',
        ")",
        "```",
        "",
        "### Command line",
        "",
        "```bash",
        f"rank-distillm rerank --checkpoint {repo} --run {usage['first_stage_run']} "
        f"--depth {usage['depth']} --dataset {dataset}{manifests} --out reranked.run",
        f"rank-distillm evaluate --run reranked.run --dataset {dataset}{manifests}"
        f" --relevance-level {usage['relevance_level']}",
        "```",
        "",
        "### lightning-ir",
        "",
        "```python",
        "from lightning_ir import CrossEncoderModule",
        "",
        f'model = CrossEncoderModule("{repo}")',
        'model.score("what is a cross-encoder?", ["first passage", "second passage"])',
        "```",
    ]


def _model_sentence(facts: Mapping[str, Any], backbone: Mapping[str, Any]) -> str:
    """What the model is and how it reads a pair, from its checkpoint's config."""
    family = backbone.get("backbone_model_type", "electra")
    pooled = (
        "the mean of its token vectors"
        if backbone.get("pooling_strategy") == "mean"
        else "the `[CLS]` vector"
        if families.SPECIAL_TOKENS[family] == 3
        else "the first token's vector"
    )
    kind = (
        "A monoELECTRA cross-encoder"
        if family == "electra"
        else f"A cross-encoder on a {families.NAMES[family]} backbone"
    )
    return (
        f"{kind} for passage re-ranking, `{facts['name']}` of the "
        f"`{facts['experiment']}` experiment, trained by the rank-distillm pipeline, a "
        f"reproduction of Rank-DistiLLM (Schlatt et al., ECIR 2025, [{PAPER}]({PAPER_URL})). "
        f"It scores `{families.PAIR_TEXT[family]}` with a linear layer on {pooled}"
    )


def render_card(
    facts: Mapping[str, Any],
    figures: pd.DataFrame,
    training: Mapping[str, Any],
    backbone: Mapping[str, Any] | None = None,
) -> str:
    """The whole ``README.md``: front matter, then the body. ``backbone``: the
    checkpoint's ``config.json`` (its family and pooling; ELECTRA's when not given)."""
    from huggingface_hub import ModelCard

    recipe = facts["recipe"]
    chain = " <- ".join(f"{step['label']} (`{step['name']}`)" for step in facts["chain"])
    excerpt = yaml.safe_dump(
        {"models": {facts["name"]: dict(recipe)}}, sort_keys=False, default_flow_style=None
    ).rstrip()
    demo = (
        [
            "> **Demo model.** Trained on the pipeline's generated demo collection, "
            "so its figures are not the paper's.",
            "",
        ]
        if facts["demo"]
        else []
    )
    body = [
        f"# {facts['label']}",
        "",
        *demo,
        _model_sentence(facts, backbone or {})
        + f"; queries are cut to {recipe['query_length']} tokens and passages to "
        f"{recipe['doc_length']}. The checkpoint is in lightning-ir's layout.",
        "",
        "## Evaluation",
        "",
        "Re-ranking each first stage's top passages; means over the judged queries "
        "(ir_measures, in rank order).",
        "",
        *_figures_markdown(facts, figures),
        "",
        "## Training",
        "",
        f"- Starts from: {chain}.",
        f"- Data: {_data_sentence(facts, training['table'])}",
        f"- Loss `{recipe['loss']}`, sampler `{recipe['sampler']}`, "
        f"{recipe['queries_per_step']} queries per optimiser step, learning rate "
        f"{recipe['learning_rate']}, AdamW.",
        f"- {training['steps']:,} optimiser steps"
        + (
            f" ({training['epochs']} epoch{'s' * (training['epochs'] != 1)})"
            if recipe.get("epochs")
            else ""
        )
        + f" in {training['seconds']:.0f} s; mean loss of the last {FINAL_LOSS_STEPS} steps "
        f"{training['final_loss']:.4f}.",
        "",
        "The recipe, as a config excerpt with every training setting filled in:",
        "",
        "```yaml",
        excerpt,
        "```",
        "",
        *_usage(facts),
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    metadata = card_metadata(facts, figures)
    return str(ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n" + "\n".join(body)))


def write_model_card(facts: Mapping[str, Any], out_path: Path) -> None:
    """Read the run's files named in ``facts`` and write the card, atomically."""
    from rank_distillm.data.atomic import atomic_write_text

    training = training_summary(Path(facts["loss_log"]), Path(facts["table_stats"]))
    backbone = json.loads((Path(facts["checkpoint"]) / "config.json").read_text())
    card = render_card(facts, evaluation_table(facts), training, backbone)
    atomic_write_text(out_path, card)
