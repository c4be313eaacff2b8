"""Tests for rank_distillm.pyterrier: a checkpoint as a PyTerrier transformer.

The main test composes PISA's BM25 with the transformer in ``pt.Experiment`` on the real
Vaswani collection and checks that every query's nDCG@10 equals the pipeline's own
re-rank + evaluate steps on the same BM25 run, with a checkpoint the pipeline's own
steps trained there in seconds.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import dataclasses  # noqa: E402
import json  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import ir_measures  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyterrier as pt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from pyterrier_pisa import PisaIndex  # noqa: E402

from rank_distillm import steps  # noqa: E402
from rank_distillm.data import datasets  # noqa: E402
from rank_distillm.data import trec as trec_io  # noqa: E402
from rank_distillm.evaluation.measures import read_per_query  # noqa: E402
from rank_distillm.model.checkpoints import load_cross_encoder, save_cross_encoder
from rank_distillm.model.pair_encoder import PairEncoder
from rank_distillm.model.tiny_backbone import build_tiny  # noqa: E402
from rank_distillm.pyterrier import CrossEncoderReranker, DocTextLoader  # noqa: E402
from tests.helpers import (  # noqa: E402
    TINY,
    negative_text,
    one_torch_thread,
    query_text,
    relevant_text,
)
from tests.test_model import LIGHTNING_IR_CONFIG, published_checkpoint  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_single_thread")

VASWANI_ID = "local/vaswani-pyterrier"  # test_vaswani.py registers local/vaswani elsewhere
BM25 = {"k1": 0.9, "b": 0.4}
DEPTH = 100
BATCH_SIZE = 64
TINY_VASWANI = dataclasses.replace(TINY, vocab_size=1000, max_position_embeddings=128)
TRAINING = {
    "loss": "infonce",
    "sampler": "single_relevant",
    "negatives": 7,
    "steps": 30,
    "queries_per_step": 8,
    "learning_rate": 1e-3,
    "query_length": 16,
    "doc_length": 64,
    "freeze_position_embeddings": False,
    "precision": "fp32",
}


# --------------------------------------------------------------------------- Vaswani


@pytest.fixture(scope="module")
def vaswani(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Vaswani as a local collection, its PISA index and BM25 top-100 run, a checkpoint
    trained by the pipeline's steps, and the pipeline's re-ranked run and metrics."""
    folder = shared_data / "vaswani"
    root = tmp_path_factory.mktemp("vaswani-pyterrier")
    entry = {
        "docs": str(folder / "doc-text.trec"),
        "queries": str(folder / "query-text.trec"),
        "qrels": str(folder / "qrels"),
    }
    manifest = root / "data" / "manifest.json"
    datasets.Manifest.from_config(VASWANI_ID, entry, manifest.parent).write(manifest)
    manifests = [manifest]
    with one_torch_thread():
        datasets.check_collection(datasets.Manifest.read(manifest))
        steps.build_bm25_index(manifests, VASWANI_ID, root / "index")
        steps.retrieve_bm25_run(
            manifests, VASWANI_ID, root / "index", root / "bm25.run", BM25, DEPTH
        )
        dataset = datasets.load(VASWANI_ID)
        texts = (text for _, text in datasets.iter_doc_texts(dataset))
        build_tiny(texts, TINY_VASWANI, root / "backbone")
        steps.prepare_hard_negative_table(
            manifests,
            VASWANI_ID,
            root / "bm25.run",
            root / "hn.parquet",
            root / "hn.json",
            None,
            100,
            1,
        )
        steps.train_checkpoint(
            str(root / "backbone"),
            root / "hn.parquet",
            manifests,
            VASWANI_ID,
            root / "checkpoint",
            root / "loss.csv",
            TRAINING,
        )
        job = {
            "dataset": VASWANI_ID,
            "first_stage_run": root / "bm25.run",
            "out_run": root / "model.run",
            "depth": DEPTH,
        }
        steps.rerank_first_stages(
            str(root / "checkpoint"), manifests, [job], BATCH_SIZE, "model", precision="fp32"
        )
        steps.write_metrics(
            manifests,
            [
                {
                    "dataset": VASWANI_ID,
                    "run": root / f"{name}.run",
                    "out_tsv": root / f"{name}.tsv",
                    "relevance_level": 1,
                }
                for name in ("bm25", "model")
            ],
            ["nDCG@10"],
        )
    yield {
        "root": root,
        "manifests": manifests,
        "topics": datasets.topics(dataset).rename(columns={"query_id": "qid", "text": "query"}),
        "qrels": datasets.qrels(dataset).rename(
            columns={"query_id": "qid", "doc_id": "docno", "relevance": "label"}
        ),
    }


def per_query(path: Path) -> pd.Series:
    return read_per_query(path).set_index("query_id")["value"]


