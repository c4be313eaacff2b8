"""Evaluation-only experiments: first stages and published checkpoints on a collection,
no backbones, no models, no training queries; the model zoo and the TIREx tables with
significance, as "how does webis/monoelectra-base do on my collection" expects."""

from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Any

import ir_measures
import pytest
import torch
import yaml

from rank_distillm.experiment import ConfigError, from_config
from rank_distillm.model.checkpoints import load_cross_encoder, save_cross_encoder
from rank_distillm.model.pair_encoder import PairEncoder
from tests.helpers import load_config
from tests.workflow_runner import REPO, copy_workflow, snakemake

SCHEMA = REPO / "schemas" / "config.schema.yaml"
RESULTS = "results/evaluation-only"


def evaluation_only_config(checkpoint: Path) -> dict[str, Any]:
    """The README's example, on a small demo collection and one TIREx-like corpus."""
    return {
        "experiment": "evaluation-only",
        "demo": {
            "name": "rank-distillm-demo",
            "topics": 10,
            "train_queries": 20,
            "eval_queries": {"dl19": 12, "dl20": 12},
        },
        "collection": "rank-distillm-demo",
        "evaluation": {
            "dl19": {"dataset": "rank-distillm-demo/dl19", "label": "DL19", "relevance_level": 2},
            "dl20": {"dataset": "rank-distillm-demo/dl20", "label": "DL20", "relevance_level": 2},
        },
        "demo_tirex": {
            "corpora": {
                "demo-news": {
                    "style": "news",
                    "documents": 100,
                    "subjects": 10,
                    "topic_sets": {"2019": 6},
                }
            }
        },
        "tirex": {"tasks": [{"id": "demo-news/2019", "group": "demo-news"}]},
        "first_stages": {"bm25": {"label": "BM25", "bm25": {"k1": 0.9, "b": 0.4}, "depth": 30}},
        "checkpoints": {"tiny-mono": {"path": str(checkpoint), "label": "tiny monoELECTRA"}},
        "rerank": {"precision": "fp32"},
    }


def validated(config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return load_config([path], SCHEMA)


def test_the_experiment_has_no_training_split_and_two_rows(tmp_path: Path) -> None:
    exp = from_config(validated(evaluation_only_config(tmp_path / "ckpt"), tmp_path))
    assert (exp.backbones, exp.models, exp.train_dataset) == ({}, {}, None)
    assert exp.splits == ["dl19", "dl20", "tirex-demo-news-2019"]
    assert [(row.key, row.kind) for row in exp.rows] == [
        ("first-stage", "first_stage"),
        ("tiny-mono", "checkpoint"),
    ]
    assert exp.rerankers() == ["tiny-mono"]


def test_a_model_needs_the_training_queries(tmp_path: Path) -> None:
    demo = yaml.safe_load((REPO / "config.yaml").read_text())
    config = copy.deepcopy(demo)
    del config["train_dataset"]
    with pytest.raises(ConfigError, match=r"^train_dataset: models\.tiny-electra\.stage1 trains"):
        from_config(validated(config, tmp_path))


@pytest.mark.slow
def test_an_evaluation_only_experiment_runs_end_to_end(backbone_dir: Path, tmp_path: Path) -> None:
    """First stage and a checkpoint built here: the model zoo's cells are ir_measures'
    figures of the checkpoint's run, whose scores are the checkpoint's own."""
    model, tokenizer = load_cross_encoder(str(backbone_dir), query_length=16, doc_length=40)
    save_cross_encoder(model, tokenizer, tmp_path / "ckpt")
    workdir = copy_workflow(tmp_path / "workflow")
    (workdir / "eval.yaml").write_text(yaml.safe_dump(evaluation_only_config(tmp_path / "ckpt")))
    result = snakemake(workdir, "--cores", "2", "--configfile", "eval.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    root = workdir / RESULTS
    assert not (root / "models").exists() and not (root / "backbones").exists()

    zoo = {row["system"]: row for row in csv.DictReader((root / "model-zoo.csv").open())}
    assert list(zoo) == ["BM25", "tiny monoELECTRA"]
    data = root / "data" / "rank-distillm-demo"
    qrels = list(ir_measures.read_trec_qrels(str(data / "qrels-dl19.txt")))
    run = list(ir_measures.read_trec_run(str(root / "runs/dl19/bm25/tiny-mono.run")))
    expected = ir_measures.calc_aggregate([ir_measures.nDCG @ 10], qrels, run)
    assert float(zoo["tiny monoELECTRA"]["nDCG@10 DL19"]) == pytest.approx(
        expected[ir_measures.nDCG @ 10], abs=1e-6
    )
    assert 0 < float(zoo["tiny monoELECTRA"]["p nDCG@10 DL19"]) <= 1  # tested against BM25
    assert float(zoo["tiny monoELECTRA"]["nDCG@10 TIREx"]) > 0
    tirex = (root / "tirex.md").read_text()
    assert "| tiny monoELECTRA |" in tirex and "| BM25 |" in tirex

    # The run's scores are the checkpoint's: one query's candidates scored here.
    query_id = run[0].query_id
    queries = dict(
        line.split("\t") for line in (data / "queries-dl19.tsv").read_text().split("\n") if line
    )
    docs = dict(line.split("\t", 1) for line in (data / "docs.tsv").read_text().split("\n") if line)
    scored = {r.doc_id: r.score for r in run if r.query_id == query_id}
    assert len(scored) == 30  # the first stage's depth, every candidate kept
    encoder = PairEncoder(tokenizer, 16, 40)
    ids = sorted(scored)
    batch = encoder.collate(
        encoder.query_ids([queries[query_id]] * len(ids)), encoder.doc_ids([docs[i] for i in ids])
    )
    model.eval()
    with torch.inference_mode():
        direct = model(**batch).tolist()
    assert [scored[i] for i in ids] == pytest.approx(direct, abs=1e-5)
