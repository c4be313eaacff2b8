"""A trained re-ranker as a PyTerrier transformer: ``bm25 >> CrossEncoderReranker(path)``.

``CrossEncoderReranker`` loads any checkpoint the pipeline writes, or a lightning-ir one
(a folder or a Hugging Face hub id), and scores a result frame (``qid``, ``query``,
``docno``, ``text``) with the pipeline's own re-ranking engine (``rerank.rerank``:
length-sorted batches, ties kept in first-stage order), so a ``pt.Experiment`` gives the
figures the workflow's rerank and evaluate stages give. Frames without ``text`` get it
from an ir_datasets docstore through ``DocTextLoader``, the same text the pipeline reads
(``datasets.doc_texts``).

This module is ``rank_distillm.pyterrier``; ``import pyterrier`` below is the PyTerrier
package (absolute imports), not this module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyterrier as pt

from rank_distillm.data import datasets

LOGGER = logging.getLogger(__name__)


class DocTextLoader(pt.Transformer):
    """Adds a ``text`` column from an ir_datasets docstore: ``datasets.record_text`` of
    each ``docno`` (title + body where the corpus has both), cut to ``max_words`` words.

    ``dataset`` is any ir_datasets id, or a local collection's id once its manifest is
    registered (pass the manifest files as ``manifests``). A ``docno`` missing from the
    collection is an error naming it.
    """

    def __init__(
        self,
        dataset: str,
        manifests: Sequence[str | Path] = (),
        max_words: int | None = None,
    ) -> None:
        self.dataset_id = dataset
        self.manifests = [str(path) for path in manifests]
        self.max_words = max_words
        self._dataset: Any = None
        self._store: Any = None

    def __repr__(self) -> str:
        return f"DocTextLoader({self.dataset_id!r})"

    def transform_outputs(self, inp_columns: list[str]) -> list[str]:
        pt.validate.columns(inp_columns, includes=["docno"])
        return [*inp_columns, "text"] if "text" not in inp_columns else list(inp_columns)

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        pt.validate.columns(inp, includes=["docno"])
        if inp.empty:
            return inp.assign(text=pd.Series(dtype=str))
        if self._store is None:
            self._dataset = datasets.load(self.dataset_id, self.manifests)
            self._store = self._dataset.docs_store()
        texts = datasets.doc_texts(
            self._dataset, inp["docno"].astype(str), max_words=self.max_words, store=self._store
        )
        return inp.assign(text=inp["docno"].astype(str).map(texts))


class CrossEncoderReranker(pt.Transformer):
    """Re-ranks a result frame with a monoELECTRA checkpoint (lightning-ir layout).

    ``checkpoint``: a checkpoint folder (``results/<experiment>/models/<name>/checkpoint``)
    or a hub id such as ``webis/monoelectra-base``. Query and passage lengths come from
    the checkpoint unless given. ``texts``: where to get passage texts when the frame has
    no ``text`` column: an ir_datasets id or a ``DocTextLoader``. Every row of the input
    is scored (cut the first stage with ``% k`` or its ``num_results``); the output has
    the input's columns with the model's ``score`` and a 0-based ``rank``, ordered by
    query (input order) and rank, ties in first-stage order (the input's ``rank``, else
    its ``score``, else row order). ``precision``: as the pipeline's ``rerank.precision``
    (``auto``: bf16 autocast on a GPU and on CPUs with bf16 instructions, else fp32).
    """

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        batch_size: int = 64,
        device: str | None = None,
        precision: str = "auto",
        query_length: int | None = None,
        doc_length: int | None = None,
        texts: str | DocTextLoader | None = None,
    ) -> None:
        from rank_distillm.evaluation.rerank import default_device
        from rank_distillm.model.checkpoints import check_lengths, load_cross_encoder
        from rank_distillm.model.pair_encoder import PairEncoder

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.checkpoint = str(checkpoint)
        self.model, tokenizer = load_cross_encoder(self.checkpoint, query_length, doc_length)
        check_lengths(self.model, tokenizer, self.checkpoint)
        self.encoder = PairEncoder(tokenizer, self.model.query_length, self.model.doc_length)
        self.batch_size = batch_size
        self.device = device or default_device()
        self.precision = precision
        if isinstance(texts, str):
            texts = DocTextLoader(texts, max_words=self.model.doc_length)
        self.texts = texts
        LOGGER.info(
            "re-ranker %s: query length %d, passage length %d, on %s",
            self.checkpoint,
            self.model.query_length,
            self.model.doc_length,
            self.device,
        )

    def __repr__(self) -> str:
        return f"CrossEncoderReranker({self.checkpoint!r})"

    def _check_columns(self, columns: Sequence[str]) -> None:
        """PyTerrier's input validation: a result frame with ``query`` and ``text``, or
        without ``text`` when the re-ranker has a text loader."""
        with pt.validate.any(list(columns), context=self) as modes:
            modes.result_frame(
                ["query", "text"], mode="result frame with text (or give texts=<ir_datasets id>)"
            )
            if self.texts is not None:
                modes.result_frame(["query"], mode=f"result frame, text from {self.texts!r}")

    def transform_outputs(self, inp_columns: list[str]) -> list[str]:
        self._check_columns(inp_columns)
        extra = [c for c in ("text", "score", "rank") if c not in inp_columns]
        return [*inp_columns, *extra]

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        from rank_distillm.evaluation.rerank import rerank

        self._check_columns(list(inp.columns))
        if "text" not in inp.columns:
            assert self.texts is not None
            inp = self.texts(inp)
        frame = inp.reset_index(drop=True).astype({"qid": str, "docno": str})
        if frame.empty:
            return frame.assign(score=pd.Series(dtype="float64"), rank=pd.Series(dtype="int64"))
        _check_consistent(frame)
        run = pd.DataFrame(
            {
                "query_id": frame["qid"],
                "doc_id": frame["docno"],
                "rank": first_stage_ranks(frame),
            }
        )
        queries = frame.drop_duplicates("qid")
        docs = frame.drop_duplicates("docno")
        doc_length = self.model.doc_length
        reranked = rerank(
            self.model,
            self.encoder,
            run,
            dict(zip(queries["qid"], queries["query"], strict=True)),
            {
                doc_id: datasets.truncate_words(text, doc_length)
                for doc_id, text in zip(docs["docno"], docs["text"], strict=True)
            },
            depth=int(run.groupby("query_id").size().max()),
            batch_size=self.batch_size,
            device=self.device,
            precision=self.precision,
        )
        ranked = pd.DataFrame(
            {
                "qid": reranked["query_id"],
                "docno": reranked["doc_id"],
                "score": reranked["score"].to_numpy(),
                "rank": reranked["rank"].to_numpy() - 1,  # PyTerrier ranks are 0-based
            }
        )
        rest = frame.drop(columns=[c for c in ("score", "rank") if c in frame.columns])
        out = ranked.merge(rest, on=["qid", "docno"], how="left", validate="one_to_one")
        return out[[*rest.columns, "score", "rank"]]


def first_stage_ranks(frame: pd.DataFrame) -> pd.Series:
    """Each row's place in its query before re-ranking: the frame's ``rank``, else by
    ``score`` (highest first, ties in row order), else row order."""
    if "rank" in frame.columns:
        return pd.to_numeric(frame["rank"])
    if "score" in frame.columns:
        order = frame.assign(_row=range(len(frame))).sort_values(
            ["score", "_row"], ascending=[False, True], kind="stable"
        )
        ranks = order.groupby("qid", sort=False).cumcount()
        return ranks.reindex(frame.index)
    return frame.groupby("qid", sort=False).cumcount()


def _check_consistent(frame: pd.DataFrame) -> None:
    """A (qid, docno) pair once, one query text per qid and one text per docno: the
    engine scores by id, so anything else would score the wrong text silently."""
    duplicated = frame.duplicated(["qid", "docno"])
    if duplicated.any():
        first = frame.loc[duplicated, ["qid", "docno"]].iloc[0].tolist()
        raise ValueError(
            f"{int(duplicated.sum())} rows repeat a (qid, docno) pair (first: {first}); "
            "each passage may occur once per query"
        )
    for key, column in (("qid", "query"), ("docno", "text")):
        counts = frame.groupby(key, sort=False)[column].nunique()
        clashing = counts[counts > 1]
        if not clashing.empty:
            raise ValueError(
                f"{len(clashing)} {key}s have more than one {column!r} "
                f"(first: {clashing.index[0]!r}); each {key} needs a single {column}"
            )
