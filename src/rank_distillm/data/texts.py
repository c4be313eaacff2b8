"""Query and passage texts by id, looked up when needed instead of held in tables.

Training reads texts through a :class:`TextLookup`: an ir_datasets dataset (queries in
memory, passages from its docstore in bulk, so the 8.8M-passage MS MARCO corpus is never
loaded whole) or plain mappings (tests, benchmarks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from rank_distillm.data import datasets


class TextLookup(Protocol):
    def query_texts(self, query_ids: Sequence[str]) -> list[str]: ...

    def doc_texts(self, doc_ids: Sequence[str]) -> list[str]: ...


def _lookup(texts: Mapping[str, str], ids: Sequence[str], what: str) -> list[str]:
    try:
        return [texts[i] for i in ids]
    except KeyError:
        missing = sorted({i for i in ids if i not in texts})
        raise KeyError(f"{len(missing)} {what} ids have no text (first: {missing[:5]})") from None


class MappingTexts:
    """Texts from in-memory mappings of id -> text."""

    def __init__(self, queries: Mapping[str, str], docs: Mapping[str, str]) -> None:
        self.queries, self.docs = queries, docs

    def query_texts(self, query_ids: Sequence[str]) -> list[str]:
        return _lookup(self.queries, query_ids, "query")

    def doc_texts(self, doc_ids: Sequence[str]) -> list[str]:
        return _lookup(self.docs, doc_ids, "passage")


class DatasetTexts:
    """Texts of an ir_datasets dataset: its queries (those in ``query_ids``, or all) kept in
    memory, its documents fetched from the docstore in bulk per call and cut to
    ``max_words`` words (at least one token each, so nothing ``max_words`` tokens keep is
    lost, and long documents are not tokenised whole)."""

    def __init__(
        self,
        dataset: Any,
        query_ids: Iterable[str] | None = None,
        max_words: int | None = None,
    ) -> None:
        topics = datasets.topics(dataset)
        if query_ids is not None:
            topics = topics[topics["query_id"].isin(set(query_ids))]
        self.queries = dict(zip(topics["query_id"], topics["text"], strict=True))
        self.max_words = max_words
        self._dataset = dataset
        self._store: Any = None

    def query_texts(self, query_ids: Sequence[str]) -> list[str]:
        return _lookup(self.queries, query_ids, "query")

    def doc_texts(self, doc_ids: Sequence[str]) -> list[str]:
        if self._store is None:  # opened on first use: in the process that reads
            self._store = self._dataset.docs_store()
        found = datasets.doc_texts(self._dataset, doc_ids, self.max_words, store=self._store)
        return [found[doc_id] for doc_id in doc_ids]
