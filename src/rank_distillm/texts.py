"""Query and passage texts by id, looked up when needed instead of held in tables.

Training and re-ranking read texts through a :class:`TextLookup`: an ir_datasets
dataset (queries in memory, passages from its docstore with ``get_many``, so the
8.8M-passage MS MARCO corpus is never loaded whole) or plain mappings (tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol


class TextLookup(Protocol):
    def query_texts(self, query_ids: Sequence[str]) -> list[str]: ...

    def doc_texts(self, doc_ids: Sequence[str]) -> list[str]: ...


def _missing(what: str, ids: Iterable[str], where: str) -> KeyError:
    ids = sorted(set(ids))
    return KeyError(f"{len(ids)} {what} ids are not in {where} (first: {ids[:5]})")


def record_text(record: Any) -> str:
    """The text to rank of an ir_datasets record: ``text`` where there is one, else
    ir_datasets' ``default_text()`` (e.g. title + body)."""
    text = getattr(record, "text", None)
    if isinstance(text, str):
        return text
    return record.default_text()


class MappingTexts:
    """Texts from in-memory mappings of id -> text."""

    def __init__(self, queries: Mapping[str, str], docs: Mapping[str, str]) -> None:
        self.queries, self.docs = queries, docs

    def query_texts(self, query_ids: Sequence[str]) -> list[str]:
        return _lookup(self.queries, query_ids, "query", "the query texts")

    def doc_texts(self, doc_ids: Sequence[str]) -> list[str]:
        return _lookup(self.docs, doc_ids, "passage", "the passage texts")


def _lookup(texts: Mapping[str, str], ids: Sequence[str], what: str, where: str) -> list[str]:
    try:
        return [texts[i] for i in ids]
    except KeyError:
        raise _missing(what, [i for i in ids if i not in texts], where) from None


class DatasetTexts:
    """Texts of an ir_datasets dataset: its queries (those in ``query_ids``, or all) kept
    in memory, its passages fetched from the docstore in bulk per call."""

    def __init__(
        self,
        dataset: Any,
        query_ids: Iterable[str] | None = None,
        text_of: Callable[[Any], str] = record_text,
    ) -> None:
        wanted = None if query_ids is None else set(query_ids)
        self.queries = (
            {
                query.query_id: text_of(query)
                for query in dataset.queries_iter()
                if wanted is None or query.query_id in wanted
            }
            if dataset.has_queries()
            else {}
        )
        self.where = f"the collection {dataset.docs_namespace() or ''}".rstrip()
        self._dataset = dataset
        self._store = None
        self._text_of = text_of

    def query_texts(self, query_ids: Sequence[str]) -> list[str]:
        return _lookup(self.queries, query_ids, "query", "the dataset's queries")

    def doc_texts(self, doc_ids: Sequence[str]) -> list[str]:
        if self._store is None:  # opened lazily: per process, after a fork
            self._store = self._dataset.docs_store()
        found = self._store.get_many(list(dict.fromkeys(doc_ids)))
        try:
            return [self._text_of(found[d]) for d in doc_ids]
        except KeyError:
            raise _missing("passage", [d for d in doc_ids if d not in found], self.where) from None
