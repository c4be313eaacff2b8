"""Tests for rank_distillm.data.demo_tirex, and a TIREx run end to end on its corpora: local
TREC SGML (and JSONL) files through BM25, re-ranking, evaluation and the aggregates."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

import ir_datasets  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from rank_distillm.data import datasets, demo_tirex  # noqa: E402
from rank_distillm.data.collection_formats import TitleBodyDoc  # noqa: E402
from rank_distillm.evaluation import tirex  # noqa: E402
from rank_distillm.evaluation.measures import evaluate_run  # noqa: E402
from rank_distillm.retrieve import bm25, build_index  # noqa: E402

SMALL = demo_tirex.tirex_settings(
    {
        "seed": 3,
        "corpora": {
            "tx-news": {"style": "news", "documents": 60, "subjects": 8,
                        "topic_sets": {"2019": 2, "2020": 3}},
            "tx-args": {"style": "arguments", "documents": 80, "subjects": 8,
                        "topic_sets": {"test": 4}},
        },
    }
)  # fmt: skip


def tirex_tasks(settings: demo_tirex.DemoTirexSettings) -> list[dict[str, str]]:
    """The demo's TIREx catalogue: one task per topic set, grouped by corpus."""
    return [
        {"id": f"{name}/{task}", "group": name}
        for name, domain in settings.corpora.items()
        for task in domain.topic_sets
    ]


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    manifests = demo_tirex.write_corpora(SMALL, tmp_path_factory.mktemp("demo-tirex"))
    for path in manifests.values():
        datasets.check_collection(datasets.Manifest.read(path))
    return manifests


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    demo_tirex.write_corpora(SMALL, tmp_path / "a")
    demo_tirex.write_corpora(SMALL, tmp_path / "b")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    other = demo_tirex.DemoTirexSettings(seed=4, corpora=SMALL.corpora)
    demo_tirex.write_corpora(other, tmp_path / "c")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_corpora_are_written_in_the_users_formats(written: dict[str, Path]) -> None:
    news, args = (datasets.Manifest.read(written[name]) for name in ("tx-news", "tx-args"))
    assert (news.docs, news.docs_format) == ("docs.trec.gz", "trec")
    assert news.subsets["2019"]["queries_format"] == "trec"
    assert (args.docs, args.docs_format) == ("docs.jsonl", "jsonl")
    assert args.subsets["test"]["queries_format"] == "tsv"
    # 60 documents plus 5 distractors for each of the 8 subjects.
    assert ir_datasets.load("tx-news").docs_count() == 60 + 8 * 5
    first = next(iter(ir_datasets.load("tx-news").docs_iter()))
    assert isinstance(first, TitleBodyDoc) and first.title and first.body
    news_docs = [len(d.body.split()) for d in ir_datasets.load("tx-news").docs_iter()]
    args_docs = [len(d.body.split()) for d in ir_datasets.load("tx-args").docs_iter()]
    assert min(news_docs) >= 150 and max(args_docs) <= 60 + 8  # long news, short arguments
    # Different vocabularies: the corpora share (almost) no word.
    vocabulary = {
        name: {w for d in ir_datasets.load(name).docs_iter() for w in d.body.split()}
        for name in ("tx-news", "tx-args")
    }
    assert not vocabulary["tx-news"] & vocabulary["tx-args"]


def test_queries_and_graded_qrels(written: dict[str, Path]) -> None:
    topics = datasets.topics(ir_datasets.load("tx-news/2020"))
    assert topics["query_id"].tolist() == ["3", "4", "5"]  # numbered on from 2019's
    assert all(len(text.split()) == 2 for text in topics["text"])  # keyword titles
    questions = datasets.topics(ir_datasets.load("tx-args/test"))["text"]
    assert all(q.startswith(("should we ", "is ")) for q in questions)
    qrels = datasets.qrels(ir_datasets.load("tx-news/2019"))
    per_query = qrels.groupby("query_id")["relevance"].apply(lambda s: sorted(set(s)))
    assert all(grades == [0, 1, 2] for grades in per_query)


