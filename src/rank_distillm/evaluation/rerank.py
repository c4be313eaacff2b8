"""Re-ranking a run's top passages with a cross-encoder, in length-sorted batches."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from rank_distillm.data import trec as trec_io
from rank_distillm.model import precision as precisions
from rank_distillm.model.cross_encoder import CrossEncoder
from rank_distillm.model.pair_encoder import PairEncoder

LOGGER = logging.getLogger(__name__)


def default_device() -> str:
    """A GPU when torch sees one, else the CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def rerank(
    model: CrossEncoder,
    encoder: PairEncoder,
    run: pd.DataFrame,
    query_texts: dict[str, str],
    doc_texts: dict[str, str],
    depth: int = 100,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> pd.DataFrame:
    """Score each query's top ``depth`` passages; return the run ranked by the model.

    Texts are tokenised once each, pairs are scored in order of length, so padding is
    minimal; ties in the model's score keep the first-stage order. ``precision`` is a
    config value (``auto``, ``fp32``, ``bf16``; see :mod:`rank_distillm.model.precision`). A
    batch that runs out of GPU memory is retried in halves, and the job log says so.
    """
    chosen = precisions.choose(precision, device)
    precisions.log_choice(chosen, "re-ranking")
    candidates = trec_io.truncate_run(run, depth)
    missing = sorted(set(candidates["query_id"]) - set(query_texts))
    if missing:
        raise KeyError(f"{len(missing)} run queries have no text (first: {missing[:5]})")
    query_ids = candidates["query_id"].drop_duplicates().tolist()
    query_tokens = dict(
        zip(query_ids, encoder.query_ids([query_texts[q] for q in query_ids]), strict=True)
    )
    doc_ids = candidates["doc_id"].drop_duplicates().tolist()
    doc_tokens = dict(zip(doc_ids, encoder.doc_ids([doc_texts[d] for d in doc_ids]), strict=True))
    queries = [query_tokens[q] for q in candidates["query_id"]]
    docs = [doc_tokens[d] for d in candidates["doc_id"]]
    order = np.argsort([len(q) + len(d) for q, d in zip(queries, docs, strict=True)], kind="stable")
    model.to(device).eval()
    started = time.perf_counter()
    with torch.inference_mode(), chosen.autocast(device), precisions.tf32(device):
        scores = _score_in_batches(model, encoder, queries, docs, order, batch_size, device)
    seconds = time.perf_counter() - started
    LOGGER.info(
        "re-ranked %d pairs of %d queries in %.1f s (%.1f pairs/s, %s)",
        len(order),
        len(query_ids),
        seconds,
        len(order) / max(seconds, 1e-9),
        chosen.dtype,
    )
    return trec_io.rank_by_score(candidates.assign(score=scores))[trec_io.RUN_COLUMNS]


def _score_in_batches(
    model: CrossEncoder,
    encoder: PairEncoder,
    queries: list[list[int]],
    docs: list[list[int]],
    order: np.ndarray,
    batch_size: int,
    device: str | torch.device,
) -> np.ndarray:
    """The model's score of each pair (``queries[i]``, ``docs[i]``), batched along
    ``order`` (shortest first); a batch that runs out of memory is retried in halves."""
    scores = np.empty(len(order), dtype=np.float64)
    # Batches are cut from the shortest pairs up, and scored longest first: the first
    # batch takes the most memory (an out-of-memory error comes at once, not at the end),
    # and on a CPU the allocator keeps that memory for the shorter ones after it instead
    # of mapping fresh pages for each longer batch (a third of a short run's time).
    pending, size = _cut(order, batch_size), batch_size
    with tqdm(total=len(order), desc="re-ranking", unit="pair", mininterval=5) as progress:
        while pending:
            chunk = pending.pop()
            if len(chunk) > size:  # after an out-of-memory error: the rest stay smaller
                pending += _cut(chunk, size)
                continue
            batch = encoder.collate([queries[i] for i in chunk], [docs[i] for i in chunk])
            try:
                batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
                scores[chunk] = model(**batch).float().cpu().numpy()
            except torch.OutOfMemoryError:
                if size == 1:
                    raise
                del batch
                size = max(size // 2, 1)
                LOGGER.warning(
                    "out of memory scoring %d pairs of up to %d tokens on %s: "
                    "retrying in batches of %d (scores are kept; later batches stay smaller)",
                    len(chunk),
                    max(len(queries[i]) + len(docs[i]) + 3 for i in chunk),
                    device,
                    size,
                )
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                pending.append(chunk)
                continue
            progress.update(len(chunk))
    return scores


def _cut(indices: np.ndarray, size: int) -> list[np.ndarray]:
    """``indices`` in consecutive pieces of ``size`` (the last one shorter)."""
    return [indices[start : start + size] for start in range(0, len(indices), size)]
