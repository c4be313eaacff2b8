"""The "did you mean" part of an error message: the closest valid name, and the valid ones."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(value: str, choices: Iterable[str]) -> str | None:
    """The choice most like ``value``, if one is close enough to be a likely typo."""
    found = difflib.get_close_matches(value, list(choices), n=1)
    return found[0] if found else None


def did_you_mean(value: str, choices: Iterable[str], known: str = "known") -> str:
    """`` (did you mean 'x'?); known: a, b, c`` for a message about the bad ``value``."""
    choices = list(choices)
    close = closest(value, choices)
    listed = ", ".join(choices) or "none"
    return (f" (did you mean {close!r}?)" if close else "") + f"; {known}: {listed}"
