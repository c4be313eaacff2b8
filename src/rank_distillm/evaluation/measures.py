"""Per-query evaluation of runs (ir_measures) and aggregation (significance: see
``rank_distillm.evaluation.significance``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import ir_measures
import numpy as np
import pandas as pd

from rank_distillm.data.atomic import atomic_output
from rank_distillm.data.trec import QRELS_COLUMNS, require_columns

LOGGER = logging.getLogger(__name__)

DEFAULT_MEASURES: tuple[str, ...] = ("nDCG@10", "RR@10", "AP@100")
# How measures are labelled in reports; measures not listed keep their ir_measures name.
DISPLAY_NAMES: dict[str, str] = {"AP@100": "MAP@100"}

PER_QUERY_COLUMNS = ("query_id", "measure", "value")
#: Optional per-query column: 1 if the run contained the query, 0 if it was filled with 0
#: (the intersection query rule needs it). Files written before it existed lack it.
IN_RUN = "in_run"


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
    *,
    order: str = "rank",
) -> pd.DataFrame:
    """Per-query values (long format: query_id, measure, value, in_run) of ``run`` against
    ``qrels``; ``in_run`` is 1 where the run contained the query, 0 where it was filled.

    Binary measures count grade >= ``relevance_level`` as relevant (TREC DL passage
    judgements: 2); values are stored under the configured measure names.

    ``order="rank"`` (default) evaluates the run in rank order: scores are replaced by
    each row's position (equal ranks in frame order), so that ties in the scores (and the
    providers' different tie-breaking) cannot reorder documents. ``order="score"``
    evaluates the scores as pytrec_eval orders them (descending, ties by doc id
    descending), as PyTerrier's ``Experiment`` does in the authors' notebook. The judged
    query set is the qrels' queries: judged queries missing from the run score 0, run queries
    without qrels are dropped. Both counts are logged and stored in ``result.attrs``
    (``filled_missing``, ``dropped_unjudged``). :class:`RunEvaluator` evaluates many runs
    against one set of qrels.
    """
    return RunEvaluator(qrels, measures, relevance_level)(run, order=order)


class RunEvaluator:
    """:func:`evaluate_run` against one set of qrels, checked and handed to ir_measures
    (its evaluator) once, so that each further run costs only its own evaluation."""

    def __init__(
        self,
        qrels: pd.DataFrame,
        measures: Sequence[str] = DEFAULT_MEASURES,
        relevance_level: int = 1,
    ) -> None:
        require_columns(qrels, QRELS_COLUMNS, "qrels")
        self.parsed = {
            at_relevance_level(ir_measures.parse_measure(m), relevance_level): m for m in measures
        }
        if len(self.parsed) != len(measures):
            raise ValueError(f"duplicate measures in {list(measures)}")
        self.measures = list(measures)
        qrels = pd.DataFrame(
            {
                "query_id": qrels["query_id"].astype(str),
                "doc_id": qrels["doc_id"].astype(str),
                "relevance": pd.to_numeric(qrels["relevance"]).astype(int),
            }
        )
        _refuse_duplicates(qrels, "qrels have")
        self.judged = sorted(set(qrels["query_id"]))
        self.evaluator = ir_measures.evaluator(list(self.parsed), qrels)

    def __call__(self, run: pd.DataFrame, *, order: str = "rank") -> pd.DataFrame:
        if order not in ("rank", "score"):
            raise ValueError(f"order must be 'rank' or 'score', got {order!r}")
        require_columns(run, ["query_id", "doc_id", order], "run")
        run = _checked_run(run, order)
        judged_set = set(self.judged)
        run_queries = set(run["query_id"])
        unjudged = sorted(run_queries - judged_set)
        missing = sorted(judged_set - run_queries)
        if unjudged:
            LOGGER.warning(
                "dropping %d run queries without qrels: %s", len(unjudged), _preview(unjudged)
            )
        if missing:
            LOGGER.warning(
                "%d judged queries missing from the run, scored 0: %s",
                len(missing),
                _preview(missing),
            )
        run = run[run["query_id"].isin(judged_set)]
        ir_run = pd.DataFrame(
            {
                "query_id": run["query_id"],
                "doc_id": run["doc_id"],
                # By rank: each row's position in rank order; equal ranks keep the frame's
                # order (io.read_run's), so no provider's tie-breaking can reorder.
                "score": -_positions(run) if order == "rank" else run["score"],
            }
        )
        values = {
            (self.parsed[m.measure], m.query_id): float(m.value)
            for m in self.evaluator.iter_calc(ir_run)
        }
        # ir_measures 0.4.3 already yields each measure's default (0) for judged queries
        # without results; filling here keeps that independent of the provider/version.
        rows = [
            (qid, measure, values.get((measure, qid), 0.0), int(qid in run_queries))
            for measure in self.measures
            for qid in self.judged
        ]
        result = pd.DataFrame(rows, columns=[*PER_QUERY_COLUMNS, IN_RUN])
        result["value"] = result["value"].astype(float)
        result.attrs["filled_missing"] = len(missing)
        result.attrs["dropped_unjudged"] = len(unjudged)
        return result


def _checked_run(run: pd.DataFrame, order: str) -> pd.DataFrame:
    """The run's ids and ``order`` column, with string ids and numeric values; a missing
    rank or score is an error."""
    run = pd.DataFrame(
        {
            "query_id": run["query_id"].astype(str),
            "doc_id": run["doc_id"].astype(str),
            order: pd.to_numeric(run[order]),
        }
    )
    if run[order].isna().any():
        raise ValueError(f"run has missing {order}s")
    _refuse_duplicates(run, "run has")
    return run


def _refuse_duplicates(frame: pd.DataFrame, what: str) -> None:
    """ir_measures keys runs and qrels by (query, doc) and would collapse duplicates
    silently."""
    dup = frame.duplicated(["query_id", "doc_id"], keep=False)
    if dup.any():
        pairs = frame.loc[dup, ["query_id", "doc_id"]].head(3).to_dict("records")
        raise ValueError(f"{what} duplicate (query_id, doc_id): {pairs}")


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
    """Write a per-query frame as TSV (header ``query_id measure value``, then ``in_run``
    where the frame has it), atomically."""
    require_columns(df, PER_QUERY_COLUMNS, "per-query frame")
    columns = [*PER_QUERY_COLUMNS, *([IN_RUN] if IN_RUN in df.columns else [])]
    with atomic_output(path) as tmp:
        df.loc[:, columns].to_csv(tmp, sep="\t", index=False)


def read_per_query(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a TSV written by :func:`write_per_query`; ids stay strings, ``in_run`` (where
    the file has it) becomes bool."""
    df = pd.read_csv(path, sep="\t", dtype=str, na_filter=False)
    if tuple(df.columns) not in (PER_QUERY_COLUMNS, (*PER_QUERY_COLUMNS, IN_RUN)):
        raise ValueError(
            f"{path}: expected header {PER_QUERY_COLUMNS} (optionally followed by "
            f"{IN_RUN!r}), got {tuple(df.columns)}"
        )
    df["value"] = df["value"].astype(float)
    if IN_RUN in df.columns:
        flags = df[IN_RUN]
        bad = ~flags.isin(["0", "1"])
        if bad.any():
            line = int(bad.to_numpy().argmax()) + 2
            raise ValueError(f"{path}:{line}: {IN_RUN} must be 0 or 1, got {flags[bad].iloc[0]!r}")
        df[IN_RUN] = flags == "1"
    return df
