"""docs/reliability.md: every test named in its tables exists (CI then shows it passes)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO

DOC = REPO / "docs" / "reliability.md"
NODE = re.compile(r"`(tests/[\w/]+\.py::\w+(?:\[[^\]`]+\])?)`")


def case_rows() -> list[str]:
    """Rows of the tables whose header starts with ``| case |`` (other tables are figures)."""
    rows, in_cases = [], False
    for line in DOC.read_text().splitlines():
        if not line.startswith("|"):
            in_cases = False
        elif line.startswith("| case |"):
            in_cases = True
        elif in_cases and not line.startswith("|---"):
            rows.append(line)
    return rows


def test_every_case_names_a_test() -> None:
    rows = case_rows()
    assert len(rows) >= 30
    untested = [row for row in rows if not NODE.search(row.rsplit("|", 2)[-2])]
    assert untested == []


def test_every_named_test_is_collected() -> None:
    named = {node for row in case_rows() for node in NODE.findall(row)}
    files = sorted({node.split("::")[0] for node in named})
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    missing = [
        node
        for node in sorted(named)
        if node not in collected and not any(c.startswith(f"{node}[") for c in collected)
    ]
    assert missing == []
