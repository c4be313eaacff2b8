"""Access to collections through ir_datasets, including collections on disk.

Every stage reads queries, documents and qrels through ir_datasets, whether the id is a
real one (``msmarco-passage/trec-dl-2019/judged``, ``vaswani``) or a local collection
described by a small JSON manifest (the demo, or any corpus on disk named in config):
``register_manifest`` registers the manifest's ids in this process (ir_datasets keeps
registrations per process), then ``ir_datasets.load`` works as for any other id and
returns records of the same kinds (``default_text()`` included).

A manifest names a document file or folder (TREC SGML, TSV or JSONL, gzip too), its
docstore (the lookup ir_datasets builds on first access; it lives beside the manifest,
so the data folder may be read-only), and topics (TREC ``<top>`` or TSV), qrels (TREC)
and scoreddocs (a TREC run) for the id ``<name>`` itself and for ``<name>/<subset>``.
``Manifest.from_config`` turns a config entry into one; ``check_collection`` reads every
file once and fails early, naming the file, on anything malformed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ir_datasets
import pandas as pd
from ir_datasets.datasets.base import Dataset
from ir_datasets.formats import TrecQrels, TrecScoredDocs

from rank_distillm.data import collection_formats as formats

LOGGER = logging.getLogger(__name__)

QRELS_DEFS = {0: "not relevant", 1: "related", 2: "highly relevant", 3: "perfectly relevant"}

DOCS_FORMATS = ("trec", "tsv", "jsonl")
QUERIES_FORMATS = ("trec", "tsv")
#: Keys describing one task (the collection's own id or a subset).
TASK_KEYS = ("queries", "queries_format", "query_fields", "qrels", "scoreddocs")
#: Format-specific document options and their defaults.
DOCS_OPTIONS: dict[str, dict[str, Any]] = {
    "trec": {
        "title_tags": list(formats.DEFAULT_TITLE_TAGS),
        "body_tags": None,
        "skip_tags": list(formats.DEFAULT_SKIP_TAGS),
        "encoding": "utf-8",
        "glob": "**/*",
    },
    "tsv": {},
    "jsonl": {"fields": {"doc_id": "doc_id", "text": "text"}},
}
_SUFFIX_FORMATS = {
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".trec": "trec",
    ".sgml": "trec",
    ".sgm": "trec",
}
_COLLECTION_KEYS = ("name", "docs", "docs_format", "docs_options", "docstore", "subsets")


def _strip_gz(path: str) -> str:
    return path[: -len(".gz")] if path.endswith(".gz") else path


def infer_format(path: str, allowed: Sequence[str], where: str) -> str:
    """The format a file's name implies (``.tsv``, ``.jsonl``, ``.trec`` ..., optionally .gz)."""
    found = _SUFFIX_FORMATS.get(Path(_strip_gz(path)).suffix.lower())
    if found not in allowed:
        raise ValueError(
            f"{where}: cannot tell the format of {path!r} from its name; "
            f"set it to one of {list(allowed)}"
        )
    return found


