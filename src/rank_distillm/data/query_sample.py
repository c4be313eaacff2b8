"""Which queries of a run a table or a teacher run uses: one seeded sample, shared by the
training tables and LLM teacher generation so both pick the same queries."""

from __future__ import annotations

import random


def sample_query_ids(query_ids: list[str], num_queries: int | None, seed: int) -> set[str]:
    """``num_queries`` ids drawn with ``seed`` from ``query_ids`` (all if None).

    Asking for more queries than there are is an error: a table with fewer queries than
    the experiment claims would be reported under the wrong name.
    """
    if num_queries is None or num_queries == len(query_ids):
        return set(query_ids)
    if num_queries > len(query_ids):
        raise ValueError(f"asked for {num_queries} queries, the run has {len(query_ids)}")
    return set(random.Random(seed).sample(query_ids, num_queries))
