"""Choosing between ways of computing the same thing by timing them, once per process.

Which kernels are fastest depends on the CPU (MKL's AVX-512 GEMM on an Intel Xeon,
oneDNN's fused kernels on an AMD EPYC), the thread count and the shapes, so a choice
written down on one machine is wrong on another. Like cuDNN's benchmark mode,
:func:`fastest` runs each candidate on the real work, interleaved (A, B, A, B, so a
neighbour's load falls on all of them alike), keeps the fastest by its best time, logs
the timings and remembers the winner for its key for the rest of the process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Mapping

LOGGER = logging.getLogger(__name__)

#: Timed rounds per candidate, after one untimed warm-up call each.
ROUNDS = 5
_CHOSEN: dict[Hashable, str] = {}


def fastest(
    key: Hashable,
    candidates: Mapping[str, Callable[[], object]],
    what: str = "kernels",
    rounds: int = ROUNDS,
    clock: Callable[[], float] | None = None,
) -> str:
    """The name of the fastest of ``candidates`` (each a call doing the same work),
    measured the first time ``key`` is asked for and remembered after that.

    With one candidate nothing is timed. Ties keep the first candidate named. ``clock``
    is ``time.perf_counter`` by default (wall time, as the caller waits for it); work on
    one thread is better timed by ``time.thread_time``, which a neighbour's load on a
    shared machine does not inflate.
    """
    clock = clock or time.perf_counter
    if not candidates:
        raise ValueError(f"no candidates to choose {what} from for {key!r}")
    if key in _CHOSEN:
        return _CHOSEN[key]
    if len(candidates) == 1:
        _CHOSEN[key] = next(iter(candidates))
        return _CHOSEN[key]
    started = clock()
    for run in candidates.values():  # warm-up: JIT compilation, weight casts, caches
        run()
    best = {name: float("inf") for name in candidates}
    for _ in range(rounds):
        for name, run in candidates.items():
            start = clock()
            run()
            best[name] = min(best[name], clock() - start)
    winner = min(best, key=best.__getitem__)
    _CHOSEN[key] = winner
    LOGGER.info(
        "%s for %s: %s (best of %d interleaved rounds: %s; measured in %.0f ms)",
        what,
        key,
        winner,
        rounds,
        ", ".join(f"{name} {seconds * 1e3:.2f} ms" for name, seconds in best.items()),
        (clock() - started) * 1e3,
    )
    return winner


def chosen() -> dict[Hashable, str]:
    """What this process has chosen so far, by key (a copy)."""
    return dict(_CHOSEN)


def forget() -> None:
    """Drop every remembered choice, so the next call measures again (tests)."""
    _CHOSEN.clear()
