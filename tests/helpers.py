"""Shared builders for the model, rerank and train tests: a tiny ELECTRA backbone and a
synthetic training table, both small enough to train on a laptop CPU in seconds; and the
config files merged and validated as Snakemake does."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from rank_distillm.data.texts import MappingTexts  # noqa: E402
from rank_distillm.model.tiny_backbone import TinySettings, build_tiny  # noqa: E402
from rank_distillm.training.tables import TrainingTable  # noqa: E402

#: A training table with its texts joined, as tests like to write them.
TEXT_TABLE_COLUMNS = ["query_id", "query", "doc_id", "text", "rank", "target"]

TINY = TinySettings(
    vocab_size=200,
    hidden_size=16,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=64,
)

#: One topic word per synthetic query.
TOPICS = [
    "apple",
    "banana",
    "cherry",
    "grape",
    "lemon",
    "mango",
    "olive",
    "peach",
    "pear",
    "plum",
    "melon",
    "kiwi",
    "lime",
    "fig",
    "date",
    "berry",
]

EXTRA_TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "a cat sat on the mat near the door",
    "what is the capital city of france",
    "paris is the capital and largest city of france",
    "rivers flow into the sea after heavy rain",
    "neural networks learn to rank passages for search queries",
]


def query_text(index: int) -> str:
    return f"tell me about {TOPICS[index]}"


def relevant_text(index: int) -> str:
    word = TOPICS[index]
    return f"{word} {word} facts and notes"


def negative_text(index: int, k: int) -> str:
    """A passage about another query's topic: it shares no word with query ``index``'s
    topic word."""
    return f"{TOPICS[(index + k) % len(TOPICS)]} facts and notes"


def training_table(n_queries: int = 16, negatives: int = 3, graded: bool = False) -> pd.DataFrame:
    """``n_queries`` queries, each with its relevant passage at rank 1 (target 1) and
    ``negatives`` non-relevant ones at ranks 2.. (target 0). ``graded`` sets the targets
    to ``depth - rank + 1`` instead, as a teacher's ranking would."""
    depth = negatives + 1
    rows = []
    for i in range(n_queries):
        passages = [relevant_text(i)] + [negative_text(i, k) for k in range(1, negatives + 1)]
        for rank, text in enumerate(passages, start=1):
            target = float(depth - rank + 1) if graded else float(rank == 1)
            rows.append((f"q{i}", query_text(i), f"d{i}-{rank}", text, rank, target))
    return pd.DataFrame(rows, columns=TEXT_TABLE_COLUMNS)


def split_texts(frame: pd.DataFrame) -> tuple[TrainingTable, MappingTexts]:
    """A text-joined frame as the trainer takes it: an ids-only table and a text lookup."""
    table = TrainingTable.from_frame(frame[["query_id", "doc_id", "rank", "target"]])
    texts = MappingTexts(
        dict(zip(frame["query_id"], frame["query"], strict=True)),
        dict(zip(frame["doc_id"], frame["text"], strict=True)),
    )
    return table, texts


def corpus() -> list[str]:
    table = training_table()
    return [*table["query"].unique(), *table["text"].unique(), *EXTRA_TEXTS]


def build_backbone(out_dir: Path) -> Path:
    """A tiny ELECTRA backbone (tokenizer + weights) saved like a hub backbone."""
    build_tiny(corpus(), TINY, out_dir)
    return out_dir


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: tiny models gain nothing from more, and on a busy
    two-core machine a second thread makes each step spin-wait (10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_config(paths: Sequence[str | Path], schema: str | Path) -> dict[str, Any]:
    """Merge YAML files as ``snakemake --configfile a b`` does, validate, fill defaults."""
    import yaml
    from snakemake.utils import update_config, validate

    config: dict[str, Any] = {}
    for path in paths:
        update_config(config, yaml.safe_load(Path(path).read_text()) or {})
    validate(config, str(schema))
    return config