def test_bm25_then_reranker_in_an_experiment_equals_the_pipeline(vaswani: dict) -> None:
    root = vaswani["root"]
    bm25 = PisaIndex(str(root / "index")).bm25(**BM25, num_results=DEPTH)
    reranker = CrossEncoderReranker(
        root / "checkpoint",
        texts=VASWANI_ID,
        batch_size=BATCH_SIZE,
        device="cpu",
        precision="fp32",
    )
    result = pt.Experiment(
        [bm25, bm25 >> reranker],
        vaswani["topics"],
        vaswani["qrels"],
        [ir_measures.nDCG @ 10],
        names=["bm25", "reranked"],
        perquery=True,
        plan="tree",  # BM25 runs once for both systems
    )
    print("mean nDCG@10 on Vaswani:", result.groupby("name")["value"].mean().to_dict())
    values = {
        name: frame.set_index("qid")["value"] for name, frame in result.groupby("name", sort=False)
    }
    pipeline = per_query(root / "model.tsv")
    assert len(pipeline) == 93
    assert sorted(values["reranked"].index) == sorted(pipeline.index)
    difference = (values["reranked"] - pipeline.reindex(values["reranked"].index)).abs()
    assert difference.max() <= 1e-6, difference[difference > 1e-6].to_dict()
    # BM25 through PyTerrier is the pipeline's BM25 too, and re-ranking changed it.
    bm25_difference = values["bm25"] - per_query(root / "bm25.tsv").reindex(values["bm25"].index)
    assert bm25_difference.abs().max() <= 1e-6
    assert (values["reranked"] != values["bm25"]).sum() > 40

    # The same scores and order as the pipeline's run file, row for row.
    ranked = (bm25 >> reranker)(vaswani["topics"])
    run = trec_io.read_run(root / "model.run")
    assert ranked["qid"].tolist() == run["query_id"].tolist()
    assert ranked["docno"].tolist() == run["doc_id"].tolist()
    assert (ranked["rank"] + 1).tolist() == run["rank"].tolist()
    np.testing.assert_array_equal(ranked["score"].to_numpy(), run["score"].to_numpy())
    assert {"query", "text"} <= set(ranked.columns)


def test_text_loader_gives_the_pipelines_texts(vaswani: dict) -> None:
    frame = pd.DataFrame({"qid": ["1", "1", "2"], "docno": ["1", "5", "1"]})
    loaded = DocTextLoader(VASWANI_ID, vaswani["manifests"], max_words=4)(frame)
    assert loaded["text"].tolist()[0] == "compact memories have flexible"
    expected = datasets.doc_texts(datasets.load(VASWANI_ID), ["1", "5"], max_words=4)
    assert loaded["text"].tolist() == [expected["1"], expected["5"], expected["1"]]
    assert loaded[["qid", "docno"]].equals(frame)
    with pytest.raises(KeyError, match=r"1 passage ids are not in the collection.*'no-such'"):
        DocTextLoader(VASWANI_ID)(pd.DataFrame({"qid": ["1"], "docno": ["no-such"]}))


# --------------------------------------------------------------------------- small frames


