"""The sliding window of listwise re-ranking, as rank_llm's ``sliding_windows`` moves it.

A window of ``window`` passages starts at the bottom of the candidate list and moves up by
``stride`` until it covers the top, so a relevant passage can climb from the bottom to rank
1 in one pass. Depth 100, window 20, stride 10 (the paper's setting) gives nine windows:
[80, 100), [70, 90), ..., [0, 20).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def window_spans(num_candidates: int, window: int, stride: int) -> list[tuple[int, int]]:
    """The ``(start, end)`` slices (0-based, end exclusive) in the order they are ranked.

    rank_llm 0.25.7, ``ListwiseRankLLM.sliding_windows``: the last window is clamped at 0 and
    may be shorter; a window that would only repeat the top one is skipped. The window is
    first cut to the number of candidates (rank_llm does that when ``top_k_retrieve`` is the
    list length; with its default of 100 a list of exactly ``stride`` candidates would get no
    window at all).
    """
    if window < 1 or not 1 <= stride <= window:
        raise ValueError(f"need window >= 1 and 1 <= stride <= window, got {window=}, {stride=}")
    size = min(window, num_candidates)
    end, start = num_candidates, num_candidates - size
    spans = []
    while end > 0 and start + stride != 0:
        start = max(start, 0)
        spans.append((start, end))
        end, start = end - stride, start - stride
    return spans


def apply_order(items: list[T], start: int, order: Sequence[int]) -> None:
    """Reorder ``items[start:start + len(order)]`` in place: position ``i`` of the window
    receives the window's element ``order[i]`` (``order`` is a permutation of its indices)."""
    window = items[start : start + len(order)]
    if sorted(order) != list(range(len(window))):
        raise ValueError(f"order {list(order)} is not a permutation of 0..{len(window) - 1}")
    items[start : start + len(order)] = [window[index] for index in order]
