"""Tests for rank_distillm.data.demo_collection: the deterministic, learnable demo collection."""

from __future__ import annotations

import os
import random
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

# demo.write goes through rank_distillm.data.datasets, which imports ir_datasets.
if "IR_DATASETS_HOME" not in os.environ:
    os.environ["IR_DATASETS_HOME"] = tempfile.mkdtemp(prefix="ir_datasets-")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from rank_distillm.data import datasets  # noqa: E402
from rank_distillm.data import demo_collection as demo
from rank_distillm.data import trec as trec_io  # noqa: E402
from rank_distillm.data.datasets import Manifest  # noqa: E402
from rank_distillm.data.demo_collection import QUESTION_WORDS, DemoSettings  # noqa: E402

SMALL = DemoSettings(
    seed=7,
    topics=4,
    concepts_per_topic=3,
    passages_per_concept=2,
    filler_words=30,
    passage_words=(5, 8),
    train_queries=20,
    eval_queries={"dl19": 5, "dl20": 6},
)


@dataclass(frozen=True)
class Derived:
    """What ``generate`` builds before the queries, re-derived with the same RNG calls."""

    fillers: list[str]
    topic_words: list[tuple[str, str]]
    concepts: list[demo.Concept]
    passages: list[demo.Passage]


def derive(settings: DemoSettings) -> Derived:
    rng = random.Random(settings.seed)
    words = demo.WordFactory(rng)
    fillers = list(QUESTION_WORDS) + [words.new(2) for _ in range(settings.filler_words)]
    weights = [1.0 / (rank + 1) for rank in range(len(fillers))]
    topic_words = [(words.new(3), words.new(3)) for _ in range(settings.topics)]
    concepts = demo._make_concepts(settings, rng, words)
    passages = demo._make_passages(settings, rng, concepts, topic_words, fillers, weights)
    return Derived(fillers, topic_words, concepts, passages)


@pytest.fixture(scope="module")
def default_collection() -> demo.DemoCollection:
    return demo.generate_collection(DemoSettings())


@pytest.fixture(scope="module")
def default_derived() -> Derived:
    return derive(DemoSettings())


def passage_tokens(collection: demo.DemoCollection) -> set[str]:
    return {token for passage in collection.passages for token in passage.text.split()}


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_collection() -> None:
    a, b = demo.generate_collection(SMALL), demo.generate_collection(SMALL)
    assert a.passages == b.passages
    assert list(a.queries) == list(b.queries) == ["train", "dl19", "dl20"]
    for subset in a.queries:
        pd.testing.assert_frame_equal(a.queries[subset], b.queries[subset])
        pd.testing.assert_frame_equal(a.qrels[subset], b.qrels[subset])


def test_different_seed_different_collection() -> None:
    a = demo.generate_collection(SMALL)
    b = demo.generate_collection(DemoSettings(**{**SMALL.__dict__, "seed": 8}))
    assert [p.text for p in a.passages] != [p.text for p in b.passages]
    assert a.queries["train"]["text"].tolist() != b.queries["train"]["text"].tolist()
    assert not a.qrels["train"].equals(b.qrels["train"])


def test_rederivation_matches_generate() -> None:
    """Guards the helpers below: the re-derived passages are generate's passages."""
    assert derive(SMALL).passages == demo.generate_collection(SMALL).passages


# --------------------------------------------------------------------------- sizes


def test_sizes_follow_settings() -> None:
    collection = demo.generate_collection(SMALL)
    assert len(collection.passages) == 4 * 3 * 2
    assert [p.doc_id for p in collection.passages] == [str(i) for i in range(24)]
    counts = {subset: len(frame) for subset, frame in collection.queries.items()}
    assert counts == {"train": 20, "dl19": 5, "dl20": 6}
    ids = [qid for frame in collection.queries.values() for qid in frame["query_id"]]
    assert ids == [str(i) for i in range(1000, 1031)]  # unique across subsets
    for subset, frame in collection.qrels.items():
        assert list(frame.columns) == ["query_id", "doc_id", "relevance"]
        # Every query is judged against all passages of its target's topic.
        per_query = frame.groupby("query_id").size()
        assert per_query.to_dict() == dict.fromkeys(collection.queries[subset]["query_id"], 6)


def test_default_sizes(default_collection: demo.DemoCollection) -> None:
    assert len(default_collection.passages) == 40 * 8 * 8
    counts = {subset: len(frame) for subset, frame in default_collection.queries.items()}
    assert counts == {"train": 2000, "dl19": 43, "dl20": 54}
    assert {s: len(f) for s, f in default_collection.qrels.items()} == {
        "train": 2000 * 64,
        "dl19": 43 * 64,
        "dl20": 54 * 64,
    }


