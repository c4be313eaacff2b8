"""A generated TIREx-like part for the demo: out-of-domain corpora, written to disk in the
formats a user would bring, so the demo runs the local-collection path end to end.

Two "domains", each unlike the MS MARCO-like demo and unlike each other:

* **news** (TREC SGML, gzip, + TREC ``<top>`` topics, two topic sets = two tasks on one
  corpus, like the TREC web tracks on ClueWeb): long articles with a ``<HEADLINE>`` and
  a ``<TEXT>``; words built from consonant clusters; keyword topics with a description.
* **arguments** (JSONL with ``conclusion``/``premise`` keys + TSV questions, like
  args.me/Touché): short argumentative passages; words with long vowels; queries are
  questions.

Words use the demo's letters, so the demo's WordPiece vocabulary can split them into
known pieces. Relevance is exact: a query names two or three *key words* of a subject;
documents on that subject are relevant (grade 2 when the key words lead the document
and its title, 1 when they are only mentioned), and *distractors* repeat the query's key
words without being about the subject (grade 0, judged), so BM25 is far from perfect.
Same seed, same bytes.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rank_distillm.data import atomic
from rank_distillm.data import trec as trec_io
from rank_distillm.data.datasets import Manifest
from rank_distillm.data.demo_collection import WordFactory


@dataclass(frozen=True)
class Style:
    """How one domain looks: its word shapes, document lengths and file formats."""

    consonants: tuple[str, ...]
    vowels: tuple[str, ...]
    title_words: tuple[int, int]
    body_words: tuple[int, int]
    docs_format: str  # trec | jsonl
    queries_format: str  # trec | tsv


STYLES: dict[str, Style] = {
    "news": Style(
        consonants=("st", "pr", "kl", "gr", "tr", "sp", "fl", "br", "dr", "sk"),
        vowels=("a", "e", "i", "o", "u"),
        title_words=(5, 9),
        body_words=(150, 350),
        docs_format="trec",
        queries_format="trec",
    ),
    "arguments": Style(
        consonants=("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z"),
        vowels=("aa", "ee", "oo", "ia", "ua", "ei"),
        title_words=(4, 8),
        body_words=(25, 60),
        docs_format="jsonl",
        queries_format="tsv",
    ),
}
NEWS_QUESTION = ("find", "reports", "on")
ARGUMENT_QUESTIONS = (("should", "we", "{a}", "{b}"), ("is", "{a}", "better", "than", "{b}"))


@dataclass(frozen=True)
class DomainSettings:
    """One generated corpus: ``topic_sets`` maps task names to their number of queries."""

    style: str
    documents: int
    subjects: int
    topic_sets: Mapping[str, int]
    fillers: int = 300
    distractors_per_subject: int = 5


@dataclass(frozen=True)
class DemoTirexSettings:
    """The demo's TIREx part (config key ``demo_tirex``)."""

    seed: int = 7
    corpora: Mapping[str, DomainSettings] = field(
        default_factory=lambda: {
            "demo-news": DomainSettings(
                style="news", documents=300, subjects=30, topic_sets={"2019": 8, "2020": 8}
            ),
            "demo-args": DomainSettings(
                style="arguments", documents=500, subjects=40, topic_sets={"test": 12}
            ),
        }
    )


def tirex_settings(values: Mapping[str, Any]) -> DemoTirexSettings:
    """Settings from the config's ``demo_tirex`` mapping."""
    values = dict(values)
    corpora = {}
    for name, entry in values.pop("corpora", {}).items():
        entry = dict(entry)
        # YAML reads `2019:` as a number; task names are strings.
        entry["topic_sets"] = {str(k): v for k, v in entry.get("topic_sets", {}).items()}
        corpora[name] = DomainSettings(**entry)
    settings = DemoTirexSettings(**values)
    return DemoTirexSettings(seed=settings.seed, corpora=corpora) if corpora else settings


@dataclass
class Document:
    doc_id: str
    title: str
    body: str
    subject: int
    grade_for_subject: int  # 2 on topic and leading, 1 mentions it, 0 a distractor


@dataclass
class Corpus:
    documents: list[Document]
    topics: dict[str, list[dict[str, str]]]  # task -> [{query_id, title, description}]
    qrels: dict[str, list[tuple[str, str, int]]]  # task -> (query_id, doc_id, grade)


