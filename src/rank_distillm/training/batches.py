"""What the training loop consumes: optimizer steps' samples in a resumable order, and
their token batches, built ahead of the model in background threads on a GPU.

Each epoch shuffles the queries and draws one sample per query (``sampling.draw``) with
one seeded ``random.Random``; an optimizer step takes the next ``queries_per_step``
samples (an epoch's remainder is dropped, so steps never straddle epochs). A step's
place in this stream is its epoch, its index in the epoch and the generator's state at
the epoch's start: enough to replay the stream from any step after a restart.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch

from rank_distillm.data.texts import TextLookup
from rank_distillm.model.pair_encoder import PairEncoder
from rank_distillm.training import sampling
from rank_distillm.training.tables import TrainingTable

LOGGER = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True)
class StepSamples:
    """One optimizer step's samples (all processes'), and where it is in the stream."""

    epoch: int
    index: int  # steps of this epoch before this one
    epoch_rng_state: tuple  # the sampling generator's state when this epoch was drawn
    samples: list[sampling.Sample]


def sample_steps(
    queries: list[sampling.QueryList],
    sampler: str,
    negatives: int,
    depth: int,
    queries_per_step: int,
    rng: random.Random,
    epoch: int = 0,
    skip: int = 0,
) -> Iterator[StepSamples]:
    """Steps of ``queries_per_step`` freshly drawn samples, epoch after epoch, from step
    ``skip`` of epoch ``epoch`` on (``rng`` must then be in the state that epoch began
    with: :attr:`StepSamples.epoch_rng_state`)."""
    while True:
        state = rng.getstate()
        order = queries[:]
        rng.shuffle(order)
        samples, skipped = sampling.draw(order, sampler, negatives, depth, rng)
        if epoch == 0 and skipped:
            LOGGER.warning(
                "%d of %d training queries skipped by the %s sampler "
                "(no relevant passage or too few candidates)",
                skipped,
                len(queries),
                sampler,
            )
        if len(samples) < queries_per_step:
            raise ValueError(
                f"{len(samples)} usable queries are fewer than queries_per_step "
                f"({queries_per_step})"
            )
        for index in range(skip, len(samples) // queries_per_step):
            start = index * queries_per_step
            yield StepSamples(epoch, index, state, samples[start : start + queries_per_step])
        epoch, skip = epoch + 1, 0


def shares(
    samples: list[sampling.Sample], process: int, processes: int, micro_batches: int
) -> list[list[sampling.Sample]]:
    """This process's micro-batches of a step: the step's samples split evenly between
    ``processes``, each share into ``micro_batches`` equal parts, in order."""
    size, left = divmod(len(samples), processes * micro_batches)
    if left or not size:
        raise ValueError(
            f"{len(samples)} queries per step do not split into {processes} processes x "
            f"{micro_batches} micro-batches"
        )
    own = samples[process * size * micro_batches :][: size * micro_batches]
    return [own[i * size : (i + 1) * size] for i in range(micro_batches)]


def targets_and_mask(samples: list[sampling.Sample]) -> tuple[torch.Tensor, torch.Tensor]:
    """(queries x passages) targets and validity mask, padded to the longest list."""
    width = max(len(sample.rows) for sample in samples)
    targets = torch.zeros(len(samples), width)
    mask = torch.zeros(len(samples), width, dtype=torch.bool)
    for i, sample in enumerate(samples):
        targets[i, : len(sample.rows)] = torch.tensor(sample.targets)
        mask[i, : len(sample.rows)] = True
    return targets, mask


class BatchBuilder:
    """Token ids for samples. Passage texts are fetched and tokenised when first drawn,
    so no corpus is held in memory; tokens are kept for up to ``cache_size`` passages
    (all of a small table's, which then costs no lookups after the first epoch) and for
    every query (each recurs every epoch).

    Safe to call from several threads: text lookups (an ir_datasets docstore reads one
    file) take turns, tokenising (Rust, without the GIL) runs in parallel, and a batch
    never depends on what the cache holds.
    """

    def __init__(
        self,
        table: TrainingTable,
        texts: TextLookup,
        encoder: PairEncoder,
        cache_size: int = 500_000,
    ) -> None:
        self.table, self.texts, self.encoder = table, texts, encoder
        self.cache_size = cache_size
        self._query_tokens: dict[str, list[int]] = {}
        self._doc_tokens: dict[str, list[int]] = {}
        self._lookup = threading.Lock()
        self._cache = threading.Lock()

    def _tokens(
        self,
        ids: Iterable[str],
        cache: dict[str, list[int]],
        fetch: Callable[[list[str]], list[str]],
        encode: Callable[[list[str]], list[list[int]]],
        limit: int | None = None,
    ) -> dict[str, list[int]]:
        """Token ids of ``ids``: from ``cache``, else fetched, encoded and cached (the
        cache is emptied first when the new ones would take it past ``limit``)."""
        tokens = {key: cache.get(key) for key in ids}
        missing = [key for key, value in tokens.items() if value is None]
        if missing:
            with self._lookup:
                texts = fetch(missing)
            tokens.update(zip(missing, encode(texts), strict=True))
            with self._cache:
                if limit is not None and len(cache) + len(missing) > limit:
                    cache.clear()
                if limit is None or len(missing) <= limit:
                    cache.update((key, tokens[key]) for key in missing)
        return tokens  # type: ignore[return-value]

    def batch(self, samples: list[sampling.Sample]) -> dict[str, torch.Tensor]:
        """Flat pair tensors (one row per (query, passage) in sample order), and the
        (queries x passages) ``targets`` and ``mask``."""
        queries = self._tokens(
            (sample.query_id for sample in samples),
            self._query_tokens,
            self.texts.query_texts,
            self.encoder.query_ids,
        )
        doc_ids = self.table.doc_ids(row for sample in samples for row in sample.rows)
        docs = self._tokens(
            doc_ids, self._doc_tokens, self.texts.doc_texts, self.encoder.doc_ids, self.cache_size
        )
        inputs = self.encoder.collate(
            [queries[sample.query_id] for sample in samples for _ in sample.rows],
            [docs[doc_id] for doc_id in doc_ids],
        )
        targets, mask = targets_and_mask(samples)
        return {**inputs, "targets": targets, "mask": mask}


class Prefetcher(Generic[In, Out]):
    """``build`` applied to each item of ``items`` by ``workers`` background threads, up
    to ``depth`` items ahead of the consumer, results in the items' order.

    ``items`` is advanced in the consumer's thread only, so a seeded stream stays
    deterministic; an exception in ``build`` is raised in the consumer.
    """

    def __init__(
        self,
        items: Iterator[In],
        build: Callable[[In], Out],
        workers: int = 1,
        depth: int = 8,
    ) -> None:
        self._items, self._build = items, build
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batches")
        self._pending: deque[Future[Out]] = deque()
        self._depth = max(depth, 1)
        self._exhausted = False

    def __iter__(self) -> Prefetcher[In, Out]:
        return self

    def __next__(self) -> Out:
        while not self._exhausted and len(self._pending) < self._depth:
            try:
                item = next(self._items)
            except StopIteration:
                self._exhausted = True
                break
            self._pending.append(self._pool.submit(self._build, item))
        if not self._pending:
            raise StopIteration
        return self._pending.popleft().result()

    def close(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Prefetcher[In, Out]:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
