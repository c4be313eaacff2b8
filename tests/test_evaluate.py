from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import pandas as pd
import pytest

from rank_distillm.data.trec import read_qrels
from rank_distillm.evaluation.measures import (
    DEFAULT_MEASURES,
    DISPLAY_NAMES,
    aggregate,
    atomic_output,
    evaluate_run,
    read_per_query,
    relevance_notes,
    write_per_query,
)
from tests.ci import shared_folder, skip_or_fail_in_ci

TREC_DL = shared_folder() / "data" / "trec-dl"


def make_run(rows: list[tuple[str, str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["query_id", "doc_id", "rank", "score"])


def make_qrels(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["query_id", "doc_id", "relevance"])


QRELS = make_qrels(
    [
        ("q1", "d1", 3),
        ("q1", "d2", 2),
        ("q1", "d3", 0),
        ("q1", "d4", 1),
        ("q2", "e1", 1),
        ("q2", "e2", 0),
        ("q2", "e3", 2),
        ("q2", "e4", 1),  # relevant, never retrieved
        ("q3", "f1", 1),  # judged query missing from the run
    ]
)
RUN = make_run(
    [
        # q1: scores contradict the ranks; the ranks must win. d5 is unjudged.
        ("q1", "d3", 1, 0.1),
        ("q1", "d1", 2, 0.2),
        ("q1", "d5", 3, 0.3),
        ("q1", "d4", 4, 0.4),
        ("q1", "d2", 5, 0.5),
        # q2: all scores tied; rank order e2, e3, e1 is neither doc-id ascending nor descending.
        ("q2", "e2", 1, 7.0),
        ("q2", "e3", 2, 7.0),
        ("q2", "e1", 3, 7.0),
        # q4: no qrels, dropped.
        ("q4", "x1", 1, 1.0),
    ]
)

# trec_eval nDCG: gain = label, discount log2(rank + 1), ideal ranking from all judgements.
Q1_NDCG = (0 / math.log2(2) + 3 / math.log2(3) + 0 + 1 / math.log2(5) + 2 / math.log2(6)) / (
    3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
)
Q2_NDCG = (0 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)) / (
    2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
)
EXPECTED = {
    # RR/AP binarise at relevance >= 1 (ir_measures default). q1 relevant: d1@2, d4@4, d2@5.
    ("q1", "nDCG@10"): Q1_NDCG,
    ("q1", "RR@10"): 1 / 2,
    ("q1", "AP@100"): (1 / 2 + 2 / 4 + 3 / 5) / 3,
    # q2 relevant: e3@2, e1@3; e4 (relevant) not retrieved.
    ("q2", "nDCG@10"): Q2_NDCG,
    ("q2", "RR@10"): 1 / 2,
    ("q2", "AP@100"): (1 / 2 + 2 / 3) / 3,
    ("q3", "nDCG@10"): 0.0,
    ("q3", "RR@10"): 0.0,
    ("q3", "AP@100"): 0.0,
}


def as_dict(per_query: pd.DataFrame) -> dict[tuple[str, str], float]:
    return {(r.query_id, r.measure): r.value for r in per_query.itertuples()}


def test_evaluate_run_hand_computed(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="rank_distillm.evaluation.measures"):
        result = evaluate_run(RUN, QRELS)
    assert list(result.columns) == ["query_id", "measure", "value", "in_run"]
    in_run = result.drop_duplicates("query_id").set_index("query_id")["in_run"]
    assert in_run.to_dict() == {"q1": 1, "q2": 1, "q3": 0}  # q3 was filled with 0
    got = as_dict(result)
    assert set(got) == set(EXPECTED)  # q4 dropped, q3 filled
    for key, value in EXPECTED.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    assert result.attrs == {"filled_missing": 1, "dropped_unjudged": 1}
    text = caplog.text
    assert "1 judged queries missing from the run, scored 0: q3" in text
    assert "dropping 1 run queries without qrels: q4" in text


def test_tied_scores_follow_rank() -> None:
    tied = RUN[RUN["query_id"] == "q2"]
    distinct = tied.assign(score=[3.0, 2.0, 1.0])
    reversed_scores = tied.assign(score=[1.0, 2.0, 3.0])
    qrels = QRELS[QRELS["query_id"] == "q2"]
    expected = as_dict(evaluate_run(distinct, qrels))
    assert as_dict(evaluate_run(tied, qrels)) == expected
    assert as_dict(evaluate_run(reversed_scores, qrels)) == expected
    assert expected[("q2", "RR@10")] == 0.5  # doc-id tie-breaking would give 1.0


def test_missing_query_scored_zero_and_unjudged_dropped() -> None:
    run = make_run([("q9", "z", 1, 1.0)])
    result = evaluate_run(run, QRELS)
    assert set(result["query_id"]) == {"q1", "q2", "q3"}
    assert (result["value"] == 0.0).all()
    assert result.attrs["filled_missing"] == 3


def test_integer_ids_become_strings() -> None:
    run = pd.DataFrame({"query_id": [1], "doc_id": [10], "rank": [1], "score": [0.0]})
    qrels = pd.DataFrame({"query_id": [1], "doc_id": [10], "relevance": [2]})
    result = evaluate_run(run, qrels, measures=["nDCG@10"])
    assert result.to_dict("records") == [
        {"query_id": "1", "measure": "nDCG@10", "value": 1.0, "in_run": 1}
    ]


def test_duplicate_passages_are_rejected() -> None:
    rows = [("q1", "d1", 1, 1.0), ("q1", "d1", 2, 0.5)]
    with pytest.raises(ValueError, match="duplicate \\(query_id, doc_id\\)"):
        evaluate_run(make_run(rows), QRELS)


def test_equal_ranks_keep_the_frames_order() -> None:
    """io.read_run orders equal ranks (by score, then file order); evaluation keeps it."""
    qrels = pd.DataFrame({"query_id": ["q"] * 2, "doc_id": ["a", "b"], "relevance": [0, 1]})
    for first, expected in (("a", 0.5), ("b", 1.0)):
        second = "b" if first == "a" else "a"
        run = make_run([("q", first, 1, 0.0), ("q", second, 1, 0.0)])
        result = evaluate_run(run, qrels, measures=["RR@10"])
        assert result["value"].tolist() == [expected]


def test_aggregate() -> None:
    agg = aggregate(evaluate_run(RUN, QRELS))
    assert list(agg["measure"]) == list(DEFAULT_MEASURES)
    row = agg.set_index("measure").loc["nDCG@10"]
    assert row["value"] == pytest.approx((Q1_NDCG + Q2_NDCG + 0.0) / 3)
    assert row["queries"] == 3
    assert DISPLAY_NAMES["AP@100"] == "MAP@100"


def test_per_query_roundtrip(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "query_id": ["001", "NA", "1e3"],
            "measure": ["nDCG@10"] * 3,
            "value": [1 / 3, 0.0, 0.123456789012345],
        }
    )
    path = tmp_path / "nested" / "dir" / "per_query.tsv"
    write_per_query(df, path)
    assert path.read_text().splitlines()[0] == "query_id\tmeasure\tvalue"
    assert os.listdir(path.parent) == ["per_query.tsv"]
    back = read_per_query(path)
    pd.testing.assert_frame_equal(back, df)


