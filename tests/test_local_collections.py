"""Tests for collections on disk (rank_distillm.data.collection_formats via datasets.Manifest):
TREC SGML, TSV and JSONL documents, TREC and TSV topics, docstores outside the data."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import uuid
from pathlib import Path

if "IR_DATASETS_HOME" not in os.environ:
    os.environ["IR_DATASETS_HOME"] = tempfile.mkdtemp(prefix="ir_datasets-")

import ir_datasets  # noqa: E402
import pytest  # noqa: E402

from rank_distillm.data import datasets  # noqa: E402
from rank_distillm.data.collection_formats import TitleBodyDoc  # noqa: E402
from rank_distillm.data.datasets import Manifest  # noqa: E402

SGML = """<DOC>
<DOCNO> FT-1 </DOCNO>
<PROFILE>skip me? no: outside title tags, so body</PROFILE>
<HEADLINE>
Storm hits coast
</HEADLINE>
<TEXT>
A storm hit the coast on Monday.
Trees fell &amp; roads closed.
</TEXT>
</DOC>
<DOC>
<DOCNO>2</DOCNO>
<DOCHDR>http://example.org/ 200 OK</DOCHDR>
<html><head><title>Page title</title><script>var x = 1;</script></head>
<body><p>Body text</p></body></html>
</DOC>
<DOC>
<DOCNO>3</DOCNO>
plain text right under DOC, as in Vaswani
</DOC>
"""

TOPICS_TREC = """<top>
<num> Number: 301
<title> International Organized Crime

<desc> Description:
Identify organizations that participate in
international criminal activity.

