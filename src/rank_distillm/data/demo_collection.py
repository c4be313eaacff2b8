"""Deterministic, learnable demo data: an MS MARCO-like collection that runs offline.

The collection is built from pseudo-words so that nothing is downloaded. It is
shaped so that a cross-encoder can beat BM25, as on MS MARCO:

* Passages belong to topics. Every passage of a topic shares the topic's words, so a
  query's topic word matches dozens of passages equally well for BM25.
* Each passage is about one primary *concept* of its topic and mentions a second one.
  Near-duplicates exist: the same secondary concept with another primary concept.
* Queries name their concept mostly through a *variant* that never occurs in
  passages: a derived form (``<concept><suffix>``, which WordPiece splits into the
  concept's own token plus a suffix, but which BM25's stemmer leaves unmatched) or a
  synonym (an unrelated word that has to be learned from training queries).

Relevance (graded 0-3) follows from the concepts, so the qrels are exact.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"
# Suffixes that Porter2 does not strip, so BM25 never matches a derived form; their
# letters occur in passages, so WordPiece has continuation pieces for them.
DERIVATION_SUFFIXES = ("uk", "esk", "ov", "utz")
QUESTION_WORDS = ("what", "how", "why", "which", "define", "meaning", "is", "does")


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and noise of the demo collection (config key ``demo``)."""

    seed: int = 42
    topics: int = 40
    concepts_per_topic: int = 8
    passages_per_concept: int = 8
    filler_words: int = 400
    passage_words: tuple[int, int] = (12, 20)
    train_queries: int = 2000
    eval_queries: dict[str, int] = field(default_factory=lambda: {"dl19": 43, "dl20": 54})
    literal_probability: float = 0.3
    synonym_fraction: float = 0.25


@dataclass(frozen=True)
class Concept:
    word: str  # the form used in passages
    variant: str  # the form queries mostly use
    topic: int


@dataclass(frozen=True)
class Passage:
    doc_id: str
    text: str
    topic: int
    primary: int  # concept index
    secondary: int


@dataclass
class DemoCollection:
    passages: list[Passage]
    queries: dict[str, pd.DataFrame]  # subset -> topics frame (query_id, text)
    qrels: dict[str, pd.DataFrame]  # subset -> qrels frame


class WordFactory:
    """Unique pronounceable pseudo-words (consonant-vowel syllables), seeded.

    Other onsets and nuclei (e.g. clusters ``("st", "pr")``) give another "language"
    over the same letters, as the TIREx-like demo corpora use."""

    def __init__(
        self,
        rng: random.Random,
        consonants: Sequence[str] = CONSONANTS,
        vowels: Sequence[str] = VOWELS,
        reserved: Iterable[str] = QUESTION_WORDS,
    ) -> None:
        self._rng = rng
        self._consonants = consonants
        self._vowels = vowels
        self._used: set[str] = set(reserved)

    def new(self, syllables: int) -> str:
        for _ in range(1000):
            word = "".join(
                self._rng.choice(self._consonants) + self._rng.choice(self._vowels)
                for _ in range(syllables)
            )
            if word not in self._used:
                self._used.add(word)
                return word
        raise ValueError(f"ran out of unique {syllables}-syllable words; lower the demo sizes")


def generate_collection(settings: DemoSettings) -> DemoCollection:
    """Build the whole demo collection from ``settings.seed``; same seed, same bytes."""
    rng = random.Random(settings.seed)
    words = WordFactory(rng)
    # Function words come first, so they are the most frequent fillers, as in real text.
    fillers = list(QUESTION_WORDS) + [words.new(2) for _ in range(settings.filler_words)]
    filler_weights = [1.0 / (rank + 1) for rank in range(len(fillers))]  # Zipf-like
    topic_words = [(words.new(3), words.new(3)) for _ in range(settings.topics)]
    concepts = _make_concepts(settings, rng, words)
    passages = _make_passages(settings, rng, concepts, topic_words, fillers, filler_weights)

    by_primary: dict[int, list[Passage]] = {}
    by_topic: dict[int, list[Passage]] = {}
    for passage in passages:
        by_primary.setdefault(passage.primary, []).append(passage)
        by_topic.setdefault(passage.topic, []).append(passage)

    subsets = {"train": settings.train_queries, **settings.eval_queries}
    queries: dict[str, pd.DataFrame] = {}
    qrels: dict[str, pd.DataFrame] = {}
    next_query_id = 1000
    for subset, count in subsets.items():
        topic_rows, qrel_rows = [], []
        for _ in range(count):
            query_id = str(next_query_id)
            next_query_id += 1
            target = rng.randrange(len(concepts))
            # Half of the queries also name the secondary concept of one of the target's
            # passages; those passages are then the perfect (grade 3) answers.
            secondary = None
            if rng.random() < 0.5:
                secondary = rng.choice(by_primary[target]).secondary
            text = _query_text(rng, concepts, topic_words, target, secondary, settings)
            topic_rows.append((query_id, text))
            for passage in by_topic[concepts[target].topic]:
                grade = _grade(passage, target, secondary)
                qrel_rows.append((query_id, passage.doc_id, grade))
        queries[subset] = pd.DataFrame(topic_rows, columns=["query_id", "text"])
        qrels[subset] = pd.DataFrame(qrel_rows, columns=["query_id", "doc_id", "relevance"])
    return DemoCollection(passages=passages, queries=queries, qrels=qrels)


