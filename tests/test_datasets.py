"""Tests for rank_distillm.data.datasets: local collections registered with ir_datasets."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path

# ir_datasets creates folders under its home when imported: keep them out of ~.
if "IR_DATASETS_HOME" not in os.environ:
    os.environ["IR_DATASETS_HOME"] = tempfile.mkdtemp(prefix="ir_datasets-")

import ir_datasets  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from rank_distillm.data import datasets  # noqa: E402
from rank_distillm.data.datasets import Manifest, register_manifest, write_docs_tsv  # noqa: E402

# Ids that look numeric (with leading zeros) must stay strings all the way through.
DOCS_TSV = "d1\tthe cat sat on the mat\n0042\tforty two is the answer\nd3\tzebras are striped\n"
QUERIES_TSV = "007\twhat is the answer\nq2\tstriped animals\n"
QRELS = "007 0 0042 3\n007 0 d1 0\nq2 0 d3 2\nq2 0 d1 1\n"
SCOREDDOCS = "007 Q0 0042 1 12.5 bm25\n007 Q0 d1 2 3.25 bm25\nq2 Q0 d3 1 7 bm25\n"


def unique_name() -> str:
    """ir_datasets keeps registrations per process and refuses an id twice."""
    return f"test-{uuid.uuid4().hex[:12]}"


def make_collection(root: Path, name: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "docs.tsv").write_text(DOCS_TSV, encoding="utf-8")
    (root / "queries.tsv").write_text(QUERIES_TSV, encoding="utf-8")
    (root / "qrels.txt").write_text(QRELS, encoding="utf-8")
    (root / "run.txt").write_text(SCOREDDOCS, encoding="utf-8")
    manifest = {
        "name": name,
        "docs": "docs.tsv",
        "subsets": {
            "full": {
                "queries": "queries.tsv",
                "qrels": "qrels.txt",
                "scoreddocs": "run.txt",
            },
            "qonly": {"queries": "queries.tsv"},
        },
    }
    path = root / "manifest.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


@pytest.fixture
def collection(tmp_path: Path) -> tuple[str, Path]:
    name = unique_name()
    return name, make_collection(tmp_path / "data", name)


# --------------------------------------------------------------------------- Manifest


def test_manifest_read_resolves_root_to_its_folder(collection: tuple[str, Path]) -> None:
    name, path = collection
    manifest = Manifest.read(path)
    assert manifest.name == name
    assert manifest.root == path.parent
    assert manifest.docs == "docs.tsv"
    assert manifest.subsets["full"]["qrels"] == "qrels.txt"
    assert manifest.dataset_ids() == [f"{name}/full", f"{name}/qonly"]


@pytest.mark.parametrize("key", ["name", "docs", "subsets"])
def test_manifest_read_missing_key_names_file_and_key(tmp_path: Path, key: str) -> None:
    data = {"name": "x", "docs": "docs.tsv", "subsets": {}}
    del data[key]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"broken\.json.*'{key}'"):
        Manifest.read(path)


def test_manifest_write_read_round_trip(tmp_path: Path) -> None:
    subsets = {"train": {"queries": "q.tsv", "qrels": "r.txt"}}
    Manifest(name="demo-x", root=tmp_path, docs="docs.tsv", subsets=subsets).write(
        tmp_path / "m.json"
    )
    back = Manifest.read(tmp_path / "m.json")
    assert back == Manifest(name="demo-x", root=tmp_path, docs="docs.tsv", subsets=subsets)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


# --------------------------------------------------------------------------- registration


def test_register_manifest_returns_ids(collection: tuple[str, Path]) -> None:
    name, path = collection
    assert register_manifest(path) == [name, f"{name}/full", f"{name}/qonly"]
    assert name in ir_datasets.registry
    assert f"{name}/full" in ir_datasets.registry


def test_registered_dataset_yields_exactly_the_files(collection: tuple[str, Path]) -> None:
    name, path = collection
    register_manifest(path)
    dataset = ir_datasets.load(f"{name}/full")

    docs = [(d.doc_id, d.text) for d in dataset.docs_iter()]
    assert docs == [
        ("d1", "the cat sat on the mat"),
        ("0042", "forty two is the answer"),
        ("d3", "zebras are striped"),
    ]
    queries = [(q.query_id, q.text) for q in dataset.queries_iter()]
    assert queries == [("007", "what is the answer"), ("q2", "striped animals")]
    qrels = [(q.query_id, q.doc_id, q.relevance) for q in dataset.qrels_iter()]
    assert qrels == [("007", "0042", 3), ("007", "d1", 0), ("q2", "d3", 2), ("q2", "d1", 1)]
    assert dataset.qrels_defs()[3] == "perfectly relevant"
    scored = [(s.query_id, s.doc_id, s.score) for s in dataset.scoreddocs_iter()]
    assert scored == [("007", "0042", 12.5), ("007", "d1", 3.25), ("q2", "d3", 7.0)]


def test_docs_only_and_partial_subsets(collection: tuple[str, Path]) -> None:
    name, path = collection
    register_manifest(path)
    docs_only = ir_datasets.load(name)
    assert [d.doc_id for d in docs_only.docs_iter()] == ["d1", "0042", "d3"]
    assert not docs_only.has_queries()
    partial = ir_datasets.load(f"{name}/qonly")
    assert partial.has_docs() and partial.has_queries()
    assert not partial.has_qrels() and not partial.has_scoreddocs()


def test_register_twice_is_harmless(collection: tuple[str, Path]) -> None:
    name, path = collection
    first = register_manifest(path)
    second = register_manifest(path)
    assert first == second
    dataset = datasets.load(f"{name}/full", [path, path])
    assert [q.query_id for q in dataset.queries_iter()] == ["007", "q2"]
    assert [d.doc_id for d in dataset.docs_iter()] == ["d1", "0042", "d3"]


def test_load_registers_manifests_first(collection: tuple[str, Path]) -> None:
    name, path = collection
    dataset = datasets.load(f"{name}/full", [str(path)])
    assert [q.query_id for q in dataset.queries_iter()] == ["007", "q2"]


# --------------------------------------------------------------------------- frames


def test_topics_frame(collection: tuple[str, Path]) -> None:
    name, path = collection
    frame = datasets.topics(datasets.load(f"{name}/full", [path]))
    expected = pd.DataFrame(
        {"query_id": ["007", "q2"], "text": ["what is the answer", "striped animals"]}, dtype=str
    )
    pd.testing.assert_frame_equal(frame, expected)


def test_qrels_frame(collection: tuple[str, Path]) -> None:
    name, path = collection
    frame = datasets.qrels(datasets.load(f"{name}/full", [path]))
    assert list(frame.columns) == ["query_id", "doc_id", "relevance"]
    assert frame["relevance"].dtype == "int64"
    assert frame.values.tolist() == [
        ["007", "0042", 3],
        ["007", "d1", 0],
        ["q2", "d3", 2],
        ["q2", "d1", 1],
    ]
    assert all(isinstance(v, str) for v in [*frame["query_id"], *frame["doc_id"]])


# --------------------------------------------------------------------------- docstore


def test_build_docstore_then_doc_texts(collection: tuple[str, Path]) -> None:
    name, path = collection
    dataset = datasets.load(f"{name}/full", [path])
    assert datasets.build_docstore(dataset) == 3
    texts = datasets.doc_texts(dataset, ["d3", "0042", "d3"])
    assert texts == {"d3": "zebras are striped", "0042": "forty two is the answer"}
    assert list(texts) == ["d3", "0042"]  # input order, duplicates once
    # A second build is a no-op and lookups keep working.
    assert datasets.build_docstore(dataset) == 3
    assert datasets.doc_texts(dataset, iter(["d1"])) == {"d1": "the cat sat on the mat"}


def test_doc_texts_missing_id_names_the_count(collection: tuple[str, Path]) -> None:
    name, path = collection
    dataset = datasets.load(f"{name}/full", [path])
    datasets.build_docstore(dataset)
    with pytest.raises(KeyError, match=r"2 passage ids are not in the collection") as info:
        datasets.doc_texts(dataset, ["d1", "nope", "42", "d1"])
    message = str(info.value)
    assert "'nope'" in message and "'42'" in message  # "0042" is not "42"
    assert name in message


# --------------------------------------------------------------------------- write_docs_tsv


def test_write_docs_tsv_round_trips_through_ir_datasets(tmp_path: Path) -> None:
    docs = [("1", "first passage"), ("02", "second passage, with: punctuation")]
    write_docs_tsv(iter(docs), tmp_path / "docs.tsv")
    assert (tmp_path / "docs.tsv").read_text(encoding="utf-8") == (
        "1\tfirst passage\n02\tsecond passage, with: punctuation\n"
    )
    name = unique_name()
    Manifest(name=name, root=tmp_path, docs="docs.tsv", subsets={}).write(tmp_path / "m.json")
    dataset = datasets.load(name, [tmp_path / "m.json"])
    assert [(d.doc_id, d.text) for d in dataset.docs_iter()] == docs


@pytest.mark.parametrize(
    ("doc_id", "text"),
    [("bad-7", "a tab\there"), ("bad-7", "a newline\nhere"), ("bad\t7", "fine text")],
)
def test_write_docs_tsv_refuses_tabs_and_newlines(tmp_path: Path, doc_id: str, text: str) -> None:
    target = tmp_path / "docs.tsv"
    with pytest.raises(ValueError, match=r"passage 'bad(-|\\t)7' contains a tab or newline"):
        write_docs_tsv([("ok", "fine"), (doc_id, text)], target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # the temp file is gone too


def test_qrels_frame_keeps_the_last_label_of_a_repeated_pair(tmp_path: Path) -> None:
    name = unique_name()
    manifest = make_collection(tmp_path / "data", name)
    (tmp_path / "data" / "qrels.txt").write_text("007 0 0042 3\nq2 0 d3 2\n007 0 0042 1\n")
    frame = datasets.qrels(datasets.load(f"{name}/full", [manifest]))
    assert sorted(frame.values.tolist()) == [["007", "0042", 1], ["q2", "d3", 2]]
