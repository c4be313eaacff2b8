"""Tests for rank_distillm.retrieve: PISA indexing and BM25 retrieval."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

# pyterrier_pisa imports ir_datasets, which creates folders under its home.
if "IR_DATASETS_HOME" not in os.environ:
    os.environ["IR_DATASETS_HOME"] = tempfile.mkdtemp(prefix="ir_datasets-")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from rank_distillm.retrieve import bm25, build_index  # noqa: E402

PASSAGES = [
    ("p1", "the cat sat on the mat"),
    ("p2", "a dog chased the cat across the garden"),
    ("p3", "zebras have striped coats"),
    ("p4", "the mat was red and the cat slept on it"),
    ("p5", "dogs and cats are popular pets"),
    ("p6", "quantum chromodynamics describes quarks and gluons"),
]


def topics(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["query_id", "text"], dtype=str)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bm25")
    build_index(iter(PASSAGES), root / "index")
    return root / "index"


def test_build_index_leaves_no_temp_folder(index_dir: Path) -> None:
    assert index_dir.is_dir()
    assert [p.name for p in index_dir.parent.iterdir()] == ["index"]


def test_bm25_ranks_and_rare_term_first(index_dir: Path) -> None:
    # "cat" is in p1, p2, p4 and (stemmed "cats") p5; "garden" only in p2.
    run = bm25(index_dir, topics([("q1", "cat garden")]), num_results=3)
    assert list(run.columns) == ["query_id", "doc_id", "rank", "score"]
    assert run["rank"].dtype == "int64" and run["score"].dtype == "float64"
    assert run["query_id"].tolist() == ["q1"] * 3
    assert run["rank"].tolist() == [1, 2, 3]
    assert run["doc_id"].iloc[0] == "p2"
    assert set(run["doc_id"]) <= {"p1", "p2", "p4", "p5"}
    assert run["score"].is_monotonic_decreasing
    assert run["score"].iloc[0] > run["score"].iloc[1]


def test_bm25_stems_and_lowercases(index_dir: Path) -> None:
    run = bm25(index_dir, topics([("z", "Zebra STRIPES"), ("q", "quark")]), num_results=3)
    assert run[["query_id", "doc_id", "rank"]].values.tolist() == [["z", "p3", 1], ["q", "p6", 1]]


def test_bm25_query_matching_nothing_is_absent_and_logged(
    index_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queries = topics([("hit", "quarks"), ("miss", "xylophone"), ("stop", "the and of")])
    with caplog.at_level(logging.WARNING, logger="rank_distillm.retrieve"):
        run = bm25(index_dir, queries, num_results=3)
    assert run["query_id"].tolist() == ["hit"]
    assert run["doc_id"].tolist() == ["p6"]
    messages = [r.getMessage() for r in caplog.records if r.name == "rank_distillm.retrieve"]
    assert messages == ["2 queries retrieved nothing (first: ['miss', 'stop'])"]


def test_rebuild_replaces_the_index(tmp_path: Path) -> None:
    build_index([("old", "ancient history")], tmp_path / "index")
    build_index([("new", "ancient scrolls"), ("other", "modern art")], tmp_path / "index")
    run = bm25(tmp_path / "index", topics([("q", "ancient")]), num_results=5)
    assert run["doc_id"].tolist() == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def test_bm25_run_that_retrieves_nothing_is_an_error(index_dir: Path, tmp_path: Path) -> None:
    """A query set that shares no term with the index (the wrong corpus) fails the step,
    naming the query set and the index, and writes no run."""
    from rank_distillm.data.datasets import Manifest
    from rank_distillm.data.trec import write_qrels, write_topics
    from rank_distillm.steps import retrieve_bm25_run

    write_topics(topics([("q1", "xylophone"), ("q2", "bassoon")]), tmp_path / "queries.tsv")
    write_qrels(
        pd.DataFrame({"query_id": ["q1"], "doc_id": ["x"], "relevance": [1]}),
        tmp_path / "qrels.txt",
    )
    (tmp_path / "docs.tsv").write_text("x\tmusic\n")
    subsets = {"test": {"queries": "queries.tsv", "qrels": "qrels.txt"}}
    Manifest(name="music", root=tmp_path, docs="docs.tsv", subsets=subsets).write(
        tmp_path / "m.json"
    )
    out = tmp_path / "run.txt"
    with pytest.raises(ValueError) as error:
        retrieve_bm25_run(
            [tmp_path / "m.json"], "music/test", index_dir, out, {"k1": 0.9, "b": 0.4}, 100
        )
    assert "BM25 retrieved nothing for any of the 2 queries of music/test" in str(error.value)
    assert str(index_dir) in str(error.value)
    assert not out.exists()


def _retrieve_in_a_process(index_dir: str) -> list[tuple[str, str, int]]:
    run = bm25(Path(index_dir), topics([("q1", "cat mat"), ("q2", "dogs")]))
    return list(zip(run["query_id"], run["doc_id"], run["rank"], strict=True))


def test_parallel_jobs_on_a_fresh_index_prepare_it_in_turn(tmp_path: Path) -> None:
    """As the workflow's bm25_run jobs of several query sets do: the first retriever of a
    fresh index writes its scoring data there, and the others must not read it half
    written (unguarded, the demo died once with SIGBUS)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    build_index(iter(PASSAGES), tmp_path / "index")
    with ProcessPoolExecutor(4, mp_context=get_context("spawn")) as pool:
        runs = list(pool.map(_retrieve_in_a_process, [str(tmp_path / "index")] * 4))
    assert runs[0][0] == ("q1", "p1", 1)
    assert all(run == runs[0] for run in runs)
