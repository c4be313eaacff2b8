"""A tiny randomly initialised ELECTRA with a WordPiece tokenizer trained on a corpus.

The demo's stand-in for ``google/electra-base-discriminator``: saved with
``save_pretrained`` like a hub backbone, so training starts from it through exactly the
code path that starts from the hub model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)
from transformers import ElectraConfig, ElectraModel, PreTrainedTokenizerFast

from rank_distillm.model.pair_encoder import MODEL_INPUT_NAMES

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@dataclass(frozen=True)
class TinyElectraSettings:
    """Config key ``backbone.tiny``: the architecture of the demo's backbone."""

    vocab_size: int = 2000
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 256
    max_position_embeddings: int = 128
    # Dropout slows a tiny model trained from scratch far more than it regularises it.
    dropout: float = 0.0
    # ELECTRA's 0.02 is scaled for hidden size 768: at the demo's widths the attention
    # logits start near zero (uniform attention), and training then stalls at chance
    # loss for a seed-dependent number of steps before it learns to match tokens.
    initializer_range: float = 0.02
    seed: int = 42


def wordpiece_vocabulary(texts: Iterable[str], vocab_size: int) -> dict[str, int]:
    """A deterministic WordPiece vocabulary learned from ``texts``.

    Every character seen (word-initial and as a ``##`` continuation), then whole words
    by frequency (ties alphabetical) up to ``vocab_size``. The ``tokenizers`` trainer is
    not used because its vocabulary changes from process to process
    (huggingface/tokenizers#1794), which would make the demo's numbers drift.
    """
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        normalized = normalizer.normalize_str(text)
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalized))
    characters = sorted({char for word in counts for char in word})
    tokens = [*SPECIAL_TOKENS, *characters, *(f"##{char}" for char in characters)]
    by_frequency = sorted(counts, key=lambda word: (-counts[word], word))
    tokens += [word for word in by_frequency if len(word) > 1][: max(vocab_size - len(tokens), 0)]
    return {token: index for index, token in enumerate(tokens)}


def wordpiece_tokenizer(vocabulary: dict[str, int]) -> PreTrainedTokenizerFast:
    """An uncased BERT-style tokenizer over ``vocabulary``."""
    tokenizer = Tokenizer(models.WordPiece(vocabulary, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    cls, sep = vocabulary["[CLS]"], vocabulary["[SEP]"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=list(MODEL_INPUT_NAMES),
    )


def build_tiny_electra(texts: Iterable[str], settings: TinyElectraSettings, out_dir: Path) -> int:
    """Train the tokenizer, initialise the backbone, save both; return the parameter count."""
    tokenizer = wordpiece_tokenizer(wordpiece_vocabulary(texts, settings.vocab_size))
    config = ElectraConfig(
        vocab_size=len(tokenizer),
        embedding_size=settings.hidden_size,
        hidden_size=settings.hidden_size,
        num_hidden_layers=settings.num_hidden_layers,
        num_attention_heads=settings.num_attention_heads,
        intermediate_size=settings.intermediate_size,
        max_position_embeddings=settings.max_position_embeddings,
        hidden_dropout_prob=settings.dropout,
        attention_probs_dropout_prob=settings.dropout,
        initializer_range=settings.initializer_range,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(settings.seed)
    backbone = ElectraModel(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    backbone.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return sum(parameter.numel() for parameter in backbone.parameters())
