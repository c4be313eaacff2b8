"""Turning a training table into per-query lists of passages with targets.

A training table has one row per (query, passage): ``query_id``, ``query``, ``doc_id``,
``text``, ``rank`` (position in the first-stage or teacher run; missing for relevant
passages the run did not retrieve) and ``target`` (higher is better).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rank_distillm.io import require_columns

LOGGER = logging.getLogger(__name__)

TABLE_COLUMNS = ["query_id", "query", "doc_id", "text", "rank", "target"]
SAMPLERS = ("single_relevant", "top")


@dataclass(frozen=True)
class QueryList:
    """One query's candidates: row positions in the table, in rank order (unranked last)."""

    query_id: str
    rows: np.ndarray
    targets: np.ndarray
    in_run: np.ndarray


@dataclass(frozen=True)
class Sample:
    query_id: str
    rows: list[int]
    targets: list[float]


def group_queries(table: pd.DataFrame) -> list[QueryList]:
    """Split the table into per-query candidate lists, keeping first-appearance order."""
    require_columns(table, TABLE_COLUMNS, "training table")
    order = table.assign(_row=np.arange(len(table)), _unranked=table["rank"].isna())
    order = order.sort_values(["_unranked", "rank"], kind="stable")
    lists = []
    for query_id, group in order.groupby("query_id", sort=False):
        lists.append(
            QueryList(
                query_id=str(query_id),
                rows=group["_row"].to_numpy(),
                targets=group["target"].to_numpy(dtype=np.float64),
                in_run=~group["_unranked"].to_numpy(),
            )
        )
    position = {query_id: i for i, query_id in enumerate(table["query_id"].drop_duplicates())}
    return sorted(lists, key=lambda item: position[item.query_id])


def single_relevant(query: QueryList, negatives: int, rng: random.Random) -> Sample | None:
    """Paper's stage 1: one passage uniformly among those with the highest label > 0
    (retrieved or not), plus ``negatives`` non-relevant passages drawn uniformly from
    the run without replacement (fewer when the run has fewer). ``None`` without a
    relevant passage or without any negative."""
    best = query.targets.max(initial=0.0)
    if best <= 0:
        return None
    positives = np.flatnonzero(query.targets == best)
    pool = np.flatnonzero((query.targets <= 0) & query.in_run)
    if len(pool) == 0:
        return None
    chosen = [int(query.rows[rng.choice(positives.tolist())])]
    picked = rng.sample(pool.tolist(), k=min(negatives, len(pool)))
    chosen += [int(query.rows[i]) for i in picked]
    return Sample(query.query_id, chosen, [1.0] + [0.0] * len(picked))


def top(query: QueryList, depth: int) -> Sample | None:
    """Paper's stage 2: the first ``depth`` passages in run order with their targets."""
    keep = np.flatnonzero(query.in_run)[:depth]
    if len(keep) < 2:
        return None
    return Sample(
        query.query_id,
        [int(row) for row in query.rows[keep]],
        [float(target) for target in query.targets[keep]],
    )


def draw(
    queries: list[QueryList], sampler: str, negatives: int, depth: int, rng: random.Random
) -> tuple[list[Sample], int]:
    """One sample per query with the named sampler; returns the samples and how many
    queries had to be skipped (no relevant passage, or fewer than two candidates)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of: {', '.join(SAMPLERS)}")
    samples = []
    for query in queries:
        sample = (
            single_relevant(query, negatives, rng)
            if sampler == "single_relevant"
            else top(query, depth)
        )
        if sample is not None:
            samples.append(sample)
    return samples, len(queries) - len(samples)
