"""Tests for rank_distillm.model.kernel_choice: the fastest candidate wins, timed once
per key, interleaved, and the choice is logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from rank_distillm.model import kernel_choice


@pytest.fixture(autouse=True)
def no_remembered_choices() -> Iterator[None]:
    kernel_choice.forget()
    yield
    kernel_choice.forget()


class FakeClock:
    """A clock that moves only when a candidate says it took time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[str] = []

    def __call__(self) -> float:
        return self.now

    def candidate(self, name: str, seconds: float):
        def run() -> None:
            self.calls.append(name)
            self.now += seconds

        return run


@pytest.mark.parametrize("order", [("slow", "fast"), ("fast", "slow")])
def test_the_slower_of_two_candidates_loses(order: tuple[str, str]) -> None:
    clock = FakeClock()
    durations = {"slow": 0.005, "fast": 0.002}
    candidates = {name: clock.candidate(name, durations[name]) for name in order}
    assert kernel_choice.fastest("shape A", candidates, rounds=2, clock=clock) == "fast"
    # One warm-up each, then rounds interleaved: A B, A B, A B.
    assert clock.calls == [*order, *order, *order]


def test_the_best_round_counts_not_the_mean() -> None:
    """A neighbour's burst of load slows one round; the best round is the kernel's speed."""
    clock = FakeClock()
    times = {"a": iter([1.0, 0.010, 0.010, 0.003]), "b": iter([1.0, 0.004, 0.004, 0.004])}

    def run(name: str):
        return lambda: setattr(clock, "now", clock.now + next(times[name]))

    candidates = {"a": run("a"), "b": run("b")}
    assert kernel_choice.fastest("k", candidates, rounds=3, clock=clock) == "a"


def test_a_choice_is_measured_once_per_key_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    candidates = {"x": clock.candidate("x", 0.003), "y": clock.candidate("y", 0.001)}
    with caplog.at_level(logging.INFO, logger="rank_distillm.model.kernel_choice"):
        assert kernel_choice.fastest("key 1", candidates, "kernels", rounds=3, clock=clock) == "y"
    runs = len(clock.calls)
    assert runs == 2 * (1 + 3)
    assert kernel_choice.fastest("key 1", candidates, clock=clock) == "y"
    assert len(clock.calls) == runs  # remembered: nothing timed again
    assert kernel_choice.chosen() == {"key 1": "y"}
    (record,) = caplog.records
    assert record.getMessage() == (
        "kernels for key 1: y (best of 3 interleaved rounds: x 3.00 ms, y 1.00 ms; "
        "measured in 16 ms)"  # warm-up 3 + 1, then 3 rounds of 3 + 1
    )
    # Another key is measured on its own (by default in ROUNDS rounds).
    assert kernel_choice.fastest("key 2", candidates, clock=clock) == "y"
    assert len(clock.calls) == runs + 2 * (1 + kernel_choice.ROUNDS)


def test_one_candidate_is_taken_without_timing_and_none_is_an_error() -> None:
    clock = FakeClock()
    assert kernel_choice.fastest("k", {"only": clock.candidate("only", 1.0)}, clock=clock) == "only"
    assert clock.calls == []
    with pytest.raises(ValueError, match="no candidates to choose kernels from for 'k2'"):
        kernel_choice.fastest("k2", {})


def test_ties_keep_the_first_candidate() -> None:
    clock = FakeClock()
    candidates = {
        "first": clock.candidate("first", 0.002),
        "second": clock.candidate("second", 0.002),
    }
    assert kernel_choice.fastest("k", candidates, clock=clock) == "first"
