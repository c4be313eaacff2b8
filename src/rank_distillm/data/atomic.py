"""Atomic writing: a file appears complete or not at all.

Every writer of the pipeline goes through :func:`atomic_output` (temp file next to the
target, fsync, ``os.replace``), so a crash never leaves a half-written file that looks
complete to Snakemake, and a full disk or a read-only folder is named with what to do.
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rank_distillm.data.textfiles import PathLike

# Writing errors a user fixes outside the pipeline, with what to do.
_STORAGE_ERRORS = {
    errno.ENOSPC: "free space on that disk, or point results/ elsewhere",
    errno.EDQUOT: "your disk quota is full",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "you may not write to that folder",
    errno.EPERM: "you may not write to that folder",
}


@contextmanager
def atomic_output(path: PathLike) -> Iterator[Path]:
    """Yield a temp path next to ``path``; move it onto ``path`` only if the block succeeds.

    The temp name ends with the target's name, so suffix-based inference (``.gz``) still works.
    Parent directories are created. On error the temp file is removed and ``path`` is untouched.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{target.name}")
        try:
            yield tmp
            with open(tmp, "rb") as f:  # flush to disk before the rename makes it visible
                os.fsync(f.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as error:
        if error.errno not in _STORAGE_ERRORS:
            raise
        raise OSError(
            error.errno,
            f"{target}: could not write it ({error.strerror}); {_STORAGE_ERRORS[error.errno]}. "
            "Nothing was written there; earlier outputs are untouched",
        ) from error


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding=encoding)
