"""Query-passage pairs as model inputs: ``[CLS] query [SEP] passage [SEP]`` (or the
family's own framing, e.g. RoBERTa's ``<s> query </s></s> passage </s>``) with query and
passage truncated separately, as lightning-ir tokenises them."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

#: What a BERT-style tokenizer needs to hand ELECTRA its segment ids (transformers 5
#: otherwise drops ``token_type_ids`` and every token silently gets segment 0).
MODEL_INPUT_NAMES = ["input_ids", "token_type_ids", "attention_mask"]


CHARS_PER_TOKEN = 10
#: Held while a Rust tokenizer is set up for one of this module's calls, so two threads
#: sharing a tokenizer cannot truncate each other's texts.
_SET_UP_LOCK = threading.Lock()


@dataclass(frozen=True)
class PairFormat:
    """How a tokenizer frames a pair: ``prefix query middle passage suffix``, and where
    the passage's segment id (1) starts, counted from the end of the query (``None``:
    every token is segment 0, as in RoBERTa and ModernBERT)."""

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]
    segment_start: int | None

    @property
    def special_tokens(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    @classmethod
    def of(cls, tokenizer: PreTrainedTokenizerBase) -> PairFormat:
        """The tokenizer's own pair template (its post-processor), read off one pair."""
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ValueError(
                f"{type(tokenizer).__name__}: a fast tokenizer (with a tokenizers backend) "
                "is needed to read the pair format"
            )
        with _set_up(backend, max_length=None):
            pair = backend.encode("q", "p", add_special_tokens=True)
        parts = pair.sequence_ids
        first_query, first_passage = parts.index(0), parts.index(1)
        after_query = len(parts) - parts[::-1].index(0)
        after_passage = len(parts) - parts[::-1].index(1)
        types = pair.type_ids
        segment_start = next((i for i, kind in enumerate(types) if kind == 1), None)
        if segment_start is not None and (
            segment_start > first_passage or set(types[segment_start:]) != {1}
        ):
            raise ValueError(
                f"{type(tokenizer).__name__}: segment ids {types} do not mark the passage "
                "and what follows it"
            )
        return cls(
            prefix=tuple(pair.ids[:first_query]),
            middle=tuple(pair.ids[after_query:first_passage]),
            suffix=tuple(pair.ids[after_passage:]),
            segment_start=None if segment_start is None else segment_start - after_query,
        )


@dataclass(frozen=True)
class PairEncoder:
    """Builds ``prefix q middle p suffix`` batches (the tokenizer's pair format, e.g.
    ``[CLS] q [SEP] p [SEP]``) with separate truncation lengths."""

    tokenizer: PreTrainedTokenizerBase
    query_length: int
    doc_length: int
    format: PairFormat = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "format", PairFormat.of(self.tokenizer))

    def token_ids(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        """The first ``max_length`` token ids of each text, without special tokens.

        A long document is not tokenised whole: it is cut at the last space before
        ``CHARS_PER_TOKEN * max_length`` characters, which leaves every word before the
        cut as the full text would tokenise it. If the cut text has fewer than
        ``max_length`` tokens (very long words or whitespace runs), the whole text is
        tokenised instead, so the ids always equal full tokenisation's.
        """
        if not texts:
            return []
        limit = CHARS_PER_TOKEN * max_length
        heads = [_head(text, limit) for text in texts]
        ids = self._encode(heads, max_length)
        again = [
            i
            for i, (text, head) in enumerate(zip(texts, heads, strict=True))
            if len(head) < len(text) and len(ids[i]) < max_length
        ]
        if again:
            for i, row in zip(
                again, self._encode([texts[i] for i in again], max_length), strict=True
            ):
                ids[i] = row
        return ids

    def _encode(self, texts: list[str], max_length: int) -> list[list[int]]:
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None:
            return self.tokenizer(
                texts, add_special_tokens=False, truncation=True, max_length=max_length
            )["input_ids"]
        # The Rust tokenizer itself: the same ids as transformers' ``tokenizer(...,
        # truncation=True)`` without its per-call wrapping, ~30% of tokenising time.
        direction = getattr(self.tokenizer, "truncation_side", "right")
        with _set_up(backend, max_length, direction):
            encodings = backend.encode_batch(texts, add_special_tokens=False)
        return [encoding.ids for encoding in encodings]

    def query_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self.token_ids(texts, self.query_length)

    def doc_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self.token_ids(texts, self.doc_length)

    def collate(
        self, query_ids: Sequence[list[int]], doc_ids: Sequence[list[int]]
    ) -> dict[str, torch.Tensor]:
        """Pair pre-tokenised queries and passages into one padded batch (built as one
        flat array and a length mask, not row by row)."""
        if len(query_ids) != len(doc_ids):
            raise ValueError(f"{len(query_ids)} queries but {len(doc_ids)} passages to pair")
        pad, frame = self.tokenizer.pad_token_id, self.format
        query_lengths = np.fromiter(map(len, query_ids), dtype=np.int64, count=len(query_ids))
        doc_lengths = np.fromiter(map(len, doc_ids), dtype=np.int64, count=len(doc_ids))
        lengths = query_lengths + doc_lengths + frame.special_tokens
        pieces: list[Sequence[int]] = []
        head, middle, tail = frame.prefix, frame.middle, frame.suffix
        for query, doc in zip(query_ids, doc_ids, strict=True):
            pieces += (head, query, middle, doc, tail)
        flat = np.fromiter(chain.from_iterable(pieces), dtype=np.int64, count=int(lengths.sum()))
        positions = np.arange(int(lengths.max(initial=0)))
        attention_mask = positions < lengths[:, None]
        input_ids = np.full(attention_mask.shape, pad, dtype=np.int64)
        input_ids[attention_mask] = flat  # row-major: each row's tokens in order
        # Segment 1 from the passage's first token to its [SEP]; 0 before and on padding.
        if frame.segment_start is None:
            token_type_ids = np.zeros_like(attention_mask)
        else:
            start = len(frame.prefix) + frame.segment_start
            token_type_ids = (positions >= query_lengths[:, None] + start) & attention_mask
        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask.astype(np.int64)),
            "token_type_ids": torch.from_numpy(token_type_ids.astype(np.int64)),
        }


@contextmanager
def _set_up(backend: Any, max_length: int | None, direction: str = "right") -> Iterator[None]:
    """A fast tokenizer's Rust ``backend`` without padding and truncating to
    ``max_length`` (``None``: not truncating) for the block, its own settings restored
    after. transformers sets the backend up the same way before each of its calls; a
    copy of it would cost 15-25 ms (the vocabulary written out and parsed again), a
    noticeable part of re-ranking a few queries."""
    with _SET_UP_LOCK:
        padding, truncation = backend.padding, backend.truncation
        backend.no_padding()
        if max_length is None:
            backend.no_truncation()
        else:
            backend.enable_truncation(
                max_length, stride=0, strategy="longest_first", direction=direction
            )
        try:
            yield
        finally:
            if truncation is None:
                backend.no_truncation()
            else:
                backend.enable_truncation(**truncation)
            if padding is not None:
                backend.enable_padding(**padding)


def _head(text: str, limit: int) -> str:
    """``text`` up to its last space within ``limit`` characters (``text`` itself if short
    enough or without such a space). Every tokenizer's pre-tokeniser splits at a space."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit + 1)
    return text[:cut] if cut > 0 else text
