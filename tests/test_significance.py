"""Paired t-tests against a baseline with Holm's correction, and the query rules, checked
against closed forms, scipy and a hand-computed Holm on a hand-made case."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rank_distillm.evaluation import significance
from rank_distillm.evaluation.significance import (
    Settings,
    paired_t_test,
    paired_tests,
    restrict_queries,
)

QUERIES = ["q1", "q2", "q3", "q4", "q5"]
BASELINE = [0.2, 0.4, 0.1, 0.5, 0.3]
SYSTEMS = {
    "base": BASELINE,
    # Far better on every query, somewhat worse on every query, no real difference.
    "better": [b + d for b, d in zip(BASELINE, [0.3, 0.5, 0.4, 0.6, 0.45], strict=True)],
    "worse": [b - d for b, d in zip(BASELINE, [0.1, 0.12, 0.08, 0.11, 0.09], strict=True)],
    "same": [b + d for b, d in zip(BASELINE, [0.1, -0.1, 0.05, -0.05, 0.0], strict=True)],
}
CELL = ("first_stage", "dataset")


def make_metrics(systems=SYSTEMS, in_run=None) -> pd.DataFrame:
    rows = []
    for row, values in systems.items():
        for query, value in zip(QUERIES, values, strict=True):
            contained = True if in_run is None else query in in_run.get(row, QUERIES)
            rows.append(("bm25", "dl19", row, query, "nDCG@10", value, contained))
    columns = [*CELL, "row", "query_id", "measure", "value", "in_run"]
    return pd.DataFrame(rows, columns=columns)


def hand_holm(p_values: list[float]) -> list[float]:
    """Holm step-down: sorted p times (m - i), running maximum, capped at 1."""
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for i, index in enumerate(sorted(range(m), key=lambda j: p_values[j])):
        running = max(running, min(1.0, (m - i) * p_values[index]))
        adjusted[index] = running
    return adjusted


def test_paired_t_test_closed_forms() -> None:
    # n = 2, d = (1, 3): mean 2, sd sqrt(2), t = 2, df = 1 (Cauchy): p = 1 - (2/pi) atan(2).
    a = pd.Series([1.0, 3.0], index=["q1", "q2"])
    b = pd.Series([0.0, 0.0], index=["q1", "q2"])
    t, p = paired_t_test(a, b)
    assert t == pytest.approx(2.0)
    assert p == pytest.approx(1 - 2 / math.pi * math.atan(2))
    # n = 3, d = (1, 2, 3): t = 2 sqrt(3), df = 2: p = 1 - t / sqrt(2 + t^2). The
    # baseline comes in another order: pairs are matched by query id.
    a = pd.Series([1.5, 2.5, 3.5], index=["x", "y", "z"])
    b = pd.Series([0.5, 0.5, 0.5], index=["z", "x", "y"])
    t, p = paired_t_test(a, b)
    expected_t = 2 * math.sqrt(3)
    assert t == pytest.approx(expected_t)
    assert p == pytest.approx(1 - expected_t / math.sqrt(2 + expected_t**2))
    # Negative direction: the same p, t negated.
    assert paired_t_test(b, a) == pytest.approx((-expected_t, p))


def test_paired_t_test_edge_cases() -> None:
    a = pd.Series([0.1, 0.2], index=["q1", "q2"])
    assert paired_t_test(a, a) == (0.0, 1.0)  # scipy would give NaN
    one = pd.Series([0.5], index=["q1"])
    assert all(math.isnan(v) for v in paired_t_test(one, one * 0))
    with pytest.raises(ValueError, match="query sets differ"):
        paired_t_test(a, a.rename({"q2": "q3"}))


def test_hand_made_case_matches_scipy_and_hand_holm() -> None:
    settings = Settings(baseline="base", alpha=0.05)
    tests = paired_tests(make_metrics(), settings, cell=CELL).set_index("row")
    assert list(tests.index) == ["better", "worse", "same"]  # the baseline is not tested
    raw = {}
    for row in ["better", "worse", "same"]:
        x, y = np.array(SYSTEMS[row]), np.array(BASELINE)
        expected = stats.ttest_rel(x, y)
        # The textbook formula too: t = mean(d) / (sd(d) / sqrt(n)), two-sided p, df = n - 1.
        d = x - y
        t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
        assert expected.statistic == pytest.approx(t)
        assert expected.pvalue == pytest.approx(2 * stats.t.sf(abs(t), len(d) - 1))
        assert tests.loc[row, "statistic"] == pytest.approx(expected.statistic)
        assert tests.loc[row, "p_value"] == pytest.approx(expected.pvalue)
        assert tests.loc[row, "mean"] == pytest.approx(x.mean())
        assert tests.loc[row, "baseline_mean"] == pytest.approx(np.mean(BASELINE))
        assert tests.loc[row, "queries"] == 5
        raw[row] = expected.pvalue
    holm = hand_holm(list(raw.values()))
    for row, adjusted in zip(raw, holm, strict=True):
        assert tests.loc[row, "p_holm"] == pytest.approx(adjusted)
    # better: p ~ 1e-4, worse: p ~ 1e-4, same: p ~ 1: markers follow the direction.
    assert tests["marker"].to_dict() == {"better": "▲", "worse": "▼", "same": ""}
    assert tests["significant"].to_dict() == {"better": True, "worse": True, "same": False}
    assert raw["same"] > 0.5


def test_holm_is_what_makes_a_marginal_result_not_significant() -> None:
    """Four systems with raw p in (0.0125, 0.05): each alone would be significant at 0.05,
    Holm over four keeps none (smallest p times 4 exceeds 0.05)."""
    rng = np.random.default_rng(7)
    base = rng.uniform(0.2, 0.6, 12)
    systems = {"base": list(base)}
    found = {}
    for _ in range(40):  # find four noisy improvements with marginal p-values
        candidate = base + 0.05 + rng.normal(0, 0.08, 12)
        p = stats.ttest_rel(candidate, base).pvalue
        if 0.0125 < p < 0.05:
            found[f"s{len(found)}"] = list(candidate)
        if len(found) == 4:
            break
    assert len(found) == 4
    queries = [f"q{i}" for i in range(12)]
    rows = [
        ("bm25", "dl19", row, q, "nDCG@10", v)
        for row, values in {**systems, **found}.items()
        for q, v in zip(queries, values, strict=True)
    ]
    metrics = pd.DataFrame(rows, columns=[*CELL, "row", "query_id", "measure", "value"])
    tests = paired_tests(metrics, Settings("base"), cell=CELL)
    assert (tests["p_value"] < 0.05).all()
    assert not tests["significant"].any()
    assert tests["p_holm"].tolist() == pytest.approx(hand_holm(tests["p_value"].tolist()))
    assert set(tests["marker"]) == {""}


def test_holm_matches_the_former_hand_written_example() -> None:
    # The example the replaced evaluate.holm_correction was tested with.
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.005]
    assert hand_holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert multipletests(p, method="holm")[1] == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_intersection_rule_drops_queries_a_run_lacks() -> None:
    # "better" did not return q5 (its 0 is a fill-in); "worse" lacked q1.
    systems = {**SYSTEMS, "better": [*SYSTEMS["better"][:4], 0.0]}
    in_run = {"better": ["q1", "q2", "q3", "q4"], "worse": ["q2", "q3", "q4", "q5"]}
    metrics = make_metrics(systems, in_run)
    judged = restrict_queries(metrics, "judged", CELL)
    assert judged is metrics
    common = restrict_queries(metrics, "intersection", CELL)
    assert set(common["query_id"]) == {"q2", "q3", "q4"}
    assert len(common) == 4 * 3
    tests = paired_tests(common, Settings("base", rule="intersection"), cell=CELL)
    row = tests.set_index("row").loc["better"]
    assert row["queries"] == 3
    assert row["mean"] == pytest.approx(np.mean(SYSTEMS["better"][1:4]))
    expected = stats.ttest_rel(SYSTEMS["better"][1:4], BASELINE[1:4]).pvalue
    assert row["p_value"] == pytest.approx(expected)


def test_intersection_rule_needs_in_run() -> None:
    metrics = make_metrics().drop(columns="in_run")
    with pytest.raises(ValueError, match="in_run"):
        restrict_queries(metrics, "intersection", CELL)
    metrics = make_metrics(in_run={"base": ["q1"], "better": ["q2"]})
    with pytest.raises(ValueError, match="no judged query is in every run"):
        restrict_queries(metrics, "intersection", CELL)


def test_columns_without_the_baseline_have_no_tests() -> None:
    metrics = make_metrics()
    other = metrics[metrics["row"] != "base"].assign(dataset="dl20")
    tests = paired_tests(pd.concat([metrics, other]), Settings("base"), cell=CELL)
    assert set(tests["dataset"]) == {"dl19"}


def test_different_query_sets_are_an_error() -> None:
    metrics = make_metrics()
    metrics.loc[(metrics["row"] == "same") & (metrics["query_id"] == "q5"), "query_id"] = "q9"
    with pytest.raises(ValueError, match="different queries"):
        paired_tests(metrics, Settings("base"), cell=CELL)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="query rule"):
        Settings("base", rule="all")
    with pytest.raises(ValueError, match="alpha"):
        Settings("base", alpha=1.5)


def test_description_states_test_family_and_alpha() -> None:
    text = significance.describe(Settings("first-stage", alpha=0.01), "BM25", [3, 3], "nDCG@10")
    assert "paired two-sided t-test" in text
    assert "Holm-corrected over the 3 systems compared per column" in text
    assert "α = 0.01" in text and "BM25" in text
    assert "missing from a run scores 0" in significance.describe_rule("judged")
    assert "authors' rule" in significance.describe_rule("intersection")
