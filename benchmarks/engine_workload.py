"""The seeded workload of issue 6, shared by every side of the engine benchmark.

A random ELECTRA backbone (small-shaped on CPU, base-shaped on GPU) with a BERT-style
vocabulary of made-up whole words, so that one word is one token in every library;
queries of ~6 words and passages whose lengths follow a gamma(4, 14) distribution in
words; one query list of 100 passages per training step with rank targets (RankNet).

This file is imported by the benchmark and by the helper scripts that run inside the
lightning-ir and sentence-transformers virtualenvs, so it needs only the standard
library, numpy and (for :func:`build`) torch + transformers.
"""

from __future__ import annotations

import json
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@dataclass(frozen=True)
class Backbone:
    """ELECTRA dimensions (defaults: ELECTRA-small's discriminator)."""

    vocab_size: int = 30522
    embedding_size: int = 128
    hidden_size: int = 256
    num_hidden_layers: int = 12
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 512


#: ELECTRA-base's dimensions (google/electra-base-discriminator), for the GPU mode.
BASE = Backbone(embedding_size=768, hidden_size=768, num_attention_heads=12, intermediate_size=3072)


@dataclass(frozen=True)
class Workload:
    """What is generated; the defaults are issue 6's CPU workload."""

    seed: int = 0
    backbone: Backbone = field(default_factory=Backbone)
    rerank_queries: int = 10
    train_queries: int = 6  # one training step each at queries_per_step 1
    queries_per_step: int = 1
    passages_per_query: int = 100
    query_words: tuple[int, int] = (4, 8)  # uniform, inclusive: mean 6
    passage_gamma: tuple[float, float] | None = (4.0, 14.0)  # shape, scale in words: mean 56
    passage_words: int = 256  # fixed length, where passage_gamma is None
    query_length: int = 32
    doc_length: int = 256


def gpu_workload(train_steps: int = 10) -> Workload:
    """ELECTRA-base, queries of 32 and passages of 256 tokens (the paper's limits), 4
    queries x 100 passages per training step."""
    return Workload(
        backbone=BASE,
        rerank_queries=20,
        train_queries=4 * train_steps,
        queries_per_step=4,
        query_words=(32, 32),
        passage_gamma=None,
    )


def dry_run_workload() -> Workload:
    """The GPU workload's shape in miniature, to exercise the GPU mode on a CPU."""
    tiny = Backbone(
        vocab_size=1000,
        embedding_size=32,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    return Workload(
        backbone=tiny,
        rerank_queries=2,
        train_queries=4,
        queries_per_step=2,
        passages_per_query=10,
        query_words=(32, 32),
        passage_gamma=None,
    )


def forward_flops(backbone: Backbone, length: int) -> int:
    """Multiply-adds x 2 of one sequence of ``length`` tokens through the whole encoder
    and the scoring head: the embedding projection, per layer the Q/K/V/O projections,
    Q.K^T and attention x V, and the two feed-forward matrices. Embedding look-ups,
    softmax, layer norms and activations are not counted."""
    h, n = backbone.hidden_size, length
    flops = 2 * n * backbone.embedding_size * h if backbone.embedding_size != h else 0
    per_layer = 2 * n * 4 * h * h + 2 * 2 * n * n * h + 2 * 2 * n * h * backbone.intermediate_size
    return flops + backbone.num_hidden_layers * per_layer + 2 * h


def word(index: int) -> str:
    """The ``index``-th made-up word: letters only, so BERT's pre-tokeniser keeps it whole."""
    letters = []
    index += 1
    while index:
        index, digit = divmod(index - 1, 26)
        letters.append(string.ascii_lowercase[digit])
    return "w" + "".join(reversed(letters))


def vocabulary(size: int) -> list[str]:
    return [*SPECIAL_TOKENS, *(word(i) for i in range(size - len(SPECIAL_TOKENS)))]


def texts(workload: Workload) -> dict:
    """Queries, passages and per-query lists (rank targets: 100 for rank 1, 99, ...)."""
    rng = np.random.default_rng(workload.seed)
    words = workload.backbone.vocab_size - len(SPECIAL_TOKENS)
    low, high = workload.query_words

    def text(n: int) -> str:
        return " ".join(word(int(i)) for i in rng.integers(0, words, n))

    lists = []
    for q in range(workload.rerank_queries + workload.train_queries):
        if workload.passage_gamma is None:
            lengths = np.full(workload.passages_per_query, workload.passage_words)
        else:
            shape, scale = workload.passage_gamma
            lengths = np.rint(rng.gamma(shape, scale, workload.passages_per_query))
            lengths = np.maximum(1, lengths)
        lists.append(
            {
                "query_id": f"q{q}",
                "query": text(int(rng.integers(low, high + 1))),
                "doc_ids": [f"q{q}-d{i}" for i in range(len(lengths))],
                "docs": [text(int(n)) for n in lengths],
                "targets": [float(len(lengths) - i) for i in range(len(lengths))],
            }
        )
    return {
        "rerank": lists[: workload.rerank_queries],
        "train": lists[workload.rerank_queries :],
    }


def build(workload: Workload, out_dir: Path) -> Path:
    """Write ``backbone/`` (random weights, ``vocab.txt``) and ``workload.json``."""
    import torch
    from transformers import ElectraConfig, ElectraModel

    backbone_dir = out_dir / "backbone"
    backbone_dir.mkdir(parents=True, exist_ok=True)
    b = workload.backbone
    (backbone_dir / "vocab.txt").write_text("\n".join(vocabulary(b.vocab_size)) + "\n")
    # A plain BERT tokenizer config that transformers 4 and 5 both read the same way.
    (backbone_dir / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "ElectraTokenizer",
                "do_lower_case": True,
                "model_max_length": b.max_position_embeddings,
                "unk_token": "[UNK]",
                "pad_token": "[PAD]",
                "cls_token": "[CLS]",
                "sep_token": "[SEP]",
                "mask_token": "[MASK]",
            },
            indent=2,
        )
    )
    config = ElectraConfig(
        vocab_size=b.vocab_size,
        embedding_size=b.embedding_size,
        hidden_size=b.hidden_size,
        num_hidden_layers=b.num_hidden_layers,
        num_attention_heads=b.num_attention_heads,
        intermediate_size=b.intermediate_size,
        max_position_embeddings=b.max_position_embeddings,
        pad_token_id=0,
    )
    torch.manual_seed(workload.seed)
    ElectraModel(config).save_pretrained(str(backbone_dir))
    (out_dir / "workload.json").write_text(
        json.dumps({"settings": asdict(workload), **texts(workload)})
    )
    return out_dir


def load(out_dir: Path) -> dict:
    return json.loads((out_dir / "workload.json").read_text())


def settings_of(data: dict) -> Workload:
    """The :class:`Workload` a loaded ``workload.json`` was built from."""
    values = dict(data["settings"])
    values["backbone"] = Backbone(**values["backbone"])
    for key in ("query_words", "passage_gamma"):
        if values[key] is not None:
            values[key] = tuple(values[key])
    return Workload(**values)


def pair_flops(data: dict, task: str) -> int:
    """Forward FLOPs of every pair of ``task`` (``rerank`` or ``train``), on its real,
    unpadded length: ``[CLS] q [SEP] p [SEP]`` with words = tokens, as truncated."""
    workload = settings_of(data)
    total = 0
    for item in data[task]:
        query = min(len(item["query"].split()), workload.query_length)
        for doc in item["docs"]:
            length = 3 + query + min(len(doc.split()), workload.doc_length)
            total += forward_flops(workload.backbone, length)
    return total