@pytest.fixture(scope="module")
def checkpoint(backbone_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline checkpoint (random seeded head) on the tiny helper backbone."""
    model, tokenizer = load_cross_encoder(str(backbone_dir), query_length=8, doc_length=12, seed=5)
    out = tmp_path_factory.mktemp("pt-checkpoint") / "checkpoint"
    save_cross_encoder(model, tokenizer, out)
    return out


def small_frame() -> pd.DataFrame:
    """Two queries with three passages each, a BM25-like 0-based rank and score."""
    rows = []
    for q in range(2):
        passages = [negative_text(q, 1), relevant_text(q), negative_text(q, 2)]
        rows += [
            (f"q{q}", query_text(q), f"d{q}-{i}", text, i, 10.0 - i, "extra")
            for i, text in enumerate(passages)
        ]
    return pd.DataFrame(rows, columns=["qid", "query", "docno", "text", "rank", "score", "note"])


def direct_scores(checkpoint: Path, frame: pd.DataFrame) -> list[float]:
    """The model on each pair alone, without the engine's batching."""
    model, tokenizer = load_cross_encoder(str(checkpoint))
    encoder = PairEncoder(tokenizer, model.query_length, model.doc_length)
    model.eval()
    scores = []
    with torch.inference_mode():
        for query, text in zip(frame["query"], frame["text"], strict=True):
            batch = encoder.collate(encoder.query_ids([query]), encoder.doc_ids([text]))
            scores.append(model(**batch).item())
    return scores


def test_scores_are_the_models_and_each_query_is_ranked(checkpoint: Path) -> None:
    frame = small_frame()
    out = CrossEncoderReranker(checkpoint, batch_size=2, precision="fp32")(frame)

    assert list(out.columns) == ["qid", "query", "docno", "text", "note", "score", "rank"]
    assert out["qid"].tolist() == ["q0"] * 3 + ["q1"] * 3
    expected = dict(zip(frame["docno"], direct_scores(checkpoint, frame), strict=True))
    for docno, score in zip(out["docno"], out["score"], strict=True):
        assert score == pytest.approx(expected[docno], abs=1e-6)
    for _, query in out.groupby("qid"):
        assert query["score"].is_monotonic_decreasing
        assert query["rank"].tolist() == [0, 1, 2]
    assert out["note"].eq("extra").all()
    assert len(set(out["score"])) == 6  # the scores depend on the pair


def test_ties_keep_the_first_stage_order(checkpoint: Path, tmp_path: Path) -> None:
    model, tokenizer = load_cross_encoder(str(checkpoint))
    with torch.no_grad():
        model.linear.weight.zero_()
        model.linear.bias.fill_(0.5)
    save_cross_encoder(model, tokenizer, tmp_path / "constant")
    reranker = CrossEncoderReranker(tmp_path / "constant")
    frame = small_frame()
    # By the rank column, whatever the row order.
    shuffled = frame.iloc[[5, 1, 3, 0, 4, 2]].assign(rank=[2, 1, 0, 0, 1, 2])
    out = reranker(shuffled)
    by_query = {qid: group["docno"].tolist() for qid, group in out.groupby("qid", sort=False)}
    assert list(by_query) == ["q1", "q0"]  # queries in input order
    assert by_query == {"q1": ["d1-0", "d1-1", "d1-2"], "q0": ["d0-0", "d0-1", "d0-2"]}
    assert out["score"].eq(0.5).all()
    # Without a rank column, by score (highest first); without either, by row order.
    no_rank = frame.drop(columns="rank").assign(score=[1.0, 3.0, 2.0, 0.0, 0.0, 5.0])
    assert reranker(no_rank)["docno"].tolist() == ["d0-1", "d0-2", "d0-0", "d1-2", "d1-0", "d1-1"]
    bare = frame[["qid", "query", "docno", "text"]].iloc[::-1]
    assert reranker(bare)["docno"].tolist() == ["d1-2", "d1-1", "d1-0", "d0-2", "d0-1", "d0-0"]


def test_frame_without_text_needs_a_loader(checkpoint: Path) -> None:
    reranker = CrossEncoderReranker(checkpoint)
    frame = small_frame().drop(columns="text")
    with pytest.raises(pt.validate.InputValidationError, match=r"missing_columns=\['text'\]"):
        reranker(frame)
    with pytest.raises(pt.validate.InputValidationError, match=r"missing_columns=\['query'\]"):
        reranker(small_frame().drop(columns="query"))
    assert pt.inspect.transformer_outputs(reranker, ["qid", "query", "docno", "text"]) == [
        "qid",
        "query",
        "docno",
        "text",
        "score",
        "rank",
    ]


def test_bad_frames_fail_with_what_is_wrong(checkpoint: Path) -> None:
    reranker = CrossEncoderReranker(checkpoint)
    frame = small_frame()
    with pytest.raises(
        ValueError, match=r"1 rows repeat a \(qid, docno\) pair \(first: \['q0', 'd0-0'\]"
    ):
        reranker(pd.concat([frame, frame.iloc[[0]]]))
    clashing = frame.assign(query=["a", "b", "a", "c", "c", "c"])
    with pytest.raises(ValueError, match=r"1 qids have more than one 'query' \(first: 'q0'\)"):
        reranker(clashing)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        CrossEncoderReranker(checkpoint, batch_size=0)
    empty = reranker(frame.iloc[:0])
    assert empty.empty
    assert {"score", "rank"} <= set(empty.columns)


# --------------------------------------------------------------------------- lightning-ir


def hub_cache_snapshot(repo_id: str, source: Path) -> Path:
    """Put ``source``'s files where huggingface_hub keeps a downloaded snapshot, so
    ``snapshot_download(repo_id)`` finds it offline, as after a real download."""
    from huggingface_hub import constants

    repo = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    commit = "a" * 40
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for path in source.iterdir():
        (snapshot / path.name).write_bytes(path.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def test_a_lightning_ir_checkpoint_loads_by_hub_id(backbone_dir: Path, tmp_path: Path) -> None:
    head = {"weight": torch.linspace(-1.0, 1.0, 16)[None], "bias": torch.tensor([0.25])}
    folder = published_checkpoint(backbone_dir, tmp_path / "published", head)
    assert json.loads((folder / "config.json").read_text())["model_type"] == "mono"
    hub_cache_snapshot("webis/monoelectra-tiny-test", folder)

    reranker = CrossEncoderReranker("webis/monoelectra-tiny-test", precision="fp32")
    assert (reranker.model.query_length, reranker.model.doc_length) == (
        LIGHTNING_IR_CONFIG["query_length"],
        LIGHTNING_IR_CONFIG["doc_length"],
    )
    assert torch.equal(reranker.model.linear.weight, head["weight"])
    frame = small_frame()
    out = reranker(frame)
    expected = dict(zip(frame["docno"], direct_scores(folder, frame), strict=True))
    assert out["score"].tolist() == pytest.approx([expected[d] for d in out["docno"]], abs=1e-6)
    # Lengths given to the transformer override the checkpoint's.
    short = CrossEncoderReranker("webis/monoelectra-tiny-test", query_length=3, doc_length=2)
    assert (short.encoder.query_length, short.encoder.doc_length) == (3, 2)
    assert short(frame)["score"].tolist() != out["score"].tolist()
