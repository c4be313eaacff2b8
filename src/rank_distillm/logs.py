"""Sending a step's output, including that of C++ libraries (PISA), to its log file."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def log_to(path: str | os.PathLike[str] | None) -> Iterator[None]:
    """Redirect stdout, stderr (at the file-descriptor level) and logging to ``path``.

    PISA writes spdlog lines from C++ straight to file descriptor 1 and progress bars
    to 2; only a descriptor-level redirect catches those. ``None`` leaves output alone.
    """
    if path is None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", buffering=1) as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield
        except BaseException:
            # The traceback also reaches Snakemake's output; the log keeps it with the context.
            logging.getLogger("rank_distillm").exception("step failed")
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            root.removeHandler(handler)
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