@pytest.mark.parametrize(
    ("corpus", "message"),
    [
        ({"style": "poetry", "documents": 5, "subjects": 2, "topic_sets": {"a": 1}}, "style"),
        ({"style": "news", "documents": 5, "subjects": 2, "topic_sets": {"a": 3}}, "3 queries"),
    ],
)
def test_bad_settings_name_the_corpus(corpus: dict, message: str, tmp_path: Path) -> None:
    settings = demo_tirex.tirex_settings({"corpora": {"bad": corpus}})
    with pytest.raises(ValueError, match=rf"demo_tirex\.corpora\.bad.*{message}"):
        demo_tirex.write_corpora(settings, tmp_path)


def test_numeric_topic_set_names_from_yaml_become_strings() -> None:
    corpus = {"style": "news", "documents": 5, "subjects": 2, "topic_sets": {2019: 1}}
    settings = demo_tirex.tirex_settings({"corpora": {"n": corpus}})
    assert settings.corpora["n"].topic_sets == {"2019": 1}
    assert settings.seed == demo_tirex.DemoTirexSettings().seed


def test_tirex_tasks_group_by_corpus() -> None:
    assert tirex_tasks(SMALL) == [
        {"id": "tx-news/2019", "group": "tx-news"},
        {"id": "tx-news/2020", "group": "tx-news"},
        {"id": "tx-args/test", "group": "tx-args"},
    ]


@pytest.mark.usefixtures("torch_single_thread")
def test_sgml_corpus_through_bm25_reranking_and_evaluation(
    written: dict[str, Path], backbone_dir: Path, tmp_path: Path
) -> None:
    from rank_distillm.evaluation.rerank import rerank
    from rank_distillm.model.checkpoints import load_cross_encoder
    from rank_distillm.model.pair_encoder import PairEncoder

    model, tokenizer = load_cross_encoder(str(backbone_dir), query_length=8, doc_length=24)
    encoder = PairEncoder(tokenizer, 8, 24)
    selection = tirex.select_tasks({"tasks": tirex_tasks(SMALL)})
    metrics = []
    for name in SMALL.corpora:
        build_index(datasets.iter_doc_texts(ir_datasets.load(name)), tmp_path / name)
    for task in selection.used:
        dataset = ir_datasets.load(task.dataset)
        topics = datasets.topics(dataset)
        first_stage = bm25(tmp_path / task.group, topics, num_results=100)
        queries = dict(zip(topics["query_id"], topics["text"], strict=True))
        full = datasets.doc_texts(dataset, first_stage["doc_id"])
        cut = datasets.doc_texts(dataset, first_stage["doc_id"], max_words=24)
        assert (
            max(len(t.split()) for t in cut.values())
            == 24
            < max(len(t.split()) for t in full.values())
        )
        reranked = rerank(model, encoder, first_stage, queries, cut, depth=100, batch_size=16)
        # Cutting at doc_length words loses nothing the model would have read.
        reference = rerank(model, encoder, first_stage, queries, full, depth=100, batch_size=16)
        pd.testing.assert_frame_equal(reranked, reference)
        assert set(zip(reranked["query_id"], reranked["doc_id"], strict=True)) == set(
            zip(first_stage["query_id"], first_stage["doc_id"], strict=True)
        )
        for system, run in (("bm25", first_stage), ("tiny", reranked)):
            per_query = evaluate_run(run, datasets.qrels(dataset), ["nDCG@10"])
            metrics.append(per_query.assign(system=system, task=task.id))
    frame = pd.concat(metrics, ignore_index=True)
    result = tirex.aggregate(frame, selection)
    groups = result["groups"]
    assert groups[["system", "group", "queries"]].values.tolist() == [
        ["bm25", "tx-news", 5],
        ["bm25", "tx-args", 4],
        ["tiny", "tx-news", 5],
        ["tiny", "tx-args", 4],
    ]
    assert groups["complete"].all()
    overall = result["overall"].set_index(["system", "aggregate"])["value"]
    for system in ("bm25", "tiny"):
        group_values = groups[groups["system"] == system]["value"]
        assert overall[(system, "groups_mean")] == pytest.approx(group_values.mean())
        assert 0 <= overall[(system, "groups_mean")] <= 1
