"""Tests for rank_distillm.report.model_card: hub model cards generated from the experiment and
the run's files (loss log, training-table statistics, per-query metrics)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from huggingface_hub import ModelCard

from rank_distillm import experiment, steps
from rank_distillm.evaluation import measures as evaluate
from rank_distillm.report import model_card
from rank_distillm.report_plan import card_facts
from tests.helpers import load_config
from tests.workflow_runner import REPO

DEMO_MODEL = "tiny-electra.stage1.stage2-ranknet"
PAPER_MODEL = "electra-base.stage1.rankzephyr.ranknet"
#: Per-query values written for every cell: means 0.5 (nDCG@10), 0.25 (RR@10), 0.1 (AP@100).
VALUES = {"nDCG@10": [0.2, 0.4, 0.9], "RR@10": [0.0, 0.25, 0.5], "AP@100": [0.1, 0.1, 0.1]}


def load(*configs: str) -> experiment.Experiment:
    paths = [REPO / name for name in configs]
    return experiment.from_config(load_config(paths, REPO / "schemas" / "config.schema.yaml"))


def write_run_files(
    facts: dict, offset: float = 0.0, steps_run: int = 12, backbone: str = "electra"
) -> None:
    """The files a run leaves for a model: checkpoint config, loss log, table statistics,
    metrics."""
    checkpoint = Path(facts["checkpoint"])
    checkpoint.mkdir(parents=True, exist_ok=True)
    (checkpoint / "config.json").write_text(
        json.dumps({"model_type": "mono", "backbone_model_type": backbone})
    )
    loss = Path(facts["loss_log"])
    loss.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "step": range(1, steps_run + 1),
            "epoch": [i * 3 // steps_run for i in range(steps_run)],
            "loss": [float(i) for i in range(steps_run, 0, -1)],
            "learning_rate": 3e-4,
            "seconds": [0.5 * i for i in range(1, steps_run + 1)],
        }
    ).to_csv(loss, index=False)
    stats = Path(facts["table_stats"])
    stats.parent.mkdir(parents=True, exist_ok=True)
    stats.write_text(
        json.dumps(
            {
                "queries": 1000,
                "rows": 30000,
                "passages_per_query_min": 28,
                "passages_per_query_mean": 29.5,
                "passages_per_query_max": 30,
                "unranked_rows": 0,
                "positive_targets": 30000,
            }
        )
    )
    for i, cell in enumerate(facts["evaluation"]):
        rows = [
            (f"q{j}", measure, value + offset * i)
            for measure, values in VALUES.items()
            for j, value in enumerate(values)
        ]
        path = Path(cell["metrics"])
        path.parent.mkdir(parents=True, exist_ok=True)
        evaluate.write_per_query(pd.DataFrame(rows, columns=["query_id", "measure", "value"]), path)


@pytest.fixture
def demo_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, Path]:
    monkeypatch.chdir(tmp_path)  # the experiment's paths are relative to the working dir
    facts = card_facts(load("config.yaml"), DEMO_MODEL)
    write_run_files(facts, offset=0.1)
    out = tmp_path / "results" / "demo" / "models" / DEMO_MODEL / "README.md"
    steps.write_model_readme(facts, out)
    return facts, out


def test_facts_come_from_the_experiment() -> None:
    facts = card_facts(load("config.yaml"), DEMO_MODEL)
    json.dumps(facts)  # plain data, as a Snakemake parameter
    assert facts["demo"] is True
    assert [step["name"] for step in facts["chain"]] == ["tiny-electra.stage1", "tiny-electra"]
    assert facts["base_model"] is None  # a tiny backbone built by the pipeline
    assert facts["data"]["teacher"] == "Simulated teacher (qrels + noise)"
    assert facts["data"]["simulated_noise"] == 0.5
    assert (facts["data"]["num_queries"], facts["data"]["depth"]) == (2000, 30)
    assert facts["recipe"]["loss"] == "ranknet"
    assert facts["recipe"]["epochs"] == 2
    assert facts["recipe"]["learning_rate"] == 3e-4  # the model's own, over training_defaults
    assert facts["recipe"]["query_length"] == 16  # from training_defaults
    assert facts["table_stats"] == "results/demo/training/teachers/simulated-teacher.2000x30.json"
    # The model zoo's two sets, then the demo's three TIREx tasks.
    assert [cell["split"] for cell in facts["evaluation"]] == [
        "dl19",
        "dl20",
        "tirex-demo-news-2019",
        "tirex-demo-news-2020",
        "tirex-demo-args-test",
    ]
    assert [cell["tirex"] for cell in facts["evaluation"]] == [False, False, True, True, True]
    assert facts["evaluation"][0]["metrics"] == f"results/demo/metrics/dl19/bm25/{DEMO_MODEL}.tsv"
    assert facts["usage"]["first_stage_run"] == "results/demo/runs/dl19/bm25/bm25.run"

    paper = card_facts(load("configs/paper.yaml"), PAPER_MODEL)
    assert paper["demo"] is False
    assert paper["base_model"] == "google/electra-base-discriminator"
    assert [step["kind"] for step in paper["chain"]] == ["model", "backbone"]
    assert paper["data"]["teacher_run"] == (
        "__rankzephyr-colbert-10000-sampled-100__msmarco-passage-train-judged.run"
    )
    assert paper["data"]["simulated_noise"] is None
    assert paper["recipe"]["learning_rate"] == 1e-5  # the paper's value
    assert paper["usage"]["manifests"] == []
    stage1 = card_facts(load("configs/paper.yaml"), "electra-base.stage1")
    assert stage1["data"]["kind"] == "hard_negatives"
    assert stage1["data"]["first_stage"] == "ColBERTv2"
    assert stage1["data"]["depth"] == 200


def test_card_front_matter_is_the_hubs_format(demo_card: tuple[dict, Path]) -> None:
    facts, path = demo_card
    card = ModelCard.load(path)
    data = card.data
    assert data.library_name == "lightning-ir"
    assert data.pipeline_tag == "text-ranking"
    assert {"cross-encoder", "rank-distillm", "demo"} <= set(data.tags)
    assert data.datasets == ["rank-distillm-demo/train"]
    assert data.metrics == ["ndcg_at_10", "mrr_at_10", "map_at_100"]
    assert data.base_model is None
    figures = {
        (r.dataset_type, r.dataset_config, r.metric_type): r.metric_value for r in data.eval_results
    }
    assert len(figures) == 5 * 3  # every cell, every measure
    # Means of VALUES; dl20's cell was written 0.1 higher.
    assert {key: value for key, value in figures.items() if "/dl" in key[0]} == {
        ("rank-distillm-demo/dl19", "bm25", "ndcg_at_10"): 0.5,
        ("rank-distillm-demo/dl19", "bm25", "mrr_at_10"): 0.25,
        ("rank-distillm-demo/dl19", "bm25", "map_at_100"): 0.1,
        ("rank-distillm-demo/dl20", "bm25", "ndcg_at_10"): 0.6,
        ("rank-distillm-demo/dl20", "bm25", "mrr_at_10"): 0.35,
        ("rank-distillm-demo/dl20", "bm25", "map_at_100"): 0.2,
    }
    assert data.to_dict()["model-index"][0]["name"] == DEMO_MODEL


def test_card_body_says_how_it_was_trained_and_used(demo_card: tuple[dict, Path]) -> None:
    facts, path = demo_card
    text = path.read_text()
    assert (
        "| DL19 (demo) | `rank-distillm-demo/dl19` | BM25 top 100 | 0.500 | 0.250 | 0.100 | 3 |"
        in text
    )
    assert (
        "| DL20 (demo) | `rank-distillm-demo/dl20` | BM25 top 100 | 0.600 | 0.350 | 0.200 | 3 |"
        in text
    )
    assert "| demo-news/2019 (TIREx task) | `demo-news/2019` | BM25 top 100 | 0.700 |" in text
    assert "count grade >= 2 as relevant" in text
    assert "**Demo model.**" in text
    assert "1,000 queries, 30,000 query-passage rows (28-30 passages per query" in text
    # 12 steps with losses 12..1: the last 10 average 5.5; the epoch column reaches 2.
    assert "- 12 optimiser steps (3 epochs) in 6 s; mean loss of the last 10 steps 5.5000." in text
    assert "**simulated** teacher" in text
    excerpt = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert excerpt is not None
    assert yaml.safe_load(excerpt.group(1)) == {"models": {DEMO_MODEL: facts["recipe"]}}
    assert (
        f'CrossEncoderReranker("<hub-namespace>/{DEMO_MODEL}", texts="rank-distillm-demo")' in text
    )
    assert "--manifest results/demo/data/rank-distillm-demo/manifest.json" in text
    assert "--relevance-level 2" in text
    assert f'CrossEncoderModule("<hub-namespace>/{DEMO_MODEL}")' in text
    assert "@inproceedings{schlatt:2025:rank-distillm" in text


def test_missing_figures_and_bad_loss_logs_fail_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    facts = card_facts(load("config.yaml"), DEMO_MODEL)
    write_run_files(facts)
    metrics = Path(facts["evaluation"][1]["metrics"])
    frame = evaluate.read_per_query(metrics)
    evaluate.write_per_query(frame[frame["measure"] != "RR@10"], metrics)
    out = tmp_path / "README.md"
    with pytest.raises(ValueError, match=rf"{re.escape(str(metrics))}: no values for \['RR@10'\]"):
        model_card.write_model_card(facts, out)
    assert not out.exists()

    write_run_files(facts)
    Path(facts["loss_log"]).write_text("step,loss\n")
    with pytest.raises(ValueError, match=r"loss\.csv: expected a header"):
        model_card.write_model_card(facts, out)
    assert not out.exists()


@pytest.mark.parametrize(
    ("measure", "expected"),
    [
        ("nDCG@10", "ndcg_at_10"),
        ("RR@10", "mrr_at_10"),
        ("AP@100", "map_at_100"),
        ("P@5", "p_at_5"),
    ],
)
def test_metric_ids(measure: str, expected: str) -> None:
    assert model_card.metric_id(measure) == expected


def test_a_generated_teacher_is_named_with_its_llm(tmp_path: Path) -> None:
    extra = tmp_path / "llm-teacher.yaml"
    extra.write_text(
        yaml.safe_dump(
            {
                "teachers": {
                    "llm": {
                        "label": "An LLM teacher",
                        "first_stage": "bm25",
                        "generate": {"model": "some-org/some-llm"},
                        "queries": 50,
                        "depth": 10,
                    }
                },
                "models": {
                    "tiny-electra.llm": {
                        "label": "distilled from an LLM",
                        "start": "tiny-electra",
                        "data": "teacher",
                        "teacher": "llm",
                        "loss": "ranknet",
                        "sampler": "top",
                        "epochs": 1,
                    }
                },
            }
        )
    )
    facts = card_facts(load("config.yaml", str(extra)), "tiny-electra.llm")
    assert facts["data"]["generated_by"] == "some-org/some-llm"
    sentence = model_card._data_sentence(
        facts,
        {
            "queries": 50,
            "rows": 500,
            "passages_per_query_min": 10,
            "passages_per_query_mean": 10.0,
            "passages_per_query_max": 10,
        },
    )
    assert sentence == (
        "Distillation from An LLM teacher: a run the pipeline generated with "
        "`some-org/some-llm`, re-ranking BM25 candidates of `rank-distillm-demo/train`, cut "
        "to 50 queries x depth 10, targets from the teacher's ranks: 50 queries, 500 "
        "query-passage rows (10 passages per query)."
    )


@pytest.mark.parametrize(
    ("backbone", "pooling", "expected"),
    [
        (
            "electra",
            "first",
            "A monoELECTRA cross-encoder for passage re-ranking, `{name}` of the `demo` "
            "experiment, trained by the rank-distillm pipeline, a reproduction of "
            "Rank-DistiLLM (Schlatt et al., ECIR 2025, [arXiv 2405.07920]"
            "(https://arxiv.org/abs/2405.07920)). It scores `[CLS] query [SEP] passage "
            "[SEP]` with a linear layer on the `[CLS]` vector; queries are cut to 16 "
            "tokens and passages to 40.",
        ),
        (
            "roberta",
            "mean",
            "A cross-encoder on a RoBERTa backbone for passage re-ranking, `{name}` of the "
            "`demo` experiment, trained by the rank-distillm pipeline, a reproduction of "
            "Rank-DistiLLM (Schlatt et al., ECIR 2025, [arXiv 2405.07920]"
            "(https://arxiv.org/abs/2405.07920)). It scores `<s> query </s></s> passage "
            "</s>` with a linear layer on the mean of its token vectors; queries are cut "
            "to 16 tokens and passages to 40.",
        ),
    ],
)
def test_the_card_names_the_family_and_its_pair_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backbone: str, pooling: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    facts = card_facts(load("config.yaml"), DEMO_MODEL)
    write_run_files(facts, backbone=backbone)
    config = Path(facts["checkpoint"]) / "config.json"
    config.write_text(json.dumps({"backbone_model_type": backbone, "pooling_strategy": pooling}))
    model_card.write_model_card(facts, tmp_path / "README.md")
    text = " ".join((tmp_path / "README.md").read_text().split())
    assert expected.format(name=DEMO_MODEL) + " The checkpoint" in text
