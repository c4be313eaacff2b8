"""Tests for rank_distillm.training.tables and the simulated teacher that feeds them."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from rank_distillm.data import trec as trec_io
from rank_distillm.data.query_sample import sample_query_ids
from rank_distillm.teachers.simulated import simulate_teacher
from rank_distillm.training.sampling import group_queries, single_relevant
from rank_distillm.training.tables import (
    TABLE_COLUMNS,
    TrainingTable,
    compare_with_run,
    read_table,
    require_published,
    write_hard_negative_table,
    write_teacher_table,
)

# A teacher run in the Zenodo layout, each query's lines shuffled; q2's ranks have gaps.
TEACHER_RUN = """\
q1 Q0 d1 2 3 rankzephyr
q1 Q0 d3 1 4 rankzephyr
q1 Q0 d4 3 2 rankzephyr
q1 Q0 d2 4 1 rankzephyr
q2 Q0 d6 9 2 rankzephyr
q2 Q0 d5 2 4 rankzephyr
q2 Q0 d1 5 3 rankzephyr
q3 Q0 d2 1 4 rankzephyr
q3 Q0 d7 2 3 rankzephyr
"""
QUERIES = {"q1", "q2", "q3", "q4"}


def frame(rows: list[tuple[str, str, int | None, float]]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    return out.astype({"rank": "Int32", "target": "float32"})


def table_rows(path: Path) -> list[tuple]:
    """The parquet table as (query, doc, rank or None, target) tuples, in file order."""
    table = pq.read_table(path).to_pandas()
    assert list(table.columns) == TABLE_COLUMNS
    return [
        (q, d, None if pd.isna(r) else int(r), float(t))
        for q, d, r, t in table.itertuples(index=False)
    ]


@pytest.fixture
def teacher_run(tmp_path: Path) -> Path:
    path = tmp_path / "teacher.run"
    path.write_text(TEACHER_RUN, encoding="utf-8")
    return path


def build_teacher(run: Path, tmp_path: Path, num_queries, depth, seed=0, **kwargs) -> Path:
    out = tmp_path / f"teacher-{num_queries}-{depth}-{seed}.parquet"
    write_teacher_table(run, out, out.with_suffix(".json"), num_queries, depth, seed, **kwargs)
    return out


# --------------------------------------------------------------------------- teacher tables


def test_teacher_table_depth_cut_and_targets(teacher_run: Path, tmp_path: Path) -> None:
    table = build_teacher(teacher_run, tmp_path, None, depth=2, known_queries=QUERIES)
    assert table_rows(table) == [
        ("q1", "d3", 1, 2.0),
        ("q1", "d1", 2, 1.0),
        # q2's ranks 2 and 5 are renumbered 1 and 2.
        ("q2", "d5", 1, 2.0),
        ("q2", "d1", 2, 1.0),
        ("q3", "d2", 1, 2.0),
        ("q3", "d7", 2, 1.0),
    ]
    stats = json.loads(table.with_suffix(".json").read_text())
    assert stats["queries"] == 3 and stats["rows"] == 6 and stats["depth"] == 2


def test_teacher_table_targets_use_depth_not_list_length(
    teacher_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="rank_distillm.training.tables"):
        table = build_teacher(teacher_run, tmp_path, None, depth=10)
    rows = [row for row in table_rows(table) if row[0] == "q2"]
    assert rows == [("q2", "d5", 1, 10.0), ("q2", "d1", 2, 9.0), ("q2", "d6", 3, 8.0)]
    assert len(table_rows(table)) == 9
    assert "3 of 3 teacher queries have fewer than 10 passages" in caplog.text


def test_teacher_table_seeded_query_subset(teacher_run: Path, tmp_path: Path) -> None:
    def queries(seed: int) -> list[str]:
        table = build_teacher(teacher_run, tmp_path, 2, depth=3, seed=seed)
        return list(dict.fromkeys(row[0] for row in table_rows(table)))

    first = queries(5)
    assert len(first) == 2
    assert queries(5) == first
    # Run order is kept within the subset.
    assert first == [q for q in ["q1", "q2", "q3"] if q in first]
    assert len({tuple(queries(seed)) for seed in range(30)}) == 3  # all three pairs occur


def test_sample_query_ids_all_and_too_many() -> None:
    ids = ["q1", "q2", "q3"]
    assert sample_query_ids(ids, None, 0) == set(ids)
    assert sample_query_ids(ids, 3, 0) == set(ids)
    with pytest.raises(ValueError, match="asked for 7 queries, the run has 3"):
        sample_query_ids(ids, 7, 0)


def test_teacher_table_query_without_text(teacher_run: Path, tmp_path: Path) -> None:
    with pytest.raises(KeyError, match=r"1 queries have no text .*\(first: \['q3'\]\)"):
        build_teacher(teacher_run, tmp_path, None, depth=2, known_queries={"q1", "q2"})
    assert not list(tmp_path.glob("*.parquet"))


def test_streamed_and_whole_runs_give_the_same_table(tmp_path: Path) -> None:
    """Chunks of two lines cut queries apart; a query split across chunks must not be."""
    lines = [f"q{q} Q0 d{d} {d} {100 - d} t" for q in range(5) for d in range(1, 8)]
    run = tmp_path / "run.txt"
    run.write_text("\n".join(lines) + "\n")
    whole = tmp_path / "whole.parquet"
    write_teacher_table(run, whole, tmp_path / "whole.json", None, 5, 0)
    streamed = tmp_path / "streamed.parquet"
    write_teacher_table(run, streamed, tmp_path / "streamed.json", None, 5, 0, chunk_lines=2)
    assert table_rows(streamed) == table_rows(whole)
    assert len(table_rows(whole)) == 25


def test_a_run_not_grouped_by_query_is_read_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = tmp_path / "shuffled.run"
    run.write_text("q1 Q0 d1 1 3 t\nq2 Q0 d5 1 4 t\nq1 Q0 d2 2 2 t\n")
    with caplog.at_level(logging.WARNING, logger="rank_distillm.training.tables"):
        table = build_teacher(run, tmp_path, None, depth=2)
    assert table_rows(table) == [("q1", "d1", 1, 2.0), ("q1", "d2", 2, 1.0), ("q2", "d5", 1, 2.0)]
    assert "shuffled.run:3: query q1 appears again after other queries" in caplog.text


# --------------------------------------------------------------------------- depth sub-sampling

# A teacher that re-ranked a first stage's top 5 (202) or top 5 less one passage (101: doc 55
# missing, doc 77 from elsewhere), and the first stage's run, tab-separated like ColBERTv2's.
SUB_TEACHER = """\
202 Q0 25 1 5 rank
202 Q0 24 2 4 rank
202 Q0 21 3 3 rank
202 Q0 23 4 2 rank
202 Q0 22 5 1 rank
101 Q0 10 1 7.0 rank
101 Q0 9 2 7.0 rank
101 Q0 100 3 5 rank
101 Q0 77 4 4 rank
101 Q0 8 5 3 rank
"""
SUB_FIRST_STAGE = "".join(
    f"{q}\t0\t{d}\t{r}\t{10 - r}\tColBERT\n"
    for q, docs in (("101", [100, 9, 8, 10, 55]), ("202", [21, 22, 23, 24, 25, 26]))
    for r, d in enumerate(docs, 1)
)
# What the authors' utils/subsample.py writes for these two files with
# `--sub_sample_sizes 3 4` (run with pandas 3.1; its file is sorted by query id). In 101,
# docs 9 and 10 tie on score: the lower doc id, as a number, goes first.
SUBSAMPLE_PY_OUTPUT = {
    3: "101 Q0 9 1 7.0 rank\n101 Q0 100 2 5.0 rank\n101 Q0 8 3 3.0 rank\n"
    "202 Q0 21 1 3.0 rank\n202 Q0 23 2 2.0 rank\n202 Q0 22 3 1.0 rank\n",
    4: "101 Q0 9 1 7.0 rank\n101 Q0 10 2 7.0 rank\n101 Q0 100 3 5.0 rank\n101 Q0 8 4 3.0 rank\n"
    "202 Q0 24 1 4.0 rank\n202 Q0 21 2 3.0 rank\n202 Q0 23 3 2.0 rank\n202 Q0 22 4 1.0 rank\n",
}


@pytest.fixture
def subsample_runs(tmp_path: Path) -> tuple[Path, Path]:
    teacher = tmp_path / "teacher-sampled-5.run"
    teacher.write_text(SUB_TEACHER)
    first_stage = tmp_path / "colbert.run"
    first_stage.write_text(SUB_FIRST_STAGE)
    return teacher, first_stage


def test_depth_keeps_the_first_stage_top_not_the_teachers_top(
    subsample_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    """Depth 3 of 202: the first stage's top 3 (21, 22, 23) in the teacher's order, where
    the teacher's own top 3 would be 25, 24, 21."""
    teacher, first_stage = subsample_runs
    table = build_teacher(teacher, tmp_path, None, depth=3, first_stage_run=first_stage)
    assert table_rows(table) == [
        ("202", "21", 1, 3.0),
        ("202", "23", 2, 2.0),
        ("202", "22", 3, 1.0),
        ("101", "9", 1, 3.0),
        ("101", "100", 2, 2.0),
        ("101", "8", 3, 1.0),
    ]
    stats = json.loads(table.with_suffix(".json").read_text())
    assert stats["first_stage_cut"] == 1 and stats["rows"] == 6
    own_top = build_teacher(teacher, tmp_path / "own", None, depth=3)
    assert [row[1] for row in table_rows(own_top)[:3]] == ["25", "24", "21"]