def test_passages_hold_their_concepts_and_topic() -> None:
    derived = derive(SMALL)
    low, high = SMALL.passage_words
    for passage in derived.passages:
        tokens = passage.text.split()
        # fillers + 1..3 x primary + secondary + 1..2 topic words
        assert low + 3 <= len(tokens) <= high + 6
        primary = derived.concepts[passage.primary]
        secondary = derived.concepts[passage.secondary]
        assert primary.topic == secondary.topic == passage.topic
        assert passage.primary != passage.secondary
        assert 1 <= tokens.count(primary.word) <= 3
        assert set(derived.topic_words[passage.topic]) & set(tokens)


def test_word_factory_runs_out() -> None:
    # 14 consonants x 5 vowels = 70 syllables: at most 4,900 two-syllable words.
    with pytest.raises(ValueError, match="ran out of unique 2-syllable words"):
        demo.generate_collection(DemoSettings(filler_words=5000))


# --------------------------------------------------------------------------- qrels


@pytest.mark.parametrize("settings", [SMALL, DemoSettings()], ids=["small", "default"])
def test_qrels_follow_the_query_concepts(settings: DemoSettings) -> None:
    """Each query names its target concept first (word or variant), maybe a secondary one;
    the target's passages are graded 3 (or 2 when they lack the named secondary), passages
    mentioning the target as secondary 1, the rest of the topic 0."""
    collection = demo.generate_collection(settings)
    derived = derive(settings)
    by_form = {}
    for index, concept in enumerate(derived.concepts):
        by_form[concept.word] = index
        by_form[concept.variant] = index
    passages = {p.doc_id: p for p in collection.passages}
    topic_of_word = {w: t for t, pair in enumerate(derived.topic_words) for w in pair}

    for subset, topics in collection.queries.items():
        qrels = collection.qrels[subset]
        assert qrels["relevance"].between(0, 3).all()
        grouped = dict(list(qrels.groupby("query_id", sort=False)))
        for query_id, text in zip(topics["query_id"], topics["text"], strict=True):
            tokens = text.split()
            assert tokens[0] in QUESTION_WORDS
            mentioned = [by_form[t] for t in tokens[1:] if t in by_form]
            topic_tokens = [t for t in tokens[1:] if t in topic_of_word]
            assert len(tokens) == 1 + len(mentioned) + len(topic_tokens)
            assert len(mentioned) in (1, 2) and len(topic_tokens) == 1
            target = mentioned[0]
            secondary = mentioned[1] if len(mentioned) == 2 else None
            assert topic_of_word[topic_tokens[0]] == derived.concepts[target].topic

            group = grouped[query_id]
            grades = dict(zip(group["doc_id"], group["relevance"], strict=True))
            assert {passages[d].topic for d in grades} == {derived.concepts[target].topic}
            for doc_id, grade in grades.items():
                passage = passages[doc_id]
                if passage.primary == target:
                    perfect = secondary is None or passage.secondary == secondary
                    assert grade == (3 if perfect else 2)
                elif passage.secondary == target:
                    assert grade == 1
                else:
                    assert grade == 0
            # The named secondary comes from one of the target's passages, so every query
            # has a perfect answer, and all the target's passages are at least grade 2.
            assert 3 in grades.values()
            assert sum(g >= 2 for g in grades.values()) == settings.passages_per_concept


# --------------------------------------------------------------------------- learnability


def test_variants_never_occur_in_passages(
    default_collection: demo.DemoCollection, default_derived: Derived
) -> None:
    tokens = passage_tokens(default_collection)
    concepts = default_derived.concepts
    assert len(concepts) == 40 * 8
    assert all(concept.word in tokens for concept in concepts)
    assert not [c.variant for c in concepts if c.variant in tokens]
    derived = [c for c in concepts if c.variant.startswith(c.word)]
    synonyms = [c for c in concepts if not c.variant.startswith(c.word)]
    assert all(c.variant[len(c.word) :] in demo.DERIVATION_SUFFIXES for c in derived)
    # synonym_fraction = 0.25 of 320 concepts
    assert 0.15 < len(synonyms) / len(concepts) < 0.35