def _make_concepts(settings: DemoSettings, rng: random.Random, words: WordFactory) -> list[Concept]:
    concepts = []
    for topic in range(settings.topics):
        for _ in range(settings.concepts_per_topic):
            word = words.new(rng.choice((2, 3)))
            if rng.random() < settings.synonym_fraction:
                variant = words.new(3)
            else:
                variant = word + rng.choice(DERIVATION_SUFFIXES)
            concepts.append(Concept(word=word, variant=variant, topic=topic))
    return concepts


def _make_passages(
    settings: DemoSettings,
    rng: random.Random,
    concepts: list[Concept],
    topic_words: list[tuple[str, str]],
    fillers: list[str],
    filler_weights: list[float],
) -> list[Passage]:
    passages = []
    per_topic = settings.concepts_per_topic
    for index, concept in enumerate(concepts):
        first = concept.topic * per_topic
        siblings = [c for c in range(first, first + per_topic) if c != index]
        for _ in range(settings.passages_per_concept):
            secondary = rng.choice(siblings)
            length = rng.randint(*settings.passage_words)
            tokens = rng.choices(fillers, weights=filler_weights, k=length)
            inserted = [concept.word] * rng.randint(1, 3) + [concepts[secondary].word]
            inserted += rng.sample(topic_words[concept.topic], k=rng.randint(1, 2))
            for word in inserted:
                tokens.insert(rng.randrange(len(tokens) + 1), word)
            passages.append(
                Passage(
                    doc_id="",
                    text=" ".join(tokens),
                    topic=concept.topic,
                    primary=index,
                    secondary=secondary,
                )
            )
    rng.shuffle(passages)
    # Ids look like MS MARCO's: plain integers, assigned after shuffling.
    return [
        Passage(str(number), p.text, p.topic, p.primary, p.secondary)
        for number, p in enumerate(passages)
    ]


def _query_text(
    rng: random.Random,
    concepts: list[Concept],
    topic_words: list[tuple[str, str]],
    target: int,
    secondary: int | None,
    settings: DemoSettings,
) -> str:
    def form(concept: Concept) -> str:
        return concept.word if rng.random() < settings.literal_probability else concept.variant

    parts = [rng.choice(QUESTION_WORDS), form(concepts[target])]
    if secondary is not None:
        parts.append(form(concepts[secondary]))
    parts.insert(rng.randrange(1, len(parts) + 1), rng.choice(topic_words[concepts[target].topic]))
    return " ".join(parts)


def _grade(passage: Passage, target: int, secondary: int | None) -> int:
    if passage.primary == target:
        return 3 if secondary is None or passage.secondary == secondary else 2
    if passage.secondary == target:
        return 1
    return 0


def collection_settings(values: Mapping[str, Any]) -> DemoSettings:
    """Settings from the config's ``demo`` mapping (lists become tuples)."""
    values = dict(values)
    if "passage_words" in values:
        values["passage_words"] = tuple(values["passage_words"])
    return DemoSettings(**values)


def write_collection(
    collection: DemoCollection,
    manifest_path: Path,
    name: str,
    scoreddocs: Mapping[str, str] | None = None,
) -> None:
    """Write passages, queries and qrels beside ``manifest_path``, then the manifest
    describing them (``datasets.Manifest``): written last, it marks the data complete.
    ``scoreddocs`` adds run files (paths relative to the manifest) per subset."""
    from rank_distillm.data import trec as trec_io
    from rank_distillm.data.datasets import Manifest, write_docs_tsv

    out_dir = manifest_path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    write_docs_tsv(((p.doc_id, p.text) for p in collection.passages), out_dir / "docs.tsv")
    subsets: dict[str, dict[str, str]] = {}
    for subset, topics in collection.queries.items():
        trec_io.write_topics(topics, out_dir / f"queries-{subset}.tsv")
        trec_io.write_qrels(collection.qrels[subset], out_dir / f"qrels-{subset}.txt")
        subsets[subset] = {"queries": f"queries-{subset}.tsv", "qrels": f"qrels-{subset}.txt"}
        if scoreddocs and subset in scoreddocs:
            subsets[subset]["scoreddocs"] = scoreddocs[subset]
    Manifest(name=name, root=out_dir, docs="docs.tsv", subsets=subsets).write(manifest_path)