def _check_keys(data: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")


@dataclass(frozen=True)
class Manifest:
    """A local collection: documents plus per-task topics, qrels and scoreddocs.

    Paths are relative to ``root`` (the manifest's folder) or absolute. Registered ids are
    ``<name>`` (documents, plus the top-level task files when given) and ``<name>/<subset>``.
    """

    name: str
    root: Path
    docs: str
    subsets: Mapping[str, Mapping[str, Any]]
    task: Mapping[str, Any] = field(default_factory=dict)
    docs_format: str | None = None
    docs_options: Mapping[str, Any] = field(default_factory=dict)
    docstore: str | None = None

    def __post_init__(self) -> None:
        where = f"collection {self.name!r}"
        fmt = self.docs_format or infer_format(self.docs, DOCS_FORMATS, f"{where}: docs")
        if fmt not in DOCS_FORMATS:
            raise ValueError(f"{where}: docs_format {fmt!r} is not one of {list(DOCS_FORMATS)}")
        _check_keys(self.docs_options, list(DOCS_OPTIONS[fmt]), f"{where}: docs_options ({fmt})")
        for subset, files in {"": self.task, **self.subsets}.items():
            label = f"{where}: subsets.{subset}" if subset else where
            _check_keys(files, TASK_KEYS, label)
            if "queries" in files:
                queries_format = files.get("queries_format") or infer_format(
                    files["queries"], QUERIES_FORMATS, f"{label}: queries"
                )
                if queries_format not in QUERIES_FORMATS:
                    raise ValueError(
                        f"{label}: queries_format {queries_format!r} is not one of "
                        f"{list(QUERIES_FORMATS)}"
                    )
            if "query_fields" in files:
                formats.query_class(files["query_fields"])  # validates the names

    @classmethod
    def read(cls, path: str | Path) -> Manifest:
        path = Path(path)
        data = json.loads(path.read_text())
        for key in ("name", "docs", "subsets"):
            if key not in data:
                raise ValueError(f"{path}: manifest lacks the key {key!r}")
        _check_keys(data, [*_COLLECTION_KEYS, *TASK_KEYS], str(path))
        return cls(
            name=data["name"],
            root=path.parent,
            docs=data["docs"],
            subsets=data["subsets"],
            task={key: data[key] for key in TASK_KEYS if key in data},
            docs_format=data.get("docs_format"),
            docs_options=data.get("docs_options", {}),
            docstore=data.get("docstore"),
        )

    @classmethod
    def from_config(
        cls, name: str, entry: Mapping[str, Any], manifest_dir: Path, base: Path | None = None
    ) -> Manifest:
        """A manifest for the config entry ``collections.<name>``; relative paths in the
        entry are taken from ``base`` (the working directory) and stored absolute."""
        where = f"config collections.{name}"
        _check_keys(entry, [*_COLLECTION_KEYS[1:], *TASK_KEYS], where)
        if "docs" not in entry:
            raise ValueError(f"{where}: the key 'docs' (a document file or folder) is missing")
        base = (base or Path.cwd()).resolve()

        def absolute(value: str) -> str:
            return str((base / value).resolve())

        def task(files: Mapping[str, Any]) -> dict[str, Any]:
            return {
                key: absolute(value) if key in ("queries", "qrels", "scoreddocs") else value
                for key, value in files.items()
            }

        return cls(
            name=name,
            root=Path(manifest_dir),
            docs=absolute(entry["docs"]),
            subsets={subset: task(files) for subset, files in entry.get("subsets", {}).items()},
            task=task({key: entry[key] for key in TASK_KEYS if key in entry}),
            docs_format=entry.get("docs_format"),
            docs_options=entry.get("docs_options", {}),
            docstore=entry.get("docstore"),
        )

    def write(self, path: Path) -> None:
        from rank_distillm.data.atomic import atomic_write_text

        data: dict[str, Any] = {"name": self.name, "docs": self.docs, "subsets": dict(self.subsets)}
        data.update(self.task)
        if self.docs_format:
            data["docs_format"] = self.docs_format
        if self.docs_options:
            data["docs_options"] = dict(self.docs_options)
        if self.docstore:
            data["docstore"] = self.docstore
        atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def dataset_ids(self) -> list[str]:
        return [f"{self.name}/{subset}" for subset in self.subsets]

    def path(self, relative: str) -> Path:
        return self.root / relative

    @property
    def format(self) -> str:
        return self.docs_format or infer_format(self.docs, DOCS_FORMATS, self.name)

    def docstore_path(self) -> Path:
        """Where ir_datasets keeps the docstore: beside the manifest, never beside the data."""
        return self.path(self.docstore or f"{Path(_strip_gz(self.docs)).name}.pklz4")

    def documents(self) -> Any:
        """The ir_datasets docs component for this collection."""
        options = {**DOCS_OPTIONS[self.format], **self.docs_options}
        source, store = self.path(self.docs), self.docstore_path()
        if self.format == "tsv":
            return formats.LocalTsvDocs(source, store, namespace=self.name)
        if self.format == "jsonl":
            return formats.LocalJsonlDocs(source, store, self.name, dict(options["fields"]))
        return formats.SgmlDocs(source, store, namespace=self.name, **options)

    def task_parts(self, files: Mapping[str, Any]) -> list[Any]:
        """The ir_datasets queries, qrels and scoreddocs components of one task."""
        parts: list[Any] = []
        if "queries" in files:
            source = self.path(files["queries"])
            queries_format = files.get("queries_format") or infer_format(
                files["queries"], QUERIES_FORMATS, self.name
            )
            if queries_format == "trec":
                fields = files.get("query_fields", ["title"])
                parts.append(formats.LocalTrecQueries(source, self.name, fields))
            else:
                parts.append(formats.LocalTsvQueries(source, self.name))
        if "qrels" in files:
            parts.append(TrecQrels(formats.local_file(self.path(files["qrels"])), QRELS_DEFS))
        if "scoreddocs" in files:
            parts.append(TrecScoredDocs(formats.local_file(self.path(files["scoreddocs"]))))
        return parts


#: ids this process registered, with the manifest each came from.
_REGISTERED: dict[str, Manifest] = {}


def _register(dataset_id: str, manifest: Manifest, dataset: Dataset) -> None:
    if dataset_id in _REGISTERED:
        if _REGISTERED[dataset_id] != manifest:
            raise ValueError(
                f"the id {dataset_id!r} is already registered from another collection "
                f"({_REGISTERED[dataset_id].root}); give each local collection its own name"
            )
        return
    if dataset_id in ir_datasets.registry:
        raise ValueError(
            f"{dataset_id!r} is already an ir_datasets id; name the local collection "
            f"differently (e.g. 'local/{dataset_id}')"
        )
    ir_datasets.registry.register(dataset_id, dataset)
    _REGISTERED[dataset_id] = manifest


def register(manifest: Manifest) -> list[str]:
    """Register a manifest's ids with ir_datasets (idempotent for the same manifest)."""
    docs = manifest.documents()
    _register(manifest.name, manifest, Dataset(docs, *manifest.task_parts(manifest.task)))
    for subset, files in manifest.subsets.items():
        _register(f"{manifest.name}/{subset}", manifest, Dataset(docs, *manifest.task_parts(files)))
    return [manifest.name, *manifest.dataset_ids()]


def register_manifest(path: str | Path) -> list[str]:
    """Register the manifest file's ids with ir_datasets (idempotent); return them."""
    return register(Manifest.read(path))


def load(dataset_id: str, manifests: Sequence[str | Path] = ()) -> Dataset:
    """``ir_datasets.load`` after registering the given local manifests."""
    for manifest in manifests:
        register_manifest(manifest)
    return ir_datasets.load(dataset_id)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def record_text(record: Any) -> str:
    """A document's or query's text, whitespace collapsed: ``default_text()`` where the
    record has it (title + body for ``TitleBodyDoc`` and ir_datasets' title/body records,
    the title for TREC topics), else ``title`` + ``body``/``text``."""
    if hasattr(record, "default_text"):
        return _one_line(record.default_text())
    parts = [getattr(record, name, "") for name in ("title", "body", "text")]
    return _one_line(" ".join(part for part in parts if isinstance(part, str)))


def truncate_words(text: str, max_words: int | None) -> str:
    """The first ``max_words`` whitespace-separated words. A WordPiece tokenizer makes at
    least one token of each word, so cutting at ``doc_length`` words never removes text
    that ``doc_length`` tokens would keep, and long documents are not tokenised in full."""
    if max_words is None:
        return text
    if max_words < 1:
        raise ValueError(f"max_words must be >= 1, got {max_words}")
    words = text.split(maxsplit=max_words)
    return " ".join(words[:max_words])


def iter_doc_texts(dataset: Dataset) -> Iterator[tuple[str, str]]:
    """``(doc_id, text)`` for every document, in collection order: what BM25 indexes."""
    for doc in dataset.docs_iter():
        yield doc.doc_id, record_text(doc)


def topics(dataset: Dataset) -> pd.DataFrame:
    """Queries as a topics frame (``query_id``, ``text``): ``default_text()`` on one line."""
    rows = [(query.query_id, record_text(query)) for query in dataset.queries_iter()]
    return pd.DataFrame(rows, columns=["query_id", "text"], dtype=str)


def qrels(dataset: Dataset) -> pd.DataFrame:
    """Qrels as a frame (``query_id``, ``doc_id``, ``relevance``); a repeated
    (query, passage) pair keeps its last label, as ``io.read_qrels`` does."""
    rows = [(q.query_id, q.doc_id, q.relevance) for q in dataset.qrels_iter()]
    frame = pd.DataFrame(rows, columns=["query_id", "doc_id", "relevance"])
    frame = frame.drop_duplicates(["query_id", "doc_id"], keep="last", ignore_index=True)
    return frame.astype({"query_id": str, "doc_id": str, "relevance": "int64"})


def doc_texts(
    dataset: Dataset, doc_ids: Iterable[str], max_words: int | None = None, store: Any = None
) -> dict[str, str]:
    """Document texts (``record_text``, cut to ``max_words`` when given) by id in bulk
    through the docstore (``store``, when the caller keeps one open); a missing id is an
    error."""
    wanted = list(dict.fromkeys(doc_ids))
    found = (store or dataset.docs_store()).get_many(wanted)
    missing = [doc_id for doc_id in wanted if doc_id not in found]
    if missing:
        raise KeyError(
            f"{len(missing)} passage ids are not in the collection "
            f"{dataset.docs_namespace() or ''} (first: {missing[:5]})"
        )
    return {doc_id: truncate_words(record_text(found[doc_id]), max_words) for doc_id in wanted}


def build_docstore(dataset: Dataset) -> int:
    """Build the docstore lookup once, so parallel later jobs only read it."""
    store = dataset.docs_store()
    if hasattr(store, "build"):
        store.build()
    return dataset.docs_count() or 0


def check_collection(manifest: Manifest) -> dict[str, dict[str, int]]:
    """Register ``manifest``, build its docstore (reading every document once) and read
    every task's topics and qrels, so a malformed file fails here, named, and not in a
    later stage. Returns counts per id (``documents``; ``queries``, ``judged_queries``,
    ``qrels``, ``qrels_docs_missing`` per task).

    Judged queries without a topic are an error (they could only ever score 0); topics
    without judgements and judged documents missing from the collection are counted and
    logged.
    """
    from rank_distillm.data import trec as trec_io

    register(manifest)
    documents = build_docstore(ir_datasets.load(manifest.name))
    counts: dict[str, dict[str, int]] = {manifest.name: {"documents": documents}}
    for subset, files in {"": manifest.task, **manifest.subsets}.items():
        dataset_id = f"{manifest.name}/{subset}" if subset else manifest.name
        entry = counts.setdefault(dataset_id, {})
        dataset = ir_datasets.load(dataset_id)
        query_ids: set[str] = set()
        if "queries" in files:
            frame = topics(dataset)
            duplicated = frame.loc[frame["query_id"].duplicated(), "query_id"].tolist()
            if duplicated:
                raise ValueError(
                    f"{manifest.path(files['queries'])}: {len(duplicated)} query ids occur "
                    f"twice (first: {duplicated[:5]})"
                )
            query_ids = set(frame["query_id"])
            entry["queries"] = len(frame)
        if "qrels" in files:
            path = manifest.path(files["qrels"])
            judged = trec_io.read_qrels(path)  # names file and line on a malformed line
            judged_ids = set(judged["query_id"])
            if "queries" in files:
                untopical = sorted(judged_ids - query_ids)
                if untopical:
                    raise ValueError(
                        f"{path}: {len(untopical)} judged queries have no topic in "
                        f"{manifest.path(files['queries'])} (first: {untopical[:5]})"
                    )
                unjudged = sorted(query_ids - judged_ids)
                if unjudged:
                    LOGGER.warning(
                        "%s: %d topics have no judgements (first: %s)",
                        dataset_id,
                        len(unjudged),
                        unjudged[:5],
                    )
            wanted = judged["doc_id"].unique().tolist()
            present = dataset.docs_store().get_many(wanted)
            entry.update(
                judged_queries=len(judged_ids),
                qrels=len(judged),
                qrels_docs_missing=len(wanted) - len(present),
            )
            if len(present) < len(wanted):
                LOGGER.warning(
                    "%s: %d of %d judged documents are not in the collection",
                    dataset_id,
                    len(wanted) - len(present),
                    len(wanted),
                )
    LOGGER.info("collection %s: %s", manifest.name, counts)
    return counts


def write_docs_tsv(docs: Iterable[tuple[str, str]], path: Path) -> None:
    """Write ``doc_id<TAB>text`` lines (the TsvDocs layout), atomically."""
    from rank_distillm.data.atomic import atomic_output

    with atomic_output(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for doc_id, text in docs:
            if "\t" in text or "\n" in text or "\t" in doc_id:
                raise ValueError(f"{path}: passage {doc_id!r} contains a tab or newline")
            handle.write(f"{doc_id}\t{text}\n")
