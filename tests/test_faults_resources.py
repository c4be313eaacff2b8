"""Writing where the disk is full or read-only: a message naming the file and what to do,
nothing half-written, nothing already computed lost. Uses small tmpfs mounts (root)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from rank_distillm.data import atomic
from rank_distillm.data import trec as trec_io
from rank_distillm.evaluation import measures as evaluate
from tests.ci import skip_or_fail_in_ci


@contextlib.contextmanager
def _tmpfs(target: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at ``target`` for the block, unmounted afterwards."""
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        reason = f"cannot mount a tmpfs here: {result.stderr.strip()}"
        skip_or_fail_in_ci(reason)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB file system."""
    with _tmpfs(tmp_path / "disk", "size=64k") as disk:
        yield disk


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    with _tmpfs(tmp_path / "ro", "size=64k,ro") as disk:
        yield disk


def big_run(rows: int = 20_000) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "query_id": [f"q{i // 100}" for i in range(rows)],
            "doc_id": [f"doc{i}" for i in range(rows)],
            "rank": [i % 100 + 1 for i in range(rows)],
            "score": [1.0 / (i % 100 + 1) for i in range(rows)],
        }
    )


def test_disk_full_names_the_file_and_keeps_what_was_there(small_disk: Path) -> None:
    earlier = small_disk / "runs" / "dl19" / "bm25.run"
    trec_io.write_run(big_run(5), earlier, tag="bm25")
    before = earlier.read_bytes()
    target = small_disk / "runs" / "dl19" / "model.run"
    with pytest.raises(OSError) as error:
        trec_io.write_run(big_run(), target, tag="model")
    message = str(error.value)
    assert f"{target}: could not write it (No space left on device)" in message
    assert "free space on that disk" in message
    assert "earlier outputs are untouched" in message
    assert not target.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["bm25.run"]  # no temp file
    assert earlier.read_bytes() == before


def test_metrics_on_a_full_disk_leave_no_file(small_disk: Path) -> None:
    filler = small_disk / "filler"
    with pytest.raises(OSError):
        filler.write_bytes(b"x" * 200_000)  # fill the disk
    per_query = pd.DataFrame(
        {"query_id": [f"q{i}" for i in range(2000)], "measure": "nDCG@10", "value": 0.5}
    )
    target = small_disk / "metrics" / "dl19.tsv"
    with pytest.raises(OSError, match="No space left on device"):
        evaluate.write_per_query(per_query, target)
    assert not target.exists()


def test_read_only_file_system_is_named(read_only_disk: Path) -> None:
    target = read_only_disk / "model-zoo.md"
    with pytest.raises(OSError) as error:
        atomic.atomic_write_text(target, "# table\n")
    assert f"{target}: could not write it (Read-only file system)" in str(error.value)
    assert "the file system is read-only" in str(error.value)