<narr> Narrative:
A relevant document must name an organization.
</top>
<top>
<num>302</num><title>
POLIO AND POST-POLIO
</title>
</top>
"""


def name() -> str:
    return f"local-{uuid.uuid4().hex[:10]}"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def register(entry: dict, tmp_path: Path, collection: str | None = None) -> tuple[str, Manifest]:
    collection = collection or name()
    manifest = Manifest.from_config(collection, entry, tmp_path / "results" / collection)
    datasets.register(manifest)
    return collection, manifest


# --------------------------------------------------------------------------- SGML


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_sgml_title_and_body(tmp_path: Path, suffix: str) -> None:
    docs = write(tmp_path / "data" / f"docs.trec{suffix}", SGML)
    collection, _ = register({"docs": str(docs)}, tmp_path)
    found = list(ir_datasets.load(collection).docs_iter())
    assert found == [
        TitleBodyDoc(
            "FT-1",
            "Storm hits coast",
            "skip me? no: outside title tags, so body\nA storm hit the coast on Monday.\n"
            "Trees fell & roads closed.",
        ),
        TitleBodyDoc("2", "Page title", "Body text"),  # DOCHDR and the script are dropped
        TitleBodyDoc("3", "", "plain text right under DOC, as in Vaswani"),
    ]
    # The ranking text: title + body on one line.
    assert datasets.record_text(found[0]) == (
        "Storm hits coast skip me? no: outside title tags, so body "
        "A storm hit the coast on Monday. Trees fell & roads closed."
    )
    assert datasets.record_text(found[2]) == "plain text right under DOC, as in Vaswani"


def test_sgml_body_tags_restrict_the_body(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs.trec", SGML)
    entry = {"docs": str(docs), "docs_options": {"body_tags": ["TEXT"]}}
    collection, _ = register(entry, tmp_path)
    first = next(iter(ir_datasets.load(collection).docs_iter()))
    assert first.body == "A storm hit the coast on Monday.\nTrees fell & roads closed."
    assert first.title == "Storm hits coast"


def test_sgml_folder_is_read_in_sorted_order(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    write(folder / "b" / "part2.gz", "<DOC>\n<DOCNO>d3</DOCNO>\n<TEXT>three</TEXT>\n</DOC>\n")
    write(folder / "a.trec", "<DOC>\n<DOCNO>d1</DOCNO>\n<TEXT>one</TEXT>\n</DOC>\n")
    write(folder / "b" / "part1", "<DOC>\n<DOCNO>d2</DOCNO>\n<TEXT>two</TEXT>\n</DOC>\n")
    write(folder / ".hidden", "<DOC>\n<DOCNO>no</DOCNO>\n</DOC>\n")
    collection, _ = register({"docs": str(folder), "docs_format": "trec"}, tmp_path)
    dataset = ir_datasets.load(collection)
    assert [(d.doc_id, d.body) for d in dataset.docs_iter()] == [
        ("d1", "one"),
        ("d2", "two"),
        ("d3", "three"),
    ]


def test_sgml_closing_tag_on_a_text_line(tmp_path: Path) -> None:
    text = "<DOC><DOCNO>x</DOCNO>one</DOC><DOC><DOCNO>y</DOCNO>two</DOC>"
    docs = write(tmp_path / "d.trec", text)
    collection, _ = register({"docs": str(docs)}, tmp_path)
    assert [(d.doc_id, d.body) for d in ir_datasets.load(collection).docs_iter()] == [
        ("x", "one"),
        ("y", "two"),
    ]


def test_sgml_document_without_docno_is_an_error(tmp_path: Path) -> None:
    docs = write(tmp_path / "d.trec", "<DOC>\n<DOCNO>a</DOCNO>\nok\n</DOC>\n<DOC>\nno id\n</DOC>\n")
    collection, _ = register({"docs": str(docs)}, tmp_path)
    with pytest.raises(ValueError, match=r"d\.trec: document 2 \(after 'a'\) has no <DOCNO>"):
        list(ir_datasets.load(collection).docs_iter())


def test_sgml_truncated_file_is_an_error(tmp_path: Path) -> None:
    docs = write(tmp_path / "d.trec", "<DOC>\n<DOCNO>a</DOCNO>\nok\n</DOC>\n<DOC>\n<DOCNO>b</DOC")
    collection, _ = register({"docs": str(docs)}, tmp_path)
    with pytest.raises(ValueError, match=r"d\.trec: ends inside a document \(after 'a'\)"):
        list(ir_datasets.load(collection).docs_iter())


# --------------------------------------------------------------------------- TSV and JSONL


@pytest.mark.parametrize("suffix", [".tsv", ".tsv.gz"])
def test_tsv_docs(tmp_path: Path, suffix: str) -> None:
    docs = write(tmp_path / f"docs{suffix}", "1\tfirst text\n02\tsecond text\n")
    collection, manifest = register({"docs": str(docs)}, tmp_path)
    dataset = ir_datasets.load(collection)
    assert [(d.doc_id, d.text) for d in dataset.docs_iter()] == [
        ("1", "first text"),
        ("02", "second text"),
    ]
    assert datasets.build_docstore(dataset) == 2
    assert manifest.docstore_path() == tmp_path / "results" / collection / "docs.tsv.pklz4"
    assert manifest.docstore_path().is_dir()
    assert datasets.doc_texts(dataset, ["02"]) == {"02": "second text"}


def test_tsv_docs_with_a_third_column_name_the_record(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs.tsv", "1\tfine\n2\tbad\textra\n")
    collection, _ = register({"docs": str(docs)}, tmp_path)
    with pytest.raises(ValueError, match=r"docs\.tsv: record 2: expected 2 fields, got 3"):
        list(ir_datasets.load(collection).docs_iter())


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_jsonl_docs_with_title(tmp_path: Path, suffix: str) -> None:
    lines = [
        {"id": 7, "headline": "A title", "contents": "the body", "extra": 1},
        {"id": "b", "headline": "", "contents": "only a body"},
    ]
    docs = write(tmp_path / f"docs{suffix}", "\n".join(json.dumps(x) for x in lines) + "\n")
    fields = {"doc_id": "id", "title": "headline", "body": "contents"}
    collection, _ = register({"docs": str(docs), "docs_options": {"fields": fields}}, tmp_path)
    dataset = ir_datasets.load(collection)
    assert list(dataset.docs_iter()) == [
        TitleBodyDoc("7", "A title", "the body"),
        TitleBodyDoc("b", "", "only a body"),
    ]
    datasets.build_docstore(dataset)
    assert datasets.doc_texts(dataset, ["7", "b"]) == {"7": "A title the body", "b": "only a body"}


def test_jsonl_missing_key_names_file_and_line(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs.jsonl", '{"doc_id": "1", "text": "x"}\n\n{"doc_id": "2"}\n')
    collection, _ = register({"docs": str(docs)}, tmp_path)
    with pytest.raises(ValueError, match=r"docs\.jsonl:3: the record lacks the key 'text'"):
        list(ir_datasets.load(collection).docs_iter())


def test_jsonl_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs.jsonl", '{"doc_id": "1", "text": "x"}\n{oops\n')
    collection, _ = register({"docs": str(docs)}, tmp_path)
    with pytest.raises(ValueError, match=r"docs\.jsonl:2: invalid JSON"):
        list(ir_datasets.load(collection).docs_iter())


# --------------------------------------------------------------------------- topics


def test_trec_topics_title_by_default(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs.tsv", "d\tx\n")
    topics = write(tmp_path / "topics.txt", TOPICS_TREC)
    entry = {"docs": str(docs), "queries": str(topics), "queries_format": "trec"}
    collection, _ = register(entry, tmp_path)
    dataset = ir_datasets.load(collection)
    first, second = list(dataset.queries_iter())
    assert first.query_id == "301" and first.title == "International Organized Crime"
    assert first.description == (
        "Identify organizations that participate in international criminal activity."
    )
    assert first.narrative == "A relevant document must name an organization."
    assert (second.query_id, second.title) == ("302", "POLIO AND POST-POLIO")
    assert second.description == second.narrative == ""
    frame = datasets.topics(dataset)
    assert frame.values.tolist() == [
        ["301", "International Organized Crime"],
        ["302", "POLIO AND POST-POLIO"],
    ]


def test_trec_topics_configured_fields(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs.tsv", "d\tx\n")
    topics = write(tmp_path / "topics.trec", TOPICS_TREC.split("<top>\n<num>302")[0])
    entry = {"docs": str(docs), "queries": str(topics), "query_fields": ["title", "description"]}
    collection, _ = register(entry, tmp_path)
    assert datasets.topics(ir_datasets.load(collection)).values.tolist() == [
        [
            "301",
            "International Organized Crime Identify organizations that participate in "
            "international criminal activity.",
        ]
    ]


def test_trec_topic_without_the_chosen_field_is_an_error(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs.tsv", "d\tx\n")
    topics = write(tmp_path / "topics.trec", TOPICS_TREC)
    entry = {"docs": str(docs), "queries": str(topics), "query_fields": ["description"]}
    collection, _ = register(entry, tmp_path)
    message = r"topics\.trec: topic 302 has no text in \['description'\]"
    with pytest.raises(ValueError, match=message):
        datasets.topics(ir_datasets.load(collection))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<top>\n<title> no number\n</top>\n", r"topics\.trec:1: topic without <num>"),
        ("<top>\n<num>1\n<title> a\n", r"topics\.trec:1: topic not closed by </top>"),
        ("<num>1\n", r"topics\.trec:1: <num> outside <top>"),
        ("<top>\n<num>1\n<top>\n", r"topics\.trec:3: <top> inside the topic of line 1"),
    ],
)
def test_malformed_trec_topics_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    docs = write(tmp_path / "docs.tsv", "d\tx\n")
    topics = write(tmp_path / "topics.trec", text)
    collection, _ = register({"docs": str(docs), "queries": str(topics)}, tmp_path)
    with pytest.raises(ValueError, match=message):
        datasets.topics(ir_datasets.load(collection))


def test_tsv_topics_gz_and_qrels(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs.tsv", "d1\tx\nd2\ty\n")
    topics = write(tmp_path / "q.tsv.gz", "q1\tfirst   query\nq2\tsecond\n")
    qrels = write(tmp_path / "qrels.gz", "q1 0 d1 2\nq2 0 d2 0\n")
    entry = {"docs": str(docs), "queries": str(topics), "qrels": str(qrels)}
    collection, _ = register(entry, tmp_path)
    dataset = ir_datasets.load(collection)
    assert datasets.topics(dataset).values.tolist() == [["q1", "first query"], ["q2", "second"]]
    assert datasets.qrels(dataset).values.tolist() == [["q1", "d1", 2], ["q2", "d2", 0]]


# --------------------------------------------------------------------------- manifests


def test_subsets_share_the_documents(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs.tsv", "d1\tx\n")
    write(tmp_path / "a.tsv", "1\talpha\n")
    write(tmp_path / "b.tsv", "1\tbeta\n")
    entry = {
        "docs": "docs.tsv",
        "subsets": {"2004": {"queries": "a.tsv"}, "2005": {"queries": "b.tsv"}},
    }
    collection = name()
    manifest = Manifest.from_config(collection, entry, tmp_path / "out", base=tmp_path)
    assert manifest.docs == str(docs)  # relative to base, stored absolute
    manifest.write(tmp_path / "out" / "manifest.json")
    ids = datasets.register_manifest(tmp_path / "out" / "manifest.json")
    assert ids == [collection, f"{collection}/2004", f"{collection}/2005"]
    texts = [datasets.topics(ir_datasets.load(i)).text.tolist() for i in ids[1:]]
    assert texts == [["alpha"], ["beta"]]
    assert Manifest.read(tmp_path / "out" / "manifest.json") == manifest


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"docs": "d.tsv", "docz": 1}, r"collections\.c: unknown keys \['docz'\]"),
        ({"queries": "q.tsv"}, r"collections\.c: the key 'docs' .* is missing"),
        ({"docs": "d.txt"}, r"cannot tell the format of .*d\.txt.*set it to one of"),
        ({"docs": "d.tsv", "docs_format": "csv"}, r"docs_format 'csv' is not one of"),
        ({"docs": "d.tsv", "docs_options": {"title_tags": []}}, r"docs_options \(tsv\)"),
        ({"docs": "d.tsv", "queries": "q.tsv", "query_fields": ["body"]}, r"query fields must"),
        ({"docs": "d.tsv", "subsets": {"s": {"qrel": "x"}}}, r"subsets\.s: unknown keys"),
    ],
)
def test_bad_config_entries_name_the_key(tmp_path: Path, entry: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Manifest.from_config("c", entry, tmp_path)


def test_an_ir_datasets_id_cannot_be_shadowed(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs.tsv", "d\tx\n")
    with pytest.raises(ValueError, match=r"'vaswani' is already an ir_datasets id"):
        register({"docs": str(docs)}, tmp_path, collection="vaswani")


def test_one_id_from_two_collections_is_an_error(tmp_path: Path) -> None:
    collection = name()
    register({"docs": str(write(tmp_path / "a.tsv", "d\tx\n"))}, tmp_path, collection)
    register({"docs": str(tmp_path / "a.tsv")}, tmp_path, collection)  # the same: fine
    with pytest.raises(ValueError, match=r"already registered from another collection"):
        register({"docs": str(write(tmp_path / "b.tsv", "d\ty\n"))}, tmp_path, collection)


# --------------------------------------------------------------------------- check_collection


def test_check_collection_counts_and_builds_the_docstore(tmp_path: Path) -> None:
    docs = write(tmp_path / "data" / "docs.trec", SGML)
    topics = write(tmp_path / "data" / "topics.trec", TOPICS_TREC)
    qrels = write(tmp_path / "data" / "qrels", "301 0 FT-1 1\n301 0 gone 0\n302 0 3 2\n")
    before = sorted(p.name for p in (tmp_path / "data").iterdir())
    collection = name()
    entry = {"docs": str(docs), "queries": str(topics), "qrels": str(qrels)}
    manifest = Manifest.from_config(collection, entry, tmp_path / "results")
    counts = datasets.check_collection(manifest)
    assert counts == {
        collection: {
            "documents": 3,
            "queries": 2,
            "judged_queries": 2,
            "qrels": 3,
            "qrels_docs_missing": 1,
        }
    }
    # The docstore is beside the manifest; the data folder is untouched.
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == before
    assert (tmp_path / "results" / "docs.trec.pklz4").is_dir()


def test_check_collection_refuses_judged_queries_without_topics(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs.tsv", "d\tx\n")
    topics = write(tmp_path / "q.tsv", "1\tquery\n")
    qrels = write(tmp_path / "qrels.txt", "1 0 d 1\n9 0 d 1\n")
    entry = {"docs": str(docs), "queries": str(topics), "qrels": str(qrels)}
    manifest = Manifest.from_config(name(), entry, tmp_path / "results")
    with pytest.raises(ValueError, match=r"qrels\.txt: 1 judged queries have no topic .*\['9'\]"):
        datasets.check_collection(manifest)


def test_check_collection_names_a_malformed_qrels_line(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs.tsv", "d\tx\n")
    qrels = write(tmp_path / "qrels.txt", "1 0 d 1\n1 0 d\n")
    manifest = Manifest.from_config(name(), {"docs": str(docs), "qrels": str(qrels)}, tmp_path)
    with pytest.raises(ValueError, match=r"qrels\.txt:2"):
        datasets.check_collection(manifest)


# --------------------------------------------------------------------------- texts


def test_truncate_words() -> None:
    text = "one two  three\nfour"
    assert datasets.truncate_words(text, 2) == "one two"
    assert datasets.truncate_words(text, 10) == "one two three four"
    assert datasets.truncate_words(text, None) == text
    with pytest.raises(ValueError, match="max_words must be >= 1"):
        datasets.truncate_words(text, 0)


def test_doc_texts_cut_to_max_words(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs.tsv", "d\ta b c d e\n")
    collection, _ = register({"docs": str(docs)}, tmp_path)
    dataset = ir_datasets.load(collection)
    assert datasets.doc_texts(dataset, ["d"], max_words=3) == {"d": "a b c"}
