"""First-stage retrieval: BM25 with PyTerrier + PISA (no Java needed)."""

from __future__ import annotations

import fcntl
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

LOGGER = logging.getLogger(__name__)


def build_index(docs: Iterable[tuple[str, str]], index_dir: Path, threads: int = 1) -> None:
    """Index ``(doc_id, text)`` pairs with PISA (Porter2 stemming, Terrier stopwords).

    Built in a temporary folder and renamed, so a crash leaves no half-built index.
    """
    import pyterrier_pisa

    tmp_dir = index_dir.with_name(f".tmp-{index_dir.name}")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.parent.mkdir(parents=True, exist_ok=True)
    index = pyterrier_pisa.PisaIndex(str(tmp_dir), text_field="text", threads=threads)
    index.index({"docno": doc_id, "text": text} for doc_id, text in docs)
    shutil.rmtree(index_dir, ignore_errors=True)
    tmp_dir.rename(index_dir)


def bm25(
    index_dir: Path,
    topics: pd.DataFrame,
    k1: float = 0.9,
    b: float = 0.4,
    num_results: int = 100,
    threads: int = 1,
) -> pd.DataFrame:
    """Retrieve the top ``num_results`` per query as a run frame (1-based ranks).

    Queries that retrieve nothing (e.g. only stopwords) are absent from the run; they
    are logged with their count, and evaluation scores them 0.
    """
    import pyterrier_pisa

    index = pyterrier_pisa.PisaIndex(str(index_dir), threads=threads)
    # The first retriever of a (k1, b) writes its scoring data into the index folder;
    # parallel jobs on one index (one per query set) take turns there, else one maps a
    # file the other is still writing (SIGBUS). Later ones find the data and only read.
    with open(Path(index_dir) / ".prepare.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        retriever = index.bm25(k1=k1, b=b, num_results=num_results)
    result = retriever(topics.rename(columns={"query_id": "qid", "text": "query"}))
    run = pd.DataFrame(
        {
            "query_id": result["qid"].astype(str),
            "doc_id": result["docno"].astype(str),
            "rank": result["rank"].astype("int64") + 1,  # PyTerrier ranks are 0-based
            "score": result["score"].astype("float64"),
        }
    )
    empty = sorted(set(topics["query_id"]) - set(run["query_id"]))
    if empty:
        LOGGER.warning("%d queries retrieved nothing (first: %s)", len(empty), empty[:5])
    return run
