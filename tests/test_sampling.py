"""Tests for rank_distillm.training.sampling: per-query candidate lists and the samplers."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from rank_distillm.training.sampling import (
    SAMPLERS,
    QueryList,
    Sample,
    any_relevant,
    draw,
    group_queries,
    single_relevant,
    top,
)
from rank_distillm.training.tables import TABLE_COLUMNS, TrainingTable


def table(rows: list[tuple[str, str, int | None, float]]) -> TrainingTable:
    """A training table from (query_id, doc_id, rank or None, target) rows."""
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS).astype({"rank": "Int32"})
    return TrainingTable.from_frame(frame)


# Rows deliberately out of order: qB appears first, ranks are shuffled, unranked rows in
# between. The table orders them: row i of the table is the i-th in (query, rank) order.
MIXED = table(
    [
        ("qB", "b3", 3, 0.0),  # row 0
        ("qA", "a2", 2, 0.0),  # row 1
        ("qB", "b-missed", None, 2.0),  # row 2
        ("qB", "b1", 1, 1.0),  # row 3
        ("qA", "a1", 1, 3.0),  # row 4
        ("qB", "b2", 2, 0.0),  # row 5
        ("qA", "a-missed", None, 1.0),  # row 6
        ("qC", "c1", 1, 0.0),  # row 7
    ]
)


def query_list(targets: list[float], in_run: list[bool], query_id: str = "q") -> QueryList:
    """A list whose rows are 10, 11, ... so that positions and rows differ."""
    return QueryList(
        query_id=query_id,
        rows=np.arange(10, 10 + len(targets)),
        targets=np.asarray(targets, dtype=np.float64),
        in_run=np.asarray(in_run, dtype=bool),
    )


# --------------------------------------------------------------------------- group_queries


def test_group_queries_orders_by_rank_unranked_last() -> None:
    lists = group_queries(MIXED)
    assert [q.query_id for q in lists] == ["qB", "qA", "qC"]  # first appearance
    by_id = {q.query_id: q for q in lists}
    assert MIXED.doc_ids(by_id["qB"].rows) == ["b1", "b2", "b3", "b-missed"]
    assert by_id["qB"].targets.tolist() == [1.0, 0.0, 0.0, 2.0]
    assert by_id["qB"].in_run.tolist() == [True, True, True, False]
    assert MIXED.doc_ids(by_id["qA"].rows) == ["a1", "a2", "a-missed"]
    assert by_id["qA"].targets.tolist() == [3.0, 0.0, 1.0]
    assert by_id["qA"].in_run.tolist() == [True, True, False]
    assert MIXED.doc_ids(by_id["qC"].rows) == ["c1"]
    assert by_id["qB"].targets.dtype == np.float32


def test_group_queries_keeps_several_unranked_in_table_order() -> None:
    frame = table([("q", "x", None, 1.0), ("q", "y", 2, 0.0), ("q", "z", None, 2.0)])
    (only,) = group_queries(frame)
    assert frame.doc_ids(only.rows) == ["y", "x", "z"]
    assert only.in_run.tolist() == [True, False, False]


# --------------------------------------------------------------------------- single_relevant


def test_single_relevant_picks_best_label_and_negatives_from_the_run() -> None:
    query = group_queries(MIXED)[0]  # qB: b1 (1), b2 (0), b3 (0), b-missed (2, unranked)
    sample = single_relevant(query, negatives=5, rng=random.Random(0))
    assert sample is not None
    assert sample.query_id == "qB"
    # The best label is the unranked passage's (2 > 1): it is picked although not in the run.
    assert MIXED.doc_ids(sample.rows[:1]) == ["b-missed"]
    # Negatives: only b2 and b3 (target 0, in the run); fewer than asked, no repeats.
    assert sorted(MIXED.doc_ids(sample.rows[1:])) == ["b2", "b3"]
    assert sample.targets == [1.0, 0.0, 0.0]


def test_single_relevant_never_uses_lower_positives_or_unranked_as_negatives() -> None:
    # positions: 0 best, 1 lower positive, 2-4 negatives in run, 5 negative not in run
    query = query_list([3, 1, 0, -1, 0, 0], [True, True, True, True, True, False])
    seen: set[int] = set()
    for seed in range(200):
        sample = single_relevant(query, negatives=2, rng=random.Random(seed))
        assert sample is not None
        assert sample.rows[0] == 10
        assert len(sample.rows) == 3 and len(set(sample.rows)) == 3
        seen.update(sample.rows[1:])
    # Negative labels (<= 0) count as non-relevant; the unranked one (15) never appears.
    assert seen == {12, 13, 14}


def test_single_relevant_none_without_relevant_or_negative() -> None:
    rng = random.Random(0)
    assert single_relevant(query_list([0, 0, -1], [True] * 3), 3, rng) is None
    assert single_relevant(query_list([], []), 3, rng) is None
    assert single_relevant(query_list([2, 1], [True, True]), 3, rng) is None
    # A negative that is not in the run does not count.
    assert single_relevant(query_list([2, 0], [True, False]), 3, rng) is None


def test_single_relevant_zero_negatives() -> None:
    sample = single_relevant(query_list([0, 1], [True, True]), 0, random.Random(1))
    assert sample == Sample("q", [11], [1.0])


def test_single_relevant_is_seeded() -> None:
    query = query_list([2, 0, 2, 0, 0, 0, 0, 0], [True] * 8)
    a = [single_relevant(query, 3, random.Random(42)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    draws = {tuple(single_relevant(query, 3, random.Random(s)).rows) for s in range(20)}
    assert len(draws) > 1


def test_single_relevant_is_uniform_among_top_labels() -> None:
    # Two passages share the top label; one of them is missing from the run.
    query = query_list([1, 2, 0, 0, 2, 1], [True, True, True, True, False, True])
    rng = random.Random(123)
    counts = Counter(single_relevant(query, 1, rng).rows[0] for _ in range(2000))
    assert set(counts) == {11, 14}
    assert 0.4 < counts[11] / 2000 < 0.6


# --------------------------------------------------------------------------- any_relevant


def test_any_relevant_draws_the_positive_among_every_grade() -> None:
    # positions: 0 label 3, 1 label 1 (unranked), 2 label 2, 3-4 negatives, 5 negative unranked
    query = query_list([3, 1, 2, 0, -1, 0], [True, False, True, True, True, False])
    rng = random.Random(7)
    samples = [any_relevant(query, 1, rng) for _ in range(3000)]
    counts = Counter(sample.rows[0] for sample in samples)
    # Each relevant passage a third of the time, the unranked one included; the paper's
    # sampler would take position 0 every time.
    assert set(counts) == {10, 11, 12}
    assert all(0.3 < n / 3000 < 0.37 for n in counts.values())
    # Negatives as single_relevant's: labels <= 0 in the run, never the unranked one.
    assert {sample.rows[1] for sample in samples} == {13, 14}
    assert all(sample.targets == [1.0, 0.0] for sample in samples)


def test_any_relevant_equals_single_relevant_on_binary_labels() -> None:
    query = query_list([0, 1, 0, 1, 0, 0], [True] * 6)
    for seed in range(20):
        assert any_relevant(query, 2, random.Random(seed)) == single_relevant(
            query, 2, random.Random(seed)
        )


def test_draw_with_any_relevant_takes_lower_grades_too() -> None:
    queries = group_queries(MIXED)  # qB: b1 (1), b-missed (2); qA: a1 (3), a-missed (1)
    positives = {
        tuple(MIXED.doc_ids([s.rows[0] for s in draw(queries, "any_relevant", 1, 10, rng)[0]]))
        for rng in map(random.Random, range(40))
    }
    assert positives == {(b, a) for b in ("b1", "b-missed") for a in ("a1", "a-missed")}
    assert draw(queries, "any_relevant", 1, 10, random.Random(0))[1] == 1  # qC skipped


def test_any_relevant_none_without_relevant_or_negative() -> None:
    rng = random.Random(0)
    assert any_relevant(query_list([0, 0, -1], [True] * 3), 3, rng) is None
    assert any_relevant(query_list([2, 1], [True, True]), 3, rng) is None


# --------------------------------------------------------------------------- top


def test_top_takes_run_order_with_targets() -> None:
    query = group_queries(MIXED)[0]  # qB: table rows 0-3 are b1, b2, b3, b-missed
    assert top(query, depth=2) == Sample("qB", [0, 1], [1.0, 0.0])
    # Deeper than the run: all ranked rows, never the unranked one.
    assert top(query, depth=10) == Sample("qB", [0, 1, 2], [1.0, 0.0, 0.0])


def test_top_needs_two_candidates() -> None:
    assert top(query_list([1.0], [True]), depth=5) is None
    assert top(query_list([1.0, 2.0], [True, False]), depth=5) is None
    assert top(query_list([1.0, 2.0, 3.0], [True, True, True]), depth=1) is None
    assert top(query_list([5.0, 4.0], [True, True]), depth=2) == Sample("q", [10, 11], [5.0, 4.0])


# --------------------------------------------------------------------------- draw


def test_draw_counts_skipped_queries() -> None:
    queries = group_queries(MIXED)
    samples, skipped = draw(queries, "single_relevant", 1, 10, random.Random(0))
    # qC has no relevant passage.
    assert [s.query_id for s in samples] == ["qB", "qA"]
    assert skipped == 1
    assert MIXED.doc_ids(samples[1].rows) == ["a1", "a2"]  # a1 (3) and its only negative

    samples, skipped = draw(queries, "top", 1, 10, random.Random(0))
    # qC has a single candidate; qA's rows are 4 (a1) and 5 (a2).
    assert samples == [Sample("qB", [0, 1, 2], [1.0, 0.0, 0.0]), Sample("qA", [4, 5], [3.0, 0.0])]
    assert skipped == 1


def test_draw_is_seeded() -> None:
    queries = group_queries(MIXED)
    a = draw(queries, "single_relevant", 1, 10, random.Random(9))
    b = draw(queries, "single_relevant", 1, 10, random.Random(9))
    assert a == b


def test_draw_rejects_unknown_sampler() -> None:
    assert SAMPLERS == ("single_relevant", "any_relevant", "top")
    with pytest.raises(
        ValueError, match=r"unknown sampler 'listwise'.*single_relevant, any_relevant, top"
    ):
        draw(group_queries(MIXED), "listwise", 1, 10, random.Random(0))