def test_variants_do_not_match_after_stemming(
    default_collection: demo.DemoCollection, default_derived: Derived
) -> None:
    """BM25 (PISA, Porter2) cannot match a variant: its stem is no passage term's stem."""
    pisa = pytest.importorskip("pyterrier_pisa")
    stems: set[str] = set()
    for passage in default_collection.passages:
        stems.update(pisa.tokenize(passage.text, "porter2"))
    clashes = [
        c.variant
        for c in default_derived.concepts
        if set(pisa.tokenize(c.variant, "porter2")) & stems
    ]
    assert clashes == []


def test_queries_mostly_use_variants(
    default_collection: demo.DemoCollection, default_derived: Derived
) -> None:
    words = {c.word for c in default_derived.concepts}
    variants = {c.variant for c in default_derived.concepts}
    texts = default_collection.queries["train"]["text"]
    mentions = [t for text in texts for t in text.split() if t in words | variants]
    assert len(mentions) > 600  # one or two per query
    share = sum(t in variants for t in mentions) / len(mentions)
    assert 0.6 < share < 0.8  # 1 - literal_probability = 0.7
    # About 0.7 * 1.5 concept mentions of ~3.5 tokens per query never occur in passages.
    tokens = passage_tokens(default_collection)
    query_tokens = [t for text in texts for t in text.split()]
    unseen = sum(t not in tokens for t in query_tokens) / len(query_tokens)
    assert 0.2 < unseen < 0.4


def test_without_literals_only_question_and_topic_words_match() -> None:
    settings = DemoSettings(**{**SMALL.__dict__, "literal_probability": 0.0})
    collection = demo.generate_collection(settings)
    derived = derive(settings)
    topic_words = {w for pair in derived.topic_words for w in pair}
    tokens = passage_tokens(collection)
    for frame in collection.queries.values():
        for text in frame["text"]:
            matching = {t for t in text.split() if t in tokens}
            assert matching <= set(QUESTION_WORDS) | topic_words
            assert matching & topic_words


# --------------------------------------------------------------------------- writing


def test_write_and_read_back(tmp_path: Path) -> None:
    collection = demo.generate_collection(SMALL)
    out = tmp_path / "demo"
    name = f"demo-{uuid.uuid4().hex[:12]}"
    demo.write_collection(collection, out / "manifest.json", name)

    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "docs.tsv",
        "manifest.json",
        "qrels-dl19.txt",
        "qrels-dl20.txt",
        "qrels-train.txt",
        "queries-dl19.tsv",
        "queries-dl20.tsv",
        "queries-train.tsv",
    ]
    manifest = Manifest.read(out / "manifest.json")
    assert manifest.name == name
    assert manifest.root == out
    assert manifest.docs == "docs.tsv"
    assert manifest.subsets == {
        subset: {"queries": f"queries-{subset}.tsv", "qrels": f"qrels-{subset}.txt"}
        for subset in ("train", "dl19", "dl20")
    }
    lines = (out / "docs.tsv").read_text(encoding="utf-8").splitlines()
    assert lines == [f"{p.doc_id}\t{p.text}" for p in collection.passages]
    for subset in ("train", "dl19", "dl20"):
        topics = trec_io.read_topics(out / f"queries-{subset}.tsv")
        pd.testing.assert_frame_equal(topics, collection.queries[subset].astype(str))
        qrels = trec_io.read_qrels(out / f"qrels-{subset}.txt")
        pd.testing.assert_frame_equal(qrels, collection.qrels[subset])

    # ... and through ir_datasets, as every pipeline stage reads it.
    dataset = datasets.load(f"{name}/dl20", [out / "manifest.json"])
    assert [d.doc_id for d in dataset.docs_iter()] == [p.doc_id for p in collection.passages]
    pd.testing.assert_frame_equal(datasets.topics(dataset), collection.queries["dl20"].astype(str))
    pd.testing.assert_frame_equal(datasets.qrels(dataset), collection.qrels["dl20"])


# --------------------------------------------------------------------------- settings


def test_settings_from_config() -> None:
    config = {"seed": 3, "topics": 5, "passage_words": [4, 9], "eval_queries": {"dl19": 2}}
    settings = demo.collection_settings(config)
    assert settings.passage_words == (4, 9)
    assert isinstance(settings.passage_words, tuple)
    assert settings.seed == 3 and settings.topics == 5
    assert settings.eval_queries == {"dl19": 2}
    assert settings.train_queries == DemoSettings().train_queries  # defaults kept
    assert config["passage_words"] == [4, 9]  # the config itself is left alone
    assert demo.collection_settings({}) == DemoSettings()


def test_settings_from_config_rejects_unknown_keys() -> None:
    with pytest.raises(TypeError, match="passages_per_topic"):
        demo.collection_settings({"passages_per_topic": 3})
