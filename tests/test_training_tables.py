"""Tests for rank_distillm.training_tables and the simulated teacher that feeds them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pytest

from rank_distillm import io as trec_io
from rank_distillm.sampling import TABLE_COLUMNS
from rank_distillm.teacher import simulate_teacher
from rank_distillm.training_tables import (
    hard_negative_table,
    read_table,
    sample_queries,
    table_stats,
    teacher_table,
    write_table,
)

DOCS = {f"d{i}": f"passage number {i}" for i in range(1, 10)}
TOPICS = pd.DataFrame(
    {"query_id": ["q1", "q2", "q3", "q4"], "text": ["first", "second", "third", "fourth"]},
    dtype=str,
)

# A teacher run in the Zenodo layout, lines shuffled; q2's ranks have gaps.
TEACHER_RUN = """\
q1 Q0 d1 2 3 rankzephyr
q1 Q0 d3 1 4 rankzephyr
q2 Q0 d6 9 2 rankzephyr
q1 Q0 d4 3 2 rankzephyr
q1 Q0 d2 4 1 rankzephyr
q2 Q0 d5 2 4 rankzephyr
q2 Q0 d1 5 3 rankzephyr
q3 Q0 d2 1 4 rankzephyr
q3 Q0 d7 2 3 rankzephyr
"""


class DocTexts:
    """A dict-backed ``doc_texts`` callable that records what it was asked for."""

    def __init__(self, docs: dict[str, str]) -> None:
        self.docs = docs
        self.calls: list[list[str]] = []

    def __call__(self, doc_ids: Iterable[str]) -> dict[str, str]:
        ids = list(doc_ids)
        self.calls.append(ids)
        return {doc_id: self.docs[doc_id] for doc_id in ids}


def expected_table(rows: list[tuple[str, str, int | None, float]]) -> pd.DataFrame:
    query_text = dict(zip(TOPICS["query_id"], TOPICS["text"], strict=True))
    frame = pd.DataFrame(
        [(q, query_text[q], d, DOCS[d], r, t) for q, d, r, t in rows], columns=TABLE_COLUMNS
    )
    frame["rank"] = frame["rank"].astype("Int64")
    return frame.astype({"target": "float64"})


def assert_table_equal(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False)
    assert actual["rank"].dtype == "Int64"
    assert actual["target"].dtype == "float64"


@pytest.fixture
def teacher_run(tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "teacher.run"
    path.write_text(TEACHER_RUN, encoding="utf-8")
    return trec_io.read_run(path)


# --------------------------------------------------------------------------- teacher_table


def test_teacher_table_depth_cut_and_targets(teacher_run: pd.DataFrame) -> None:
    doc_texts = DocTexts(DOCS)
    table = teacher_table(teacher_run, TOPICS, doc_texts, None, depth=2, seed=0)
    expected = expected_table(
        [
            ("q1", "d3", 1, 2.0),
            ("q1", "d1", 2, 1.0),
            # q2's ranks 2 and 5 are renumbered 1 and 2.
            ("q2", "d5", 1, 2.0),
            ("q2", "d1", 2, 1.0),
            ("q3", "d2", 1, 2.0),
            ("q3", "d7", 2, 1.0),
        ]
    )
    assert_table_equal(table, expected)
    # Texts are fetched in one bulk call, each id once.
    assert doc_texts.calls == [["d3", "d1", "d5", "d2", "d7"]]


def test_teacher_table_targets_use_depth_not_list_length(teacher_run: pd.DataFrame) -> None:
    table = teacher_table(teacher_run, TOPICS, DocTexts(DOCS), None, depth=10, seed=0)
    q2 = table[table["query_id"] == "q2"]
    assert q2["doc_id"].tolist() == ["d5", "d1", "d6"]
    assert q2["rank"].tolist() == [1, 2, 3]
    assert q2["target"].tolist() == [10.0, 9.0, 8.0]
    assert len(table) == 9


def test_teacher_table_seeded_query_subset(teacher_run: pd.DataFrame) -> None:
    def queries(seed: int) -> list[str]:
        table = teacher_table(teacher_run, TOPICS, DocTexts(DOCS), 2, depth=3, seed=seed)
        return table["query_id"].drop_duplicates().tolist()

    first = queries(5)
    assert len(first) == 2
    assert queries(5) == first
    # Run order is kept within the subset.
    assert first == [q for q in ["q1", "q2", "q3"] if q in first]
    assert len({tuple(queries(seed)) for seed in range(30)}) == 3  # all three pairs occur


def test_sample_queries_all_and_too_many(
    teacher_run: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="rank_distillm.training_tables"):
        assert sample_queries(teacher_run, None, 0).equals(teacher_run)
        assert sample_queries(teacher_run, 3, 0).equals(teacher_run)
        assert not caplog.records
        assert sample_queries(teacher_run, 7, 0).equals(teacher_run)
    assert "asked for 7 queries, the run has 3" in caplog.text


def test_teacher_table_query_without_text(teacher_run: pd.DataFrame) -> None:
    topics = TOPICS[TOPICS["query_id"] != "q3"]
    with pytest.raises(KeyError, match=r"1 run queries have no text \(first: \['q3'\]\)"):
        teacher_table(teacher_run, topics, DocTexts(DOCS), None, depth=2, seed=0)


# --------------------------------------------------------------------------- hard negatives

FIRST_STAGE = """\
q1 Q0 d1 1 9.0 bm25
q1 Q0 d2 2 8.0 bm25
q1 Q0 d3 3 7.0 bm25
q1 Q0 d4 4 6.0 bm25
q2 Q0 d5 1 5.0 bm25
q2 Q0 d6 2 4.0 bm25
q3 Q0 d1 1 3.0 bm25
q3 Q0 d2 2 2.0 bm25
"""
QRELS = """\
q1 0 d2 2
q1 0 d3 0
q1 0 d4 1
q1 0 d9 3
q2 0 d6 1
q2 0 d8 2
q3 0 d1 0
q4 0 d1 3
"""


@pytest.fixture
def first_stage(tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "bm25.run"
    path.write_text(FIRST_STAGE, encoding="utf-8")
    return trec_io.read_run(path)


@pytest.fixture
def qrels(tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "qrels.txt"
    path.write_text(QRELS, encoding="utf-8")
    return trec_io.read_qrels(path)


HARD_NEGATIVES_DEPTH_3 = [
    ("q1", "d1", 1, 0.0),  # unjudged
    ("q1", "d2", 2, 2.0),
    ("q1", "d3", 3, 0.0),  # judged 0
    ("q1", "d4", None, 1.0),  # relevant, retrieved below the depth cut
    ("q1", "d9", None, 3.0),  # relevant, not retrieved
    ("q2", "d5", 1, 0.0),
    ("q2", "d6", 2, 1.0),
    ("q2", "d8", None, 2.0),
]


def test_hard_negative_table(
    first_stage: pd.DataFrame, qrels: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    doc_texts = DocTexts(DOCS)
    with caplog.at_level(logging.WARNING, logger="rank_distillm.training_tables"):
        table = hard_negative_table(first_stage, qrels, TOPICS, doc_texts, None, 3, seed=0)
    assert_table_equal(table, expected_table(HARD_NEGATIVES_DEPTH_3))
    # q3 has no relevant passage; q4 is judged but not in the run: neither is in the table.
    assert "1 queries without a relevant passage left out" in caplog.text
    assert doc_texts.calls == [["d1", "d2", "d3", "d4", "d9", "d5", "d6", "d8"]]


def test_hard_negative_table_depth_keeps_retrieved_relevant(
    first_stage: pd.DataFrame, qrels: pd.DataFrame
) -> None:
    table = hard_negative_table(first_stage, qrels, TOPICS, DocTexts(DOCS), None, 4, seed=0)
    q1 = table[table["query_id"] == "q1"]
    assert q1["doc_id"].tolist() == ["d1", "d2", "d3", "d4", "d9"]
    assert q1["rank"].tolist() == [1, 2, 3, 4, pd.NA]
    assert q1["target"].tolist() == [0.0, 2.0, 0.0, 1.0, 3.0]


def test_hard_negative_table_query_subset(first_stage: pd.DataFrame, qrels: pd.DataFrame) -> None:
    # Sampling happens among queries with a relevant passage (q1, q2), never q3.
    subsets = {
        tuple(
            hard_negative_table(first_stage, qrels, TOPICS, DocTexts(DOCS), 1, 3, seed=seed)[
                "query_id"
            ].unique()
        )
        for seed in range(20)
    }
    assert subsets == {("q1",), ("q2",)}


# --------------------------------------------------------------------------- writing


def test_write_read_table_round_trip_and_stats(
    tmp_path: Path, first_stage: pd.DataFrame, qrels: pd.DataFrame
) -> None:
    table = hard_negative_table(first_stage, qrels, TOPICS, DocTexts(DOCS), None, 3, seed=0)
    write_table(table, tmp_path / "table.parquet", tmp_path / "table.json")
    back = read_table(tmp_path / "table.parquet")
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert back["rank"].isna().tolist() == [False] * 3 + [True] * 2 + [False] * 2 + [True]
    stats = json.loads((tmp_path / "table.json").read_text())
    assert stats == {
        "queries": 2,
        "rows": 8,
        "passages_per_query_min": 3,
        "passages_per_query_mean": 4.0,
        "passages_per_query_max": 5,
        "unranked_rows": 3,
        "positive_targets": 5,
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bm25.run",
        "qrels.txt",
        "table.json",
        "table.parquet",
    ]


def test_table_stats_empty() -> None:
    stats = table_stats(expected_table([]))
    assert stats["queries"] == stats["rows"] == stats["unranked_rows"] == 0
    assert stats["passages_per_query_mean"] == 0.0


def test_read_table_requires_columns(tmp_path: Path) -> None:
    expected_table([("q1", "d1", 1, 1.0)]).drop(columns="query").to_parquet(tmp_path / "t.pq")
    with pytest.raises(ValueError, match=r"t\.pq: training table lacks the columns \['query'\]"):
        read_table(tmp_path / "t.pq")


# --------------------------------------------------------------------------- simulated teacher


def first_stage_run(query_id: str, doc_ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "query_id": query_id,
            "doc_id": doc_ids,
            "rank": range(1, len(doc_ids) + 1),
            "score": [100.0 - i for i in range(len(doc_ids))],
        }
    ).astype({"query_id": str, "doc_id": str, "rank": "int64"})


@pytest.fixture
def bm25_run() -> pd.DataFrame:
    docs = [f"p{i}" for i in range(1, 121)]
    docs[56] = "3227618"  # first-stage rank 57
    return pd.concat(
        [first_stage_run("1002990", docs), first_stage_run("7", ["x", "y", "z"])],
        ignore_index=True,
    )


TEACHER_QRELS = pd.DataFrame(
    [
        ("1002990", "3227618", 3),
        ("1002990", "p5", 2),
        ("1002990", "p2", 2),
        ("1002990", "p1", 0),
        ("1002990", "p110", 3),  # below the depth: the teacher never sees it
        ("7", "z", 1),
    ],
    columns=["query_id", "doc_id", "relevance"],
)


def test_simulate_teacher_without_noise_is_the_ideal_ranking(
    bm25_run: pd.DataFrame, tmp_path: Path
) -> None:
    before = bm25_run.copy()
    teacher = simulate_teacher(bm25_run, TEACHER_QRELS, depth=100, noise=0.0, seed=0)
    pd.testing.assert_frame_equal(bm25_run, before)  # input untouched

    assert list(teacher.columns) == ["query_id", "doc_id", "rank", "score"]
    main = teacher[teacher["query_id"] == "1002990"]
    # Grades 3, 2, 2 (ties in first-stage order), then the rest in first-stage order.
    rest = [f"p{i}" for i in range(1, 101) if i not in (2, 5, 57)]
    assert main["doc_id"].tolist() == ["3227618", "p2", "p5", *rest]
    assert main["rank"].tolist() == list(range(1, 101))
    assert main["score"].tolist() == [float(101 - r) for r in range(1, 101)]
    assert "p110" not in set(teacher["doc_id"])
    short = teacher[teacher["query_id"] == "7"]
    assert short["doc_id"].tolist() == ["z", "x", "y"]
    assert short["score"].tolist() == [100.0, 99.0, 98.0]  # depth + 1 - rank, not n + 1 - rank

    # The written run reads back like the published Zenodo teacher runs.
    zenodo = tmp_path / "zenodo.run"
    zenodo.write_text(
        "1002990 Q0 3227618 1 100 rank\n1002990 Q0 p2 2 99 rank\n1002990 Q0 p5 3 98 rank\n"
    )
    trec_io.write_run(teacher, tmp_path / "teacher.run", tag="rank")
    ours = trec_io.read_run(tmp_path / "teacher.run")
    pd.testing.assert_frame_equal(ours, teacher.reset_index(drop=True))
    pd.testing.assert_frame_equal(ours.head(3), trec_io.read_run(zenodo))


def test_simulate_teacher_uses_only_the_first_stage_top_depth(bm25_run: pd.DataFrame) -> None:
    teacher = simulate_teacher(bm25_run, TEACHER_QRELS, depth=10, noise=0.0, seed=0)
    main = teacher[teacher["query_id"] == "1002990"]
    # 3227618 (rank 57) and p110 are cut before re-ranking.
    assert main["doc_id"].tolist() == [
        "p2",
        "p5",
        "p1",
        "p3",
        "p4",
        *[f"p{i}" for i in range(6, 11)],
    ]
    assert main["score"].tolist() == [float(s) for s in range(10, 0, -1)]


def test_simulate_teacher_noise_is_seeded(bm25_run: pd.DataFrame) -> None:
    a = simulate_teacher(bm25_run, TEACHER_QRELS, depth=100, noise=1.0, seed=3)
    b = simulate_teacher(bm25_run, TEACHER_QRELS, depth=100, noise=1.0, seed=3)
    c = simulate_teacher(bm25_run, TEACHER_QRELS, depth=100, noise=1.0, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert a["doc_id"].tolist() != c["doc_id"].tolist()
    for frame in (a, c):
        main = frame[frame["query_id"] == "1002990"]
        assert set(main["doc_id"]) == set(bm25_run["doc_id"].iloc[:100])
        assert main["rank"].tolist() == list(range(1, 101))
        assert main["score"].tolist() == [float(101 - r) for r in range(1, 101)]