def generate_corpus(name: str, settings: DomainSettings, seed: int) -> Corpus:
    """Generate one corpus; the seed is mixed with the name, so corpora differ."""
    if settings.style not in STYLES:
        raise ValueError(f"demo_tirex.corpora.{name}.style: expected one of {list(STYLES)}")
    total_queries = sum(settings.topic_sets.values())
    if total_queries > settings.subjects:
        raise ValueError(
            f"demo_tirex.corpora.{name}: {total_queries} queries need at least as many "
            f"subjects, got {settings.subjects}"
        )
    style = STYLES[settings.style]
    rng = random.Random(seed * 1_000_003 + zlib.crc32(name.encode()))
    words = WordFactory(rng, style.consonants, style.vowels, reserved=())
    # Short words first, so they are the most frequent fillers (function words).
    fillers = [words.new(1 if n < 30 else 2) for n in range(settings.fillers)]
    weights = [1.0 / (rank + 1) for rank in range(len(fillers))]  # Zipf-like
    keys = [[words.new(rng.choice((2, 3))) for _ in range(3)] for _ in range(settings.subjects)]

    def text(length: int) -> list[str]:
        return rng.choices(fillers, weights=weights, k=length)

    def insert(tokens: list[str], inserted: list[str], lead: bool) -> list[str]:
        for word in inserted:
            limit = min(len(tokens), 12) if lead else len(tokens)
            tokens.insert(rng.randrange(limit + 1), word)
        return tokens

    documents = []
    for number in range(settings.documents):
        subject = number % settings.subjects
        grade = 2 if rng.random() < 0.4 else 1
        title = text(rng.randint(*style.title_words))
        body = text(rng.randint(*style.body_words))
        if grade == 2:
            insert(title, [rng.choice(keys[subject])], lead=False)
            insert(body, keys[subject] * rng.randint(1, 2), lead=True)
        else:
            insert(body, rng.sample(keys[subject], k=2), lead=False)
        documents.append(Document("", " ".join(title), " ".join(body), subject, grade))
    for subject in range(settings.subjects):
        for _ in range(settings.distractors_per_subject):
            # The query's two key words, repeated: BM25 ranks these high, yet they are
            # about another subject.
            first, second = keys[subject][:2]
            stuffed = [first] * rng.randint(2, 4) + [second] * rng.randint(1, 3)
            other = rng.randrange(settings.subjects)
            body = insert(text(rng.randint(*style.body_words)), stuffed + keys[other][:1], False)
            documents.append(
                Document("", " ".join(text(rng.randint(*style.title_words))), " ".join(body),
                         subject, 0)
            )  # fmt: skip
    rng.shuffle(documents)
    prefix = "NEWS" if settings.style == "news" else "arg"
    for number, document in enumerate(documents):
        document.doc_id = f"{prefix}-{number:05d}"

    subjects = rng.sample(range(settings.subjects), k=total_queries)
    topics: dict[str, list[dict[str, str]]] = {}
    qrels: dict[str, list[tuple[str, str, int]]] = {}
    next_id = 1
    for task, count in settings.topic_sets.items():
        topics[task], qrels[task] = [], []
        for subject in subjects[:count]:
            query_id = str(next_id)
            next_id += 1
            a, b, c = keys[subject]
            if settings.style == "news":
                title = f"{a} {b}"
                description = " ".join([*NEWS_QUESTION, a, b, "and", c])
            else:
                template = rng.choice(ARGUMENT_QUESTIONS)
                title = " ".join(part.format(a=a, b=b) for part in template)
                description = ""
            topics[task].append({"query_id": query_id, "title": title, "description": description})
            for document in documents:
                if document.subject == subject:
                    qrels[task].append((query_id, document.doc_id, document.grade_for_subject))
        subjects = subjects[count:]
    return Corpus(documents=documents, topics=topics, qrels=qrels)


def _write_sgml(documents: list[Document], path: Path) -> None:
    """gzip-compressed SGML; no name or time in the gzip header, so the bytes repeat."""
    import gzip
    import io

    with (
        atomic.atomic_output(path) as tmp,
        tmp.open("wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as packed,
        io.TextIOWrapper(packed, encoding="utf-8") as out,
    ):
        for d in documents:
            out.write(
                f"<DOC>\n<DOCNO> {d.doc_id} </DOCNO>\n<HEADLINE>\n{d.title}\n</HEADLINE>\n"
                f"<TEXT>\n{d.body}\n</TEXT>\n</DOC>\n"
            )


def _write_jsonl(documents: list[Document], path: Path) -> None:
    lines = [
        json.dumps({"id": d.doc_id, "conclusion": d.title, "premise": d.body}) + "\n"
        for d in documents
    ]
    atomic.atomic_write_text(path, "".join(lines))


def _write_trec_topics(topics: list[dict[str, str]], path: Path) -> None:
    blocks = [
        f"<top>\n<num> Number: {t['query_id']}\n<title> {t['title']}\n\n"
        f"<desc> Description:\n{t['description']}\n\n</top>\n\n"
        for t in topics
    ]
    atomic.atomic_write_text(path, "".join(blocks))


def write_corpora(settings: DemoTirexSettings, out_dir: Path) -> dict[str, Path]:
    """Write every corpus to ``out_dir/<name>/`` with its manifest, written last (it marks
    the corpus complete). Returns the manifest paths by collection name."""
    import pandas as pd

    manifests = {}
    for name, domain in settings.corpora.items():
        corpus = generate_corpus(name, domain, settings.seed)
        style = STYLES[domain.style]
        folder = out_dir / name
        if style.docs_format == "trec":
            docs = "docs.trec.gz"
            _write_sgml(corpus.documents, folder / docs)
            docs_options: dict[str, Any] = {}
        else:
            docs = "docs.jsonl"
            _write_jsonl(corpus.documents, folder / docs)
            docs_options = {"fields": {"doc_id": "id", "title": "conclusion", "body": "premise"}}
        subsets: dict[str, dict[str, Any]] = {}
        for task, topics in corpus.topics.items():
            qrels = pd.DataFrame(corpus.qrels[task], columns=["query_id", "doc_id", "relevance"])
            trec_io.write_qrels(qrels, folder / f"qrels-{task}.txt")
            if style.queries_format == "trec":
                queries = f"topics-{task}.trec"
                _write_trec_topics(topics, folder / queries)
            else:
                queries = f"queries-{task}.tsv"
                frame = pd.DataFrame(
                    [(t["query_id"], t["title"]) for t in topics], columns=["query_id", "text"]
                )
                trec_io.write_topics(frame, folder / queries)
            subsets[task] = {
                "queries": queries,
                "queries_format": style.queries_format,
                "qrels": f"qrels-{task}.txt",
            }
        manifest = Manifest(
            name=name,
            root=folder,
            docs=docs,
            subsets=subsets,
            docs_format=style.docs_format,
            docs_options=docs_options,
        )
        manifest.write(folder / "manifest.json")
        manifests[name] = folder / "manifest.json"
    return manifests
