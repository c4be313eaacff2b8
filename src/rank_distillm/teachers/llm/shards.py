"""Splitting a teacher run's sampled queries into shards, one GPU job each.

The sample is drawn first (``data.query_sample``, the same for any number of shards), then
cut into ``count`` consecutive runs of whole blocks of ``batch_size`` queries, in the
first-stage run's query order. Whole blocks, because a block's windows go to the model
as one batch: every batch a shard sends is then the batch the unsharded job would send,
so with greedy decoding the shards' runs, concatenated in shard order, are the unsharded
run byte for byte.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index} of {self.count}: need 1 <= index <= count")

    def __str__(self) -> str:
        return f"shard {self.index} of {self.count}"

    def as_dict(self) -> dict[str, int]:
        return {"index": self.index, "count": self.count}


def block_bounds(num_queries: int, batch_size: int, shard: Shard) -> tuple[int, int]:
    """The ``[begin, end)`` query positions of ``shard``: blocks spread as evenly as they go.

    More shards than blocks would leave a shard with nothing to do, which is an error
    that says how many shards the queries allow.
    """
    blocks = math.ceil(num_queries / batch_size)
    if shard.count > blocks:
        raise ValueError(
            f"{num_queries} queries in blocks of batch_size {batch_size} make {blocks} "
            f"blocks, fewer than the {shard.count} shards: use shards <= {blocks} "
            "(or a smaller batch_size)"
        )
    first = (shard.index - 1) * blocks // shard.count
    last = shard.index * blocks // shard.count
    return first * batch_size, min(last * batch_size, num_queries)


def shard_items(items: Sequence[T], batch_size: int, shard: Shard) -> list[T]:
    """The items (queries in run order) that ``shard`` generates."""
    begin, end = block_bounds(len(items), batch_size, shard)
    return list(items[begin:end])


def largest_shard(num_queries: int, batch_size: int, shards: int) -> int:
    """The queries of the largest of ``shards`` shards (for sizing each job's runtime)."""
    return max(
        end - begin
        for begin, end in (
            block_bounds(num_queries, batch_size, Shard(index, shards))
            for index in range(1, shards + 1)
        )
    )
