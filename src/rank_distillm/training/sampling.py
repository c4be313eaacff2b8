"""Turning a training table into per-query lists of passages with targets, and samples.

A query list holds row positions into a :class:`~rank_distillm.training.tables.TrainingTable`
in rank order (relevant passages the run missed last), their targets and whether each
row was retrieved.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import numpy as np

from rank_distillm.training.tables import TrainingTable

LOGGER = logging.getLogger(__name__)


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


def group_queries(table: TrainingTable) -> list[QueryList]:
    """Per-query candidate lists in table order (views into the table's arrays)."""
    lists = []
    rows = np.arange(len(table), dtype=np.int64)
    in_run = ~np.isnan(table.ranks)
    for i, query_id in enumerate(table.query_ids):
        start, stop = table.offsets[i], table.offsets[i + 1]
        lists.append(
            QueryList(query_id, rows[start:stop], table.targets[start:stop], in_run[start:stop])
        )
    return lists


def single_relevant(query: QueryList, negatives: int, rng: random.Random) -> Sample | None:
    """Paper's stage 1: one passage uniformly among those with the highest label > 0
    (retrieved or not), plus ``negatives`` non-relevant passages drawn uniformly from
    the run without replacement (fewer when the run has fewer). ``None`` without a
    relevant passage or without any negative."""
    best = query.targets.max(initial=0.0)
    if best <= 0:
        return None
    return _one_positive(query, np.flatnonzero(query.targets == best), negatives, rng)


def any_relevant(query: QueryList, negatives: int, rng: random.Random) -> Sample | None:
    """As :func:`single_relevant`, but the positive is drawn uniformly among *every*
    passage labelled > 0, whatever its grade (lightning-ir 0.0.6's ``single_relevant``).
    The two agree on binary qrels such as MS MARCO's."""
    return _one_positive(query, np.flatnonzero(query.targets > 0), negatives, rng)


def _one_positive(
    query: QueryList, positives: np.ndarray, negatives: int, rng: random.Random
) -> Sample | None:
    pool = np.flatnonzero((query.targets <= 0) & query.in_run)
    if len(positives) == 0 or len(pool) == 0:
        return None
    chosen = [int(query.rows[rng.choice(positives.tolist())])]
    picked = rng.sample(pool.tolist(), k=min(negatives, len(pool)))
    chosen += [int(query.rows[i]) for i in picked]
    return Sample(query.query_id, chosen, [1.0] + [0.0] * len(picked))


#: Stage-1 samplers: one positive and ``negatives`` non-relevant passages per query.
ONE_POSITIVE = {"single_relevant": single_relevant, "any_relevant": any_relevant}
SAMPLERS = (*ONE_POSITIVE, "top")


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
        if sampler in ONE_POSITIVE:
            sample = ONE_POSITIVE[sampler](query, negatives, rng)
        else:
            sample = top(query, depth)
        if sample is not None:
            samples.append(sample)
    return samples, len(queries) - len(samples)
