"""Per-query evaluation of runs (ir_measures), aggregation and significance tests."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import ir_measures
import numpy as np
import pandas as pd
from scipy import stats

from rank_distillm.io import QRELS_COLUMNS, RUN_COLUMNS, atomic_output, require_columns

logger = logging.getLogger(__name__)

DEFAULT_MEASURES: tuple[str, ...] = ("nDCG@10", "RR@10", "AP@100")
# How measures are labelled in reports; measures not listed keep their ir_measures name.
DISPLAY_NAMES: dict[str, str] = {"AP@100": "MAP@100"}

PER_QUERY_COLUMNS = ("query_id", "measure", "value")


def display_name(measure: str) -> str:
    return DISPLAY_NAMES.get(measure, measure)


def _preview(ids: Sequence[str], n: int = 5) -> str:
    return ", ".join(ids[:n]) + (", ..." if len(ids) > n else "")


def at_relevance_level(measure: Any, level: int) -> Any:
    """A binary measure (one with a ``rel`` parameter: RR, AP, P, R, ...) counting grade
    >= ``level`` as relevant, as ``trec_eval -l level``; graded measures (nDCG) as they are."""
    if level != 1 and "rel" in measure.SUPPORTED_PARAMS:
        return measure(rel=level)
    return measure


def binary_measures(measures: Sequence[str]) -> list[str]:
    """The measures a relevance level changes (for the table's notes)."""
    return [m for m in measures if "rel" in ir_measures.parse_measure(m).SUPPORTED_PARAMS]


def relevance_notes(measures: Sequence[str], levels: Mapping[str, int]) -> list[str]:
    """One line per relevance level: which measures count which grade as relevant where."""
    binary = [display_name(m) for m in binary_measures(measures)]
    by_level: dict[int, list[str]] = {}
    for label, level in levels.items():
        by_level.setdefault(level, []).append(label)
    return [
        f"{', '.join(binary)} count grade >= {level} as relevant (trec_eval -l {level}) "
        f"on {', '.join(labels)}; nDCG uses the graded labels."
        for level, labels in by_level.items()
        if binary
    ]


def evaluate_run(
    run: pd.DataFrame,
    qrels: pd.DataFrame,
    measures: Sequence[str] = DEFAULT_MEASURES,
    relevance_level: int = 1,
) -> pd.DataFrame:
    """Per-query values (long format: query_id, measure, value) of ``run`` against ``qrels``.

    Binary measures count grade >= ``relevance_level`` as relevant (TREC DL passage
    judgements: 2); values are stored under the configured measure names.

    The run is evaluated in rank order: scores are replaced by each row's position (equal
    ranks in frame order), so that ties in the scores (and the providers' different
    tie-breaking) cannot reorder documents. The judged
    query set is the qrels' queries: judged queries missing from the run score 0, run queries
    without qrels are dropped. Both counts are logged and stored in ``result.attrs``
    (``filled_missing``, ``dropped_unjudged``).
    """
    require_columns(run, RUN_COLUMNS[:3], "run")
    require_columns(qrels, QRELS_COLUMNS, "qrels")
    parsed = {
        at_relevance_level(ir_measures.parse_measure(m), relevance_level): m for m in measures
    }
    if len(parsed) != len(measures):
        raise ValueError(f"duplicate measures in {list(measures)}")

    run = pd.DataFrame(
        {
            "query_id": run["query_id"].astype(str),
            "doc_id": run["doc_id"].astype(str),
            "rank": pd.to_numeric(run["rank"]),
        }
    )
    qrels = pd.DataFrame(
        {
            "query_id": qrels["query_id"].astype(str),
            "doc_id": qrels["doc_id"].astype(str),
            "relevance": pd.to_numeric(qrels["relevance"]).astype(int),
        }
    )
    # ir_measures keys runs and qrels by (query, doc): duplicates would be silently collapsed.
    if run["rank"].isna().any():
        raise ValueError("run has missing ranks")
    for df, keys, what in (
        (run, ["query_id", "doc_id"], "run has duplicate (query_id, doc_id)"),
        (qrels, ["query_id", "doc_id"], "qrels have duplicate (query_id, doc_id)"),
    ):
        dup = df.duplicated(keys, keep=False)
        if dup.any():
            raise ValueError(f"{what}: {df.loc[dup, keys].head(3).to_dict('records')}")

    judged = sorted(set(qrels["query_id"]))
    judged_set = set(judged)
    run_queries = set(run["query_id"])
    unjudged = sorted(run_queries - judged_set)
    missing = sorted(judged_set - run_queries)
    if unjudged:
        logger.warning(
            "dropping %d run queries without qrels: %s", len(unjudged), _preview(unjudged)
        )
    if missing:
        logger.warning(
            "%d judged queries missing from the run, scored 0: %s", len(missing), _preview(missing)
        )

    run = run[run["query_id"].isin(judged_set)]
    ir_run = pd.DataFrame(
        {
            "query_id": run["query_id"],
            "doc_id": run["doc_id"],
            # Each row's position in rank order; equal ranks keep the frame's order (the
            # order io.read_run gives them), so no provider's tie-breaking can reorder.
            "score": -_positions(run),
        }
    )
    values = {
        (parsed[m.measure], m.query_id): float(m.value)
        for m in ir_measures.iter_calc(list(parsed), qrels, ir_run)
    }
    # ir_measures 0.4.3 already yields each measure's default (0) for judged queries without
    # results; filling here keeps that guarantee independent of the provider/version.
    rows = [
        (qid, measure, values.get((measure, qid), 0.0)) for measure in measures for qid in judged
    ]
    result = pd.DataFrame(rows, columns=list(PER_QUERY_COLUMNS))
    result["value"] = result["value"].astype(float)
    result.attrs["filled_missing"] = len(missing)
    result.attrs["dropped_unjudged"] = len(unjudged)
    return result


def _positions(run: pd.DataFrame) -> np.ndarray:
    """1-based position of each row within its query when ordered by rank (stable)."""
    order = np.lexsort((run["rank"].to_numpy(), pd.factorize(run["query_id"])[0]))
    positions = np.empty(len(run), dtype=np.float64)
    ordered = run.iloc[order]
    positions[order] = ordered.groupby("query_id", sort=False).cumcount().to_numpy() + 1
    return positions


def aggregate(per_query: pd.DataFrame) -> pd.DataFrame:
    """Mean per measure over queries: columns measure, value, queries."""
    require_columns(per_query, PER_QUERY_COLUMNS, "per-query frame")
    grouped = per_query.groupby("measure", sort=False)
    return pd.DataFrame(
        {"value": grouped["value"].mean(), "queries": grouped["query_id"].nunique()}
    ).reset_index()


def write_per_query(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a per-query frame as TSV (header ``query_id measure value``), atomically."""
    require_columns(df, PER_QUERY_COLUMNS, "per-query frame")
    with atomic_output(path) as tmp:
        df.loc[:, list(PER_QUERY_COLUMNS)].to_csv(tmp, sep="\t", index=False)


def read_per_query(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a TSV written by :func:`write_per_query`; ids stay strings."""
    df = pd.read_csv(path, sep="\t", dtype=str, na_filter=False)
    if tuple(df.columns) != PER_QUERY_COLUMNS:
        raise ValueError(f"{path}: expected header {PER_QUERY_COLUMNS}, got {tuple(df.columns)}")
    df["value"] = df["value"].astype(float)
    return df


def paired_t_test(a: pd.Series, b: pd.Series) -> float:
    """Two-sided paired t-test p-value of per-query values ``a`` vs ``b``, aligned by index.

    Both series must cover the same queries. Identical values (all differences 0) give
    p = 1.0 rather than scipy's NaN.
    """
    if a.index.has_duplicates or b.index.has_duplicates:
        raise ValueError("paired_t_test: duplicate query ids in the index")
    if set(a.index) != set(b.index):
        only = sorted(map(str, set(a.index) ^ set(b.index)))
        raise ValueError(f"paired_t_test: query sets differ ({len(only)}: {_preview(only)})")
    if len(a) < 2:
        raise ValueError("paired_t_test needs at least 2 queries")
    x = a.astype(float)
    y = b.reindex(a.index).astype(float)
    if (x - y).eq(0).all():
        return 1.0
    return float(stats.ttest_rel(x.to_numpy(), y.to_numpy()).pvalue)


def holm_correction(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    if any(math.isnan(p) for p in p_values):
        raise ValueError("holm_correction: NaN p-value")
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for i, idx in enumerate(sorted(range(m), key=lambda j: p_values[j])):
        running = max(running, min(1.0, (m - i) * p_values[idx]))
        adjusted[idx] = running
    return adjusted
