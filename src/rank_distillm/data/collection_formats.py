"""ir_datasets formats for collections on disk: TREC SGML, TSV and JSONL documents (gzip
too), TREC ``<top>`` and TSV topics.

Each class extends the ir_datasets format it is named after, so records, docstores and
``docs_iter`` behave as for any ir_datasets id. What they add:

* the docstore goes where the caller says (``docstore_path``), so the data folder may be
  read-only;
* a malformed record raises ``ValueError`` naming the file and the record or line;
* SGML: text outside the title tags is the body, so collections without a ``<TEXT>`` tag
  (Vaswani, Cranfield as Terrier ships them) keep their text; a folder is read in sorted
  file order, so document order (and with it BM25 tie-breaking) is the same everywhere;
* TREC topics: ``<num>``, ``<title>``, ``<desc>``, ``<narr>`` with or without closing tags,
  on one line or several (ir_datasets' ``TrecQueries`` is line-based and needs all four);
  the configured fields become ``default_text()``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

import ir_datasets
from ir_datasets.formats import JsonlDocs, TrecDocs, TsvDocs, TsvQueries
from ir_datasets.formats.base import BaseQueries, GenericDoc
from ir_datasets.indices import DEFAULT_DOCSTORE_OPTIONS, PickleLz4FullStore
from ir_datasets.util import GzipExtract, LocalDownload
from ir_datasets.util.html_parsing import sax_html_parser

#: Tags whose text is the title (ir_datasets' SAX parser uses the same set).
DEFAULT_TITLE_TAGS = ("title", "headline", "h3", "h4")
#: Tags whose text is neither title nor body: the id and web-crawl headers.
DEFAULT_SKIP_TAGS = ("docno", "dochdr", "docoldno")
QUERY_FIELDS = ("title", "description", "narrative")


class TitleBodyDoc(NamedTuple):
    """A document with a title and a body (either may be empty)."""

    doc_id: str
    title: str
    body: str

    def default_text(self) -> str:
        """title and body"""
        return f"{self.title} {self.body}".strip()


def local_file(path: str | Path) -> LocalDownload | GzipExtract:
    """An ir_datasets download object for a local file, decompressed when it ends in .gz."""
    download = LocalDownload(Path(path), mkdir=False)
    return GzipExtract(download) if str(path).endswith(".gz") else download


def _numbered(records: Iterable[Any], path: Path, what: str) -> Iterator[Any]:
    """Re-raise a parser's error with the file and the record's number."""
    number = 0
    iterator = iter(records)
    while True:
        number += 1
        try:
            record = next(iterator)
        except StopIteration:
            return
        except (RuntimeError, KeyError, ValueError, TypeError) as error:
            raise ValueError(f"{path}: {what} {number}: {error}") from error
        yield record


class _DocstoreAt:
    """Mixin: the docstore lives at ``self._docstore_at`` instead of beside the data."""

    _docstore_at: str
    _index_fields: Sequence[str] = ("doc_id",)

    def docs_store(self, field: str = "doc_id", options: Any = DEFAULT_DOCSTORE_OPTIONS) -> Any:
        return PickleLz4FullStore(
            path=self._docstore_at,
            init_iter_fn=self.docs_iter,
            data_cls=self.docs_cls(),
            lookup_field=field,
            index_fields=list(self._index_fields),
            options=options,
        )

    def docs_count(self) -> int | None:
        store = self.docs_store()
        return store.count() if store.built() else None


class LocalTsvDocs(_DocstoreAt, TsvDocs):
    """``doc_id<TAB>text`` lines; a line with another number of fields is an error."""

    def __init__(self, path: Path, docstore_path: Path, namespace: str) -> None:
        TsvDocs.__init__(self, local_file(path), namespace=namespace, lang="en")
        self._source = path
        self._docstore_at = str(docstore_path)

    def _iter(self) -> Iterator[GenericDoc]:
        return _numbered(TsvDocs._iter(self), self._source, "record")


class LocalJsonlDocs(_DocstoreAt, JsonlDocs):
    """One JSON object per line; ``fields`` maps record fields to the file's keys.

    ``fields`` needs ``doc_id`` and ``text`` (``GenericDoc``), or ``doc_id``, ``title`` and
    ``body`` (``TitleBodyDoc``). Values are turned into strings, so numeric ids work.
    """

    def __init__(
        self, path: Path, docstore_path: Path, namespace: str, fields: dict[str, str]
    ) -> None:
        if set(fields) == {"doc_id", "text"}:
            doc_cls: type = GenericDoc
        elif set(fields) == {"doc_id", "title", "body"}:
            doc_cls = TitleBodyDoc
        else:
            raise ValueError(
                f"{path}: JSONL fields must map doc_id and text, or doc_id, title and body; "
                f"got {sorted(fields)}"
            )
        JsonlDocs.__init__(
            self,
            local_file(path),
            doc_cls=doc_cls,
            mapping=fields,
            namespace=namespace,
            lang="en",
            docstore_path=str(docstore_path),
        )
        self._source = path
        self._docstore_at = str(docstore_path)

    def _iter(self) -> Iterator[Any]:
        with self._dlcs[0].stream() as stream:
            for line_number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    values = {field: data[key] for field, key in self._mapping.items()}
                except json.JSONDecodeError as error:
                    where = f"{self._source}:{line_number}"
                    raise ValueError(f"{where}: invalid JSON: {error}") from error
                except KeyError as error:
                    raise ValueError(
                        f"{self._source}:{line_number}: the record lacks the key {error}"
                    ) from error
                yield self._cls(**{field: str(value) for field, value in values.items()})


_DOC_END = re.compile(rb"</DOC>", re.IGNORECASE)


class SgmlDocs(_DocstoreAt, TrecDocs):
    """TREC SGML files (``<DOC>``, ``<DOCNO>``, any text tags), a file or a folder of them.

    Each document is parsed with ir_datasets' SAX HTML extractor into a ``TitleBodyDoc``:
    the title is the text of ``title_tags``; the body is the text of ``body_tags`` when
    given, otherwise all text outside the DOCNO, skipped and title tags (HTML bodies of
    web collections included; scripts and styles are dropped). Files ending in .gz are
    decompressed. A document without a DOCNO, or a file ending inside a document, is an
    error.
    """

    def __init__(
        self,
        path: Path,
        docstore_path: Path,
        namespace: str,
        title_tags: Sequence[str] = DEFAULT_TITLE_TAGS,
        body_tags: Sequence[str] | None = None,
        skip_tags: Sequence[str] = DEFAULT_SKIP_TAGS,
        encoding: str = "utf-8",
        glob: str = "**/*",
    ) -> None:
        TrecDocs.__init__(
            self,
            LocalDownload(path, mkdir=False),
            encoding=encoding,
            parser="sax",
            namespace=namespace,
            lang="en",
            docstore_path=str(docstore_path),
        )
        self._doc = TitleBodyDoc
        self._source = path
        self._glob = glob
        self._docstore_at = str(docstore_path)
        lower = lambda tags: {tag.lower() for tag in tags}  # noqa: E731
        self._fields = [
            {"docno"},
            lower(skip_tags) - {"docno"},
            lower(title_tags),
            lower(body_tags) if body_tags is not None else None,
        ]
        self._current = path

    def files(self) -> list[Path]:
        """The files read, in reading order."""
        if self._source.is_dir():
            return sorted(
                p
                for p in self._source.glob(self._glob)
                if p.is_file() and not p.name.startswith(".")
            )
        if not self._source.exists():
            raise FileNotFoundError(f"{self._source}: no such file or folder")
        return [self._source]

    @ir_datasets.util.use_docstore
    def docs_iter(self) -> Iterator[TitleBodyDoc]:
        for path in self.files():
            self._current = path
            yield from self._docs_iter(path)

    def _parser_sax(self, stream: IO[bytes]) -> Iterator[TitleBodyDoc]:
        buffer = bytearray()
        searched = 0
        number = 0
        previous = None
        read = getattr(stream, "read1", None) or (lambda: stream.read(1 << 20))
        while True:
            match = _DOC_END.search(buffer, max(0, searched - 6))
            if match is None:
                searched = len(buffer)
                chunk = read()
                if not chunk:
                    break
                buffer.extend(chunk)
                continue
            raw = bytes(buffer[: match.end()])
            del buffer[: match.end()]
            searched = 0
            number += 1
            doc_id, _skipped, title, body = sax_html_parser(
                raw, force_encoding=self._encoding or "utf-8", fields=self._fields
            )
            if not doc_id:
                after = f" (after {previous!r})" if previous else ""
                raise ValueError(f"{self._current}: document {number}{after} has no <DOCNO>")
            previous = doc_id
            yield TitleBodyDoc(doc_id, title, body)
        if buffer.strip():
            raise ValueError(
                f"{self._current}: ends inside a document (after {previous!r}): "
                f"{bytes(buffer[:80])!r} has no closing </DOC>"
            )


# --------------------------------------------------------------------------- topics


def query_class(fields: Sequence[str]) -> type:
    """A TREC topic record whose ``default_text()`` joins ``fields`` (e.g. ``["title"]``)."""
    unknown = [field for field in fields if field not in QUERY_FIELDS]
    if not fields or unknown:
        raise ValueError(f"query fields must be some of {list(QUERY_FIELDS)}, got {list(fields)}")
    chosen = tuple(fields)

    class LocalTrecQuery(NamedTuple):
        query_id: str
        title: str
        description: str
        narrative: str

        def default_text(self) -> str:
            return " ".join(getattr(self, field) for field in chosen if getattr(self, field))

    LocalTrecQuery.__doc__ = f"TREC topic; default_text() is {' + '.join(chosen)}"
    return LocalTrecQuery


_TOPIC_TAG = re.compile(r"<(/?)(top|num|title|desc|narr)>", re.IGNORECASE)
_TAG_FIELD = {"num": "query_id", "title": "title", "desc": "description", "narr": "narrative"}
_LABELS = re.compile(r"^\s*(Number|Topic|Description|Narrative)\s*:", re.IGNORECASE)


def parse_trec_topics(text: str, path: Path, cls: Callable[..., Any]) -> Iterator[Any]:
    """Topics from TREC ``<top>`` blocks. A field's text runs from its tag to the next tag;
    closing tags are optional and the ``Number:``/``Description:`` labels are removed."""
    fields: dict[str, str] | None = None
    start_line = 0
    current: str | None = None
    position = 0

    def close_field(end: int) -> None:
        if fields is not None and current is not None:
            value = _LABELS.sub("", text[position:end], count=1)
            fields[current] = " ".join(value.split())

    for match in _TOPIC_TAG.finditer(text):
        closing, tag = match.group(1), match.group(2).lower()
        line = text.count("\n", 0, match.start()) + 1
        close_field(match.start())
        current = None
        if tag == "top" and not closing:
            if fields is not None:
                raise ValueError(f"{path}:{line}: <top> inside the topic of line {start_line}")
            fields, start_line = {}, line
        elif tag == "top":
            if fields is None:
                raise ValueError(f"{path}:{line}: </top> without <top>")
            if not fields.get("query_id"):
                raise ValueError(f"{path}:{start_line}: topic without <num>")
            yield cls(
                fields["query_id"],
                fields.get("title", ""),
                fields.get("description", ""),
                fields.get("narrative", ""),
            )
            fields = None
        elif fields is None:
            raise ValueError(f"{path}:{line}: <{tag}> outside <top>")
        elif not closing:
            current, position = _TAG_FIELD[tag], match.end()
    if fields is not None:
        raise ValueError(f"{path}:{start_line}: topic not closed by </top>")


class LocalTrecQueries(BaseQueries):
    """TREC ``<top>`` topics; ``default_text()`` is the configured fields (title by default).

    A topic whose configured fields are all empty is an error: it could match nothing."""

    def __init__(self, path: Path, namespace: str, fields: Sequence[str] = ("title",)) -> None:
        self._path = path
        self._cls = query_class(fields)
        self._fields = tuple(fields)
        self._namespace = namespace

    def queries_path(self) -> Path:
        return self._path

    def queries_iter(self) -> Iterator[Any]:
        with local_file(self._path).stream() as stream:
            text = stream.read().decode("utf-8", errors="replace")
        for query in parse_trec_topics(text, self._path, self._cls):
            if not query.default_text():
                raise ValueError(
                    f"{self._path}: topic {query.query_id} has no text in {list(self._fields)}"
                )
            yield query

    def queries_cls(self) -> type:
        return self._cls

    def queries_namespace(self) -> str:
        return self._namespace

    def queries_lang(self) -> str:
        return "en"


class LocalTsvQueries(TsvQueries):
    """``query_id<TAB>text`` lines; a line with another number of fields is an error."""

    def __init__(self, path: Path, namespace: str) -> None:
        super().__init__(local_file(path), namespace=namespace, lang="en")
        self._source = path

    def queries_iter(self) -> Iterator[Any]:
        return _numbered(super().queries_iter(), self._source, "record")
