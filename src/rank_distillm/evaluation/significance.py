"""Significance of table rows against a baseline row, and which queries enter the test.

For every table column (one evaluation set of one first stage) and measure, each system
is compared with the baseline by a paired two-sided t-test over the per-query values
(``scipy.stats.ttest_rel``). The systems compared in one column and measure form one
family, whose p-values are corrected with Holm's method (statsmodels' ``multipletests``),
so the markers of a column keep the family-wise error rate at alpha. This is the authors'
protocol (PyTerrier's ``Experiment`` with ``baseline`` and ``correction="holm"``).

The query rule decides which queries a column's means and tests use:

* ``judged`` (default): every judged query; one missing from a run scores 0 (as
  ``evaluate.evaluate_run`` writes it);
* ``intersection`` (the authors' rule): only the judged queries that every run of the
  column contains (``in_run`` in the per-query metrics).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from rank_distillm.data.trec import require_columns
from rank_distillm.evaluation.measures import IN_RUN

LOGGER = logging.getLogger(__name__)

QUERY_RULES = {
    "judged": "all judged queries; a judged query missing from a run scores 0",
    "intersection": "only the judged queries that every run of the column contains "
    "(the authors' rule)",
}
BETTER, WORSE = "▲", "▼"
#: Columns of :func:`paired_tests`' result.
TEST_COLUMNS = (
    "measure",
    "row",
    "baseline",
    "queries",
    "mean",
    "baseline_mean",
    "statistic",
    "p_value",
    "p_holm",
    "significant",
    "marker",
)


@dataclass(frozen=True)
class Settings:
    """``baseline``: the row key every other row is tested against; ``alpha``: the
    family-wise error rate per column and measure; ``rule``: a key of ``QUERY_RULES``."""

    baseline: str
    alpha: float = 0.05
    rule: str = "judged"

    def __post_init__(self) -> None:
        if self.rule not in QUERY_RULES:
            raise ValueError(f"query rule {self.rule!r} is not one of {list(QUERY_RULES)}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie between 0 and 1, got {self.alpha}")


def restrict_queries(metrics: pd.DataFrame, rule: str, cell: Sequence[str]) -> pd.DataFrame:
    """The rows of ``metrics`` whose queries enter the means and tests under ``rule``.

    ``metrics``: per-query values with columns ``row``, ``query_id``, ``measure``, ``value``,
    the ``cell`` columns (e.g. first stage and evaluation set) and, for the intersection
    rule, ``in_run`` (whether the row's run contained the query). Under ``intersection``
    each cell keeps the queries that every row of that cell contains; a cell left with no
    query is an error. Dropped queries are counted in the log.
    """
    if rule not in QUERY_RULES:
        raise ValueError(f"query rule {rule!r} is not one of {list(QUERY_RULES)}")
    if rule == "judged":
        return metrics
    require_columns(metrics, ["row", "query_id", *cell, IN_RUN], "metrics (intersection rule)")
    if metrics[IN_RUN].isna().any():
        raise ValueError(
            "the intersection rule needs to know which queries each run contained, but some "
            "metrics files have no in_run column; re-run their evaluate jobs"
        )
    kept = []
    for key, rows in metrics.groupby(list(cell), sort=False):
        where = dict(zip(cell, key, strict=True))
        contained = rows[rows[IN_RUN].astype(bool)].groupby("query_id")["row"].nunique()
        common = set(contained.index[contained == rows["row"].nunique()])
        if not common:
            raise ValueError(f"{where}: no judged query is in every run")
        dropped = rows["query_id"].nunique() - len(common)
        if dropped:
            LOGGER.info(
                "%s: %d of %d judged queries are missing from some run and left out "
                "(intersection rule)",
                where,
                dropped,
                rows["query_id"].nunique(),
            )
        kept.append(rows[rows["query_id"].isin(common)])
    return pd.concat(kept, ignore_index=True)


def paired_t_test(values: pd.Series, baseline: pd.Series) -> tuple[float, float]:
    """(t, two-sided p) of a paired t-test of per-query ``values`` against ``baseline``,
    both indexed by query id and covering the same queries.

    No difference at all gives (0, 1) instead of scipy's NaN; fewer than two queries give
    NaN (no test)."""
    if values.index.has_duplicates or baseline.index.has_duplicates:
        raise ValueError("paired t-test: duplicate query ids")
    if set(values.index) != set(baseline.index):
        only = sorted(map(str, set(values.index) ^ set(baseline.index)))
        raise ValueError(f"paired t-test: query sets differ in {len(only)}: {only[:5]}")
    x = values.to_numpy(dtype=float)
    y = baseline.reindex(values.index).to_numpy(dtype=float)
    if len(x) < 2:
        return float("nan"), float("nan")
    if np.array_equal(x, y):
        return 0.0, 1.0
    with warnings.catch_warnings():
        # A constant non-zero difference is an infinite t (p = 0); scipy warns about it.
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        result = stats.ttest_rel(x, y)
    return float(result.statistic), float(result.pvalue)


def paired_tests(
    metrics: pd.DataFrame,
    settings: Settings,
    cell: Sequence[str] = (),
    against: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Every row against ``settings.baseline``, per ``cell`` and measure, Holm-corrected
    over the rows compared there.

    ``metrics``: per-query values with columns ``row``, ``query_id``, ``measure``, ``value``
    and the ``cell`` columns, already restricted by :func:`restrict_queries`. Returns one
    line per (cell, measure, row) with the ``cell`` columns and ``TEST_COLUMNS``; cells
    without the baseline have no lines. ``marker`` is ``▲`` (significantly better) or
    ``▼`` (significantly worse), else empty. ``against`` (row -> the row it is tested
    against) replaces the one baseline: each of its rows is tested against its own, where
    both have values in the cell, and Holm corrects over those tests.
    """
    require_columns(metrics, ["row", "query_id", "measure", "value", *cell], "metrics")
    keys = [*cell, "measure"]
    found = []
    for key, rows in metrics.groupby(keys, sort=False) if keys else [((), metrics)]:
        key = key if isinstance(key, tuple) else (key,)
        where = dict(zip(keys, key, strict=True))
        by_row = {row: part.set_index("query_id")["value"] for row, part in rows.groupby("row")}
        tests = []
        for row, baseline in _compared(list(dict.fromkeys(rows["row"])), settings, against):
            if row not in by_row or baseline not in by_row:
                continue
            base = by_row[baseline]
            if set(by_row[row].index) != set(base.index):
                raise ValueError(
                    f"{where}: row {row!r} and the baseline {baseline!r} were "
                    f"evaluated on different queries ({len(by_row[row])} vs {len(base)}); "
                    "evaluate both against the same qrels"
                )
            statistic, p_value = paired_t_test(by_row[row], base)
            tests.append(
                {
                    **where,
                    "row": row,
                    "baseline": baseline,
                    "queries": len(base),
                    "mean": float(by_row[row].mean()),
                    "baseline_mean": float(base.mean()),
                    "statistic": statistic,
                    "p_value": p_value,
                }
            )
        found += _holm(tests, settings.alpha)
    columns = [*cell, *TEST_COLUMNS]
    return pd.DataFrame(found, columns=columns) if found else pd.DataFrame(columns=columns)


def _compared(
    rows: Sequence[str], settings: Settings, against: Mapping[str, str] | None
) -> list[tuple[str, str]]:
    """(row, the row it is tested against) of a cell's ``rows``, in their order."""
    if against is not None:
        return [(row, against[row]) for row in rows if row in against]
    if settings.baseline not in rows:
        return []
    return [(row, settings.baseline) for row in rows if row != settings.baseline]


def _holm(tests: list[dict], alpha: float) -> list[dict]:
    """Holm-adjusted p-values and markers over the tests that have a p-value."""
    tested = [t for t in tests if not np.isnan(t["p_value"])]
    if tested:
        reject, adjusted, _, _ = multipletests(
            [t["p_value"] for t in tested], alpha=alpha, method="holm"
        )
        for test, significant, p_holm in zip(tested, reject, adjusted, strict=True):
            test["p_holm"] = float(p_holm)
            test["significant"] = bool(significant)
    for test in tests:
        test.setdefault("p_holm", float("nan"))
        test.setdefault("significant", False)
        test["marker"] = (
            (BETTER if test["mean"] > test["baseline_mean"] else WORSE)
            if test["significant"]
            else ""
        )
    return tests


def describe(
    settings: Settings,
    baseline_label: str,
    compared: Sequence[int],
    measure: str,
    per: str = "evaluation set",
    untested: str = "means over several sets are",
) -> str:
    """The sentence under a table that says what the markers mean; ``compared``: the
    family sizes (systems compared per column); ``per``: what a column is tested on."""
    sizes = sorted(set(compared))
    if not sizes:
        return f"No significance tests: the baseline {baseline_label} has no cell in any column."
    family = (
        f"the {sizes[0]} system{'s' if sizes[0] != 1 else ''} compared per column"
        if len(sizes) == 1
        else f"the systems compared per column ({sizes[0]}–{sizes[-1]})"
    )
    return (
        f"{BETTER}/{WORSE}: significantly better/worse than {baseline_label} in {measure} "
        f"(paired two-sided t-test per {per}, Holm-corrected over {family}, "
        f"α = {settings.alpha:g}); {untested} not tested."
    )


def describe_rule(rule: str) -> str:
    return f"Queries: {QUERY_RULES[rule]}."