@pytest.mark.parametrize("depth", [3, 4])
def test_depth_subsample_reproduces_the_authors_script(
    subsample_runs: tuple[Path, Path], tmp_path: Path, depth: int
) -> None:
    teacher, first_stage = subsample_runs
    table = build_teacher(teacher, tmp_path, None, depth=depth, first_stage_run=first_stage)
    published = tmp_path / f"teacher-sampled-{depth}.run"
    published.write_text(SUBSAMPLE_PY_OUTPUT[depth].replace(" ", "\t"))
    assert compare_with_run(table, published) is None
    by_query = sorted(table_rows(table), key=lambda row: (int(row[0]), row[2]))
    expected = [line.split() for line in SUBSAMPLE_PY_OUTPUT[depth].splitlines()]
    assert [(q, d, r) for q, d, r, _ in by_query] == [(q, d, int(r)) for q, _, d, r, *_ in expected]
    assert all(t == depth - r + 1 for _, _, r, t in by_query)


def test_compare_with_run_names_what_differs(
    subsample_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    teacher, first_stage = subsample_runs
    table = build_teacher(teacher, tmp_path, None, depth=3, first_stage_run=first_stage)
    swapped = (
        SUBSAMPLE_PY_OUTPUT[3]
        .replace("101 Q0 9 1", "101 Q0 9 2")
        .replace("101 Q0 100 2", "101 Q0 100 1")
    )
    published = tmp_path / "published.run"
    published.write_text(swapped)
    assert compare_with_run(table, published) == (
        f"2 (query, doc, rank) rows only in {table}, 2 only in {published} "
        "(first: query 101, doc 100, rank 2; 1 queries differ)"
    )


def test_a_table_that_differs_from_the_published_subsample_is_removed(
    subsample_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    teacher, first_stage = subsample_runs
    table = build_teacher(teacher, tmp_path, None, depth=3, first_stage_run=first_stage)
    stats = table.with_suffix(".json")
    published = tmp_path / "teacher-sampled-3.run"
    published.write_text(SUBSAMPLE_PY_OUTPUT[3])
    require_published(table, stats, published)  # equal: kept
    assert table.exists() and stats.exists()
    published.write_text(SUBSAMPLE_PY_OUTPUT[3].replace("202 Q0 22 3", "202 Q0 26 3"))
    with pytest.raises(ValueError, match=r"differs from the published .*1 \(query, doc, rank\)"):
        require_published(table, stats, published)
    assert not table.exists() and not stats.exists()


def test_teacher_queries_missing_from_the_first_stage_are_counted(
    subsample_runs: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    teacher, _ = subsample_runs
    only_202 = tmp_path / "only-202.run"
    lines = [line for line in SUB_FIRST_STAGE.splitlines() if line.startswith("202")]
    only_202.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING, logger="rank_distillm.training.tables"):
        table = build_teacher(teacher, tmp_path, None, depth=3, first_stage_run=only_202)
    assert {row[0] for row in table_rows(table)} == {"202"}
    assert "1 of 2 teacher queries are not in the first-stage run" in caplog.text


def test_depth_of_the_whole_teacher_run_is_the_run_as_it_is(
    subsample_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    """At the teacher's own depth the first stage changes nothing for a teacher that
    re-ranked the first stage's top: 202 comes out in teacher order either way."""
    teacher, first_stage = subsample_runs
    cut = build_teacher(teacher, tmp_path, None, depth=5, first_stage_run=first_stage)
    whole = build_teacher(teacher, tmp_path / "whole", None, depth=5)
    assert [r for r in table_rows(cut) if r[0] == "202"] == [
        r for r in table_rows(whole) if r[0] == "202"
    ]
    # 101's teacher ranked doc 77, which is not in the first stage's top 5 (55 is, unranked).
    assert [r[1] for r in table_rows(cut) if r[0] == "101"] == ["9", "10", "100", "8"]


def test_subsample_streams_the_first_stage_run(
    subsample_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    teacher, first_stage = subsample_runs
    whole = build_teacher(teacher, tmp_path, None, depth=4, first_stage_run=first_stage)
    streamed = build_teacher(
        teacher, tmp_path / "s", None, depth=4, first_stage_run=first_stage, chunk_lines=2
    )
    assert table_rows(streamed) == table_rows(whole)


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
def first_stage(tmp_path: Path) -> Path:
    path = tmp_path / "bm25.run"
    path.write_text(FIRST_STAGE, encoding="utf-8")
    return path


@pytest.fixture
def qrels(tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "qrels.txt"
    path.write_text(QRELS, encoding="utf-8")
    return trec_io.read_qrels(path)


def build_hard_negatives(
    run: Path, qrels: pd.DataFrame, tmp_path: Path, num_queries, depth, seed=0
):
    out = tmp_path / f"hn-{num_queries}-{depth}-{seed}.parquet"
    write_hard_negative_table(run, qrels, out, out.with_suffix(".json"), num_queries, depth, seed)
    return out


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
    first_stage: Path, qrels: pd.DataFrame, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="rank_distillm.training.tables"):
        table = build_hard_negatives(first_stage, qrels, tmp_path, None, 3)
    assert table_rows(table) == HARD_NEGATIVES_DEPTH_3
    # q3 has no relevant passage; q4 is judged but not in the run: neither is in the table.
    assert "1 queries without a relevant passage left out (relevant: label >= 1)" in caplog.text
    stats = json.loads(table.with_suffix(".json").read_text())
    assert stats == {
        "queries": 2,
        "rows": 8,
        "passages_per_query_min": 3,
        "passages_per_query_mean": 4.0,
        "passages_per_query_max": 5,
        "unranked_rows": 3,
        "positive_targets": 5,
        "depth": 3,
        "relevance_level": 1,
        "queries_without_relevant": 1,
    }


def test_hard_negative_table_depth_keeps_retrieved_relevant(
    first_stage: Path, qrels: pd.DataFrame, tmp_path: Path
) -> None:
    rows = table_rows(build_hard_negatives(first_stage, qrels, tmp_path, None, 4))
    q1 = [row for row in rows if row[0] == "q1"]
    assert [(d, r, t) for _, d, r, t in q1] == [
        ("d1", 1, 0.0),
        ("d2", 2, 2.0),
        ("d3", 3, 0.0),
        ("d4", 4, 1.0),
        ("d9", None, 3.0),
    ]


def test_hard_negative_table_relevance_level_makes_lower_labels_negatives(
    first_stage: Path, qrels: pd.DataFrame, tmp_path: Path
) -> None:
    """At level 2, the passages labelled 1 (q1's d4, q2's d6) count as unjudged: d4 is
    no longer added as a missed relevant passage, and d6 (ranked) becomes a negative that
    stage 1's sampler can draw, as an unmarked passage of MS MARCO's train qrels."""
    out = tmp_path / "level2.parquet"
    stats = write_hard_negative_table(
        first_stage, qrels, out, out.with_suffix(".json"), None, 3, 0, relevance_level=2
    )
    assert table_rows(out) == [
        ("q1", "d1", 1, 0.0),
        ("q1", "d2", 2, 2.0),
        ("q1", "d3", 3, 0.0),
        ("q1", "d9", None, 3.0),
        ("q2", "d5", 1, 0.0),
        ("q2", "d6", 2, 0.0),
        ("q2", "d8", None, 2.0),
    ]
    assert stats["relevance_level"] == 2
    q2 = next(q for q in group_queries(read_table(out)) if q.query_id == "q2")
    drawn = {single_relevant(q2, 1, random.Random(seed)).rows[1] for seed in range(20)}
    assert sorted(drawn) == [4, 5]  # d5 and d6, never the relevant d8


def test_hard_negative_table_relevance_level_below_one_is_refused(
    first_stage: Path, qrels: pd.DataFrame, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="relevance_level must be at least 1, got 0"):
        write_hard_negative_table(
            first_stage, qrels, tmp_path / "t.parquet", tmp_path / "t.json", None, 3, 0,
            relevance_level=0,
        )  # fmt: skip


def test_hard_negative_table_query_subset(
    first_stage: Path, qrels: pd.DataFrame, tmp_path: Path
) -> None:
    # Sampling happens among queries with a relevant passage (q1, q2), never q3.
    subsets = {
        tuple(
            dict.fromkeys(
                row[0]
                for row in table_rows(
                    build_hard_negatives(first_stage, qrels, tmp_path, 1, 3, seed=seed)
                )
            )
        )
        for seed in range(20)
    }
    assert subsets == {("q1",), ("q2",)}


# --------------------------------------------------------------------------- reading


def test_read_table_as_arrays(first_stage: Path, qrels: pd.DataFrame, tmp_path: Path) -> None:
    table = read_table(build_hard_negatives(first_stage, qrels, tmp_path, None, 3))
    assert table.query_ids == ["q1", "q2"]
    assert table.offsets.tolist() == [0, 5, 8]
    assert table.doc_ids(range(len(table))) == [row[1] for row in HARD_NEGATIVES_DEPTH_3]
    assert np.isnan(table.ranks).tolist() == [False] * 3 + [True] * 2 + [False] * 2 + [True]
    assert table.targets.tolist() == [row[3] for row in HARD_NEGATIVES_DEPTH_3]


def test_tables_in_any_order_are_grouped_by_first_appearance() -> None:
    table = TrainingTable.from_frame(
        frame(
            [
                ("qB", "b3", 3, 0.0),
                ("qA", "a2", 2, 0.0),
                ("qB", "b-missed", None, 2.0),
                ("qB", "b1", 1, 1.0),
                ("qA", "a1", 1, 3.0),
                ("qB", "b2", 2, 0.0),
                ("qA", "a-missed", None, 1.0),
                ("qC", "c1", 1, 0.0),
            ]
        )
    )
    assert table.query_ids == ["qB", "qA", "qC"]
    assert table.offsets.tolist() == [0, 4, 7, 8]
    assert table.doc_ids(range(8)) == ["b1", "b2", "b3", "b-missed", "a1", "a2", "a-missed", "c1"]
    assert table.targets.tolist() == [1.0, 0.0, 0.0, 2.0, 3.0, 0.0, 1.0, 0.0]


def test_read_table_requires_columns(tmp_path: Path) -> None:
    frame([("q1", "d1", 1, 1.0)]).drop(columns="target").to_parquet(tmp_path / "t.pq")
    with pytest.raises(ValueError, match=r"t\.pq: training table lacks the columns \['target'\]"):
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