def test_per_query_in_run_roundtrip_and_old_files(tmp_path: Path) -> None:
    result = evaluate_run(RUN, QRELS, measures=["nDCG@10"])
    path = tmp_path / "metrics.tsv"
    write_per_query(result, path)
    assert path.read_text().splitlines()[0] == "query_id\tmeasure\tvalue\tin_run"
    back = read_per_query(path)
    assert back.set_index("query_id")["in_run"].to_dict() == {"q1": True, "q2": True, "q3": False}
    # A file from before the column existed still reads (without it).
    old = tmp_path / "old.tsv"
    old.write_text("query_id\tmeasure\tvalue\nq1\tnDCG@10\t0.5\n")
    assert list(read_per_query(old).columns) == ["query_id", "measure", "value"]
    bad = tmp_path / "bad.tsv"
    bad.write_text("query_id\tmeasure\tvalue\tin_run\nq1\tnDCG@10\t0.5\t1\nq2\tnDCG@10\t0\tyes\n")
    with pytest.raises(ValueError, match="bad.tsv:3: in_run must be 0 or 1"):
        read_per_query(bad)


def test_atomic_output_keeps_old_file_on_error(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def read_trec_run(path: Path) -> pd.DataFrame:
    # Both "qid 0 docid rank score tag" (tabs) and "qid Q0 docid rank score tag" (spaces).
    names = ["query_id", "q0", "doc_id", "rank", "score", "tag"]
    dtype = {"query_id": str, "doc_id": str, "rank": int, "score": float}
    return pd.read_csv(path, sep=r"\s+", header=None, names=names, dtype=dtype)


def read_trec_qrels(path: Path) -> pd.DataFrame:
    names = ["query_id", "iteration", "doc_id", "relevance"]
    dtype = {"query_id": str, "doc_id": str, "relevance": int}
    return pd.read_csv(path, sep=r"\s+", header=None, names=names, dtype=dtype)


@pytest.mark.parametrize(
    ("run_name", "qrels_name", "expected"),
    [
        ("__colbert__msmarco-passage-trec-dl-2019-judged.run", "qrels.dl19-passage.txt", 0.7316),
        ("__colbert__msmarco-passage-trec-dl-2020-judged.run", "qrels.dl20-passage.txt", 0.7254),
        ("__bm25__msmarco-passage-trec-dl-2019-judged.run", "qrels.dl19-passage.txt", 0.4795),
    ],
)
def test_reference_ndcg(run_name: str, qrels_name: str, expected: float) -> None:
    if not TREC_DL.is_dir():
        skip_or_fail_in_ci(f"reference data not available: {TREC_DL}")
    run = read_trec_run(TREC_DL / "runs" / run_name)
    qrels = read_trec_qrels(TREC_DL / qrels_name)
    result = evaluate_run(run[run["rank"] <= 100], qrels, measures=["nDCG@10"])
    assert result["query_id"].nunique() == qrels["query_id"].nunique()
    assert result["value"].mean() == pytest.approx(expected, abs=5e-4)


def test_relevance_level_two_on_the_trec_dl_judgements(shared_data: Path) -> None:
    """TREC DL passage qrels: binary measures count grade >= 2 (trec_eval -l 2); nDCG is
    unchanged. A run of one grade-1 passage then one grade-2 passage, by hand:
    RR@10 is 1 at level 1 and 1/2 at level 2; AP@100 is (1/1 + 2/2) / n1 at level 1 and
    (1/2) / n2 at level 2, with n1, n2 the query's passages of grade >= 1 and >= 2."""
    qrels = read_qrels(shared_data / "trec-dl" / "qrels.dl19-passage.txt")
    query = "19335"
    own = qrels[qrels["query_id"] == query]
    grade1 = own.loc[own["relevance"] == 1, "doc_id"].iloc[0]
    grade2 = own.loc[own["relevance"] == 2, "doc_id"].iloc[0]
    n1, n2 = int((own["relevance"] >= 1).sum()), int((own["relevance"] >= 2).sum())
    run = make_run([(query, grade1, 1, 2.0), (query, grade2, 2, 1.0)])
    measures = ["RR@10", "AP@100", "nDCG@10"]
    at = {
        level: as_dict(evaluate_run(run, own, measures, relevance_level=level)) for level in (1, 2)
    }
    assert at[1][(query, "RR@10")] == pytest.approx(1.0)
    assert at[2][(query, "RR@10")] == pytest.approx(0.5)
    assert at[1][(query, "AP@100")] == pytest.approx(2 / n1)
    assert at[2][(query, "AP@100")] == pytest.approx(0.5 / n2)
    assert at[1][(query, "nDCG@10")] == at[2][(query, "nDCG@10")]


def test_relevance_notes_name_the_binary_measures() -> None:
    notes = relevance_notes(["nDCG@10", "RR@10", "AP@100"], {"DL19": 2, "DL20": 2, "Vaswani": 1})
    assert notes == [
        "RR@10, MAP@100 count grade >= 2 as relevant (trec_eval -l 2) on DL19, DL20; "
        "nDCG uses the graded labels.",
        "RR@10, MAP@100 count grade >= 1 as relevant (trec_eval -l 1) on Vaswani; "
        "nDCG uses the graded labels.",
    ]
