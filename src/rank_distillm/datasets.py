"""Access to collections through ir_datasets, including locally generated ones.

Every stage reads queries, passages and qrels through ir_datasets, whether the id is a
real one (``msmarco-passage/trec-dl-2019/judged``) or a local collection described by
a small JSON manifest (the demo): ``register_manifest`` registers the manifest's ids in
this process (ir_datasets keeps registrations per process), then ``ir_datasets.load``
works as for any other id and returns records of the same types.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import ir_datasets
import pandas as pd
from ir_datasets.datasets.base import Dataset
from ir_datasets.formats import TrecQrels, TrecScoredDocs, TsvDocs, TsvQueries
from ir_datasets.util import LocalDownload

LOGGER = logging.getLogger(__name__)

QRELS_DEFS = {0: "not relevant", 1: "related", 2: "highly relevant", 3: "perfectly relevant"}


@dataclass(frozen=True)
class Manifest:
    """A local collection: one passage file and per-subset queries, qrels and scoreddocs.

    Paths in the JSON file are relative to the manifest's folder. Registered ids are
    ``<name>`` (docs only) and ``<name>/<subset>``.
    """

    name: str
    root: Path
    docs: str
    subsets: Mapping[str, Mapping[str, str]]

    @classmethod
    def read(cls, path: str | Path) -> Manifest:
        path = Path(path)
        data = json.loads(path.read_text())
        for key in ("name", "docs", "subsets"):
            if key not in data:
                raise ValueError(f"{path}: manifest lacks the key {key!r}")
        return cls(name=data["name"], root=path.parent, docs=data["docs"], subsets=data["subsets"])

    def write(self, path: Path) -> None:
        from rank_distillm.io import atomic_write_text

        data = {"name": self.name, "docs": self.docs, "subsets": dict(self.subsets)}
        atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def dataset_ids(self) -> list[str]:
        return [f"{self.name}/{subset}" for subset in self.subsets]


def register_manifest(path: str | Path) -> list[str]:
    """Register a manifest's ids with ir_datasets (idempotent); return them."""
    manifest = Manifest.read(path)
    docs = TsvDocs(LocalDownload(manifest.root / manifest.docs), namespace=manifest.name, lang="en")
    ids = [manifest.name, *manifest.dataset_ids()]
    if manifest.name not in ir_datasets.registry:
        ir_datasets.registry.register(manifest.name, Dataset(docs))
    for subset, files in manifest.subsets.items():
        dataset_id = f"{manifest.name}/{subset}"
        if dataset_id in ir_datasets.registry:
            continue
        parts = [docs]
        if "queries" in files:
            queries = LocalDownload(manifest.root / files["queries"])
            parts.append(TsvQueries(queries, namespace=manifest.name, lang="en"))
        if "qrels" in files:
            parts.append(TrecQrels(LocalDownload(manifest.root / files["qrels"]), QRELS_DEFS))
        if "scoreddocs" in files:
            parts.append(TrecScoredDocs(LocalDownload(manifest.root / files["scoreddocs"])))
        ir_datasets.registry.register(dataset_id, Dataset(*parts))
    return ids


def load(dataset_id: str, manifests: Sequence[str | Path] = ()) -> Dataset:
    """``ir_datasets.load`` after registering the given local manifests."""
    for manifest in manifests:
        register_manifest(manifest)
    return ir_datasets.load(dataset_id)


def topics(dataset: Dataset) -> pd.DataFrame:
    """Queries as a topics frame (``query_id``, ``text``)."""
    rows = [(query.query_id, query.text) for query in dataset.queries_iter()]
    return pd.DataFrame(rows, columns=["query_id", "text"], dtype=str)


def qrels(dataset: Dataset) -> pd.DataFrame:
    """Qrels as a frame (``query_id``, ``doc_id``, ``relevance``); a repeated
    (query, passage) pair keeps its last label, as ``io.read_qrels`` does."""
    rows = [(q.query_id, q.doc_id, q.relevance) for q in dataset.qrels_iter()]
    frame = pd.DataFrame(rows, columns=["query_id", "doc_id", "relevance"])
    frame = frame.drop_duplicates(["query_id", "doc_id"], keep="last", ignore_index=True)
    return frame.astype({"query_id": str, "doc_id": str, "relevance": "int64"})


def doc_texts(dataset: Dataset, doc_ids: Iterable[str]) -> dict[str, str]:
    """Passage texts by id in bulk through the docstore; a missing id is an error."""
    wanted = list(dict.fromkeys(doc_ids))
    found = dataset.docs_store().get_many(wanted)
    missing = [doc_id for doc_id in wanted if doc_id not in found]
    if missing:
        raise KeyError(
            f"{len(missing)} passage ids are not in the collection "
            f"{dataset.docs_namespace() or ''} (first: {missing[:5]})"
        )
    return {doc_id: found[doc_id].text for doc_id in wanted}


def build_docstore(dataset: Dataset) -> int:
    """Build the docstore lookup once, so parallel later jobs only read it."""
    store = dataset.docs_store()
    if hasattr(store, "build"):
        store.build()
    return dataset.docs_count() or 0


def write_docs_tsv(docs: Iterable[tuple[str, str]], path: Path) -> None:
    """Write ``doc_id<TAB>text`` lines (the TsvDocs layout), atomically."""
    from rank_distillm.io import atomic_output

    with atomic_output(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for doc_id, text in docs:
            if "\t" in text or "\n" in text or "\t" in doc_id:
                raise ValueError(f"{path}: passage {doc_id!r} contains a tab or newline")
            handle.write(f"{doc_id}\t{text}\n")
