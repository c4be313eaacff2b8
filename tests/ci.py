"""What CI (``CI=true``) requires of the tests: every test runs there."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_folder() -> Path:
    """``../shared`` beside the checkout (real data, read-only), or, for a clone made
    elsewhere (``git clone . /tmp/...``), beside the checkout it was cloned from; the
    environment variable ``RANK_DISTILLM_SHARED`` names it explicitly."""
    if "RANK_DISTILLM_SHARED" in os.environ:
        return Path(os.environ["RANK_DISTILLM_SHARED"])
    beside = REPO.parent / "shared"
    if beside.is_dir():
        return beside
    origin = subprocess.run(
        ["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if origin and Path(origin).is_dir():
        return Path(origin).resolve().parent / "shared"
    return beside


def skip_or_fail_in_ci(reason: str) -> NoReturn:
    """Skip a test whose prerequisite is missing here; in CI, where every test must run,
    fail with the same reason instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)
