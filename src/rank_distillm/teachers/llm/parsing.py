"""Reading a permutation out of an LLM's answer, repaired the way rank_llm repairs it.

The rule (rank_llm 0.25.7, ``ListwiseRankLLM.receive_permutation`` and
``ListwiseInferenceHandler._clean_response``): text up to a ``</think>`` is dropped,
look-alike digits (superscripts, circled, full-width) are mapped to ASCII, every run of
decimal digits is an identifier; identifiers outside ``1..n`` (*invented*) and repeats of an earlier
one (*repeated*) are dropped; passages never named (*missing*) follow the named ones in
their previous order. An answer with no identifier at all keeps the window as it was. The
result is always a permutation of the whole window: nothing crashes, nothing is lost.
What had to be repaired is counted, so a job log says how often the teacher misbehaved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, fields

# rank_llm's table, verbatim (superscript, subscript, circled, full-width, enclosed digits).
_FAKE_DIGITS = str.maketrans(
    "⁰¹²³⁴⁵⁶⁷⁸⁹₀₁₂₃₄₅₆₇₈₉①②③④⑤⑥⑦⑧⑨❶❷❸❹❺❻❼❽❾０１２３４５６７８９🄀🄁🄂🄃🄄🄅🄆🄇🄈🄉",
    "0123456789012345678912345678912345678901234567890123456789",
)
# The answer format the prompts ask for; anything else is counted as off-format.
_WELL_FORMED = re.compile(r"^\[\d+\]( > \[\d+\])*$")


@dataclass
class RepairCounts:
    """Per-window tallies; ``*_ids`` count identifiers, the rest count windows."""

    windows: int = 0
    exact: int = 0  # a complete permutation, nothing repaired
    off_format: int = 0  # not literally "[a] > [b] > ...", whether or not it parsed
    no_identifiers: int = 0  # no number at all: the window keeps its order
    repeated: int = 0
    repeated_ids: int = 0
    invented: int = 0
    invented_ids: int = 0
    missing: int = 0
    missing_ids: int = 0

    def __add__(self, other: RepairCounts) -> RepairCounts:
        return RepairCounts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def total(cls, counts: Iterable[RepairCounts]) -> RepairCounts:
        result = cls()
        for count in counts:
            result = result + count
        return result

    def summary(self) -> str:
        """One log line, e.g. ``9 windows: 7 exact, 1 off-format, ...``."""
        return (
            f"{self.windows} windows: {self.exact} exact, {self.off_format} off-format, "
            f"{self.repeated} with repeated ids ({self.repeated_ids} dropped), "
            f"{self.invented} with invented ids ({self.invented_ids} dropped), "
            f"{self.missing} with missing ids ({self.missing_ids} appended in previous order), "
            f"{self.no_identifiers} with no identifier at all (order kept)"
        )


def identifiers(answer: str) -> list[int]:
    """Every number in the answer (after ``</think>``), in order, as rank_llm reads them."""
    if "</think>" in answer:
        answer = answer.split("</think>")[-1].strip()
    answer = answer.translate(_FAKE_DIGITS)
    # rank_llm tests ``isdigit``, which also accepts digits ``int`` cannot read (such as "⑴");
    # one of those makes rank_llm keep the whole window's order. Here it only separates.
    cleaned = "".join(char if char.isdecimal() else " " for char in answer)
    return [int(token) for token in cleaned.split()]


def parse_permutation(answer: str, window_length: int) -> tuple[list[int], RepairCounts]:
    """The 0-based order of a window of ``window_length`` passages, and what was repaired."""
    counts = RepairCounts(windows=1)
    numbers = identifiers(answer)
    if _WELL_FORMED.match(answer.strip()) is None:
        counts.off_format = 1
    order: list[int] = []
    seen: set[int] = set()
    for number in numbers:
        index = number - 1
        if not 0 <= index < window_length:
            counts.invented_ids += 1
        elif index in seen:
            counts.repeated_ids += 1
        else:
            seen.add(index)
            order.append(index)
    missing = [index for index in range(window_length) if index not in seen]
    counts.missing_ids = len(missing)
    counts.no_identifiers = int(not numbers)
    counts.repeated = int(counts.repeated_ids > 0)
    counts.invented = int(counts.invented_ids > 0)
    counts.missing = int(counts.missing_ids > 0)
    counts.exact = int(not (counts.repeated or counts.invented or counts.missing))
    return order + missing, counts
