"""A tiny randomly initialised encoder of any family with a WordPiece tokenizer trained on
a corpus, framed as that family frames a pair.

The demo's stand-in for ``google/electra-base-discriminator`` (and, for the other families
of :mod:`rank_distillm.model.families`, for their hub models): saved with
``save_pretrained`` like a hub backbone, so training starts from it through exactly the
code path that starts from the hub model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
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
from transformers import (
    AutoConfig,
    AutoModel,
    ElectraConfig,
    PretrainedConfig,
    PreTrainedTokenizerFast,
)

from rank_distillm.model.pair_encoder import MODEL_INPUT_NAMES

#: BERT's special tokens (pad, unk, cls, sep, mask), used by ELECTRA, BERT, DeBERTa and
#: ModernBERT; RoBERTa's in the same roles (its padding id, 1, offsets its positions).
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ROBERTA_SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>", "<mask>"]
ROBERTA_ORDER = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's ids 0-4


@dataclass(frozen=True)
class TinySettings:
    """Config key ``backbone.tiny``: the family and architecture of a tiny backbone."""

    family: str = "electra"
    vocab_size: int = 2000
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 256
    max_position_embeddings: int = 128  # positions a sequence may use
    # Dropout slows a tiny model trained from scratch far more than it regularises it.
    dropout: float = 0.0
    # ELECTRA's 0.02 is scaled for hidden size 768: at the demo's widths the attention
    # logits start near zero (uniform attention), and training then stalls at chance
    # loss for a seed-dependent number of steps before it learns to match tokens.
    initializer_range: float = 0.02
    seed: int = 42


def _roberta_like(family: str) -> bool:
    return family in ("roberta", "xlm-roberta")


def wordpiece_vocabulary(
    texts: Iterable[str], vocab_size: int, specials: Sequence[str] = tuple(SPECIAL_TOKENS)
) -> dict[str, int]:
    """A deterministic WordPiece vocabulary learned from ``texts``.

    ``specials`` first, then every character seen (word-initial and as a ``##``
    continuation), then whole words by frequency (ties alphabetical) up to
    ``vocab_size``. The ``tokenizers`` trainer is not used because its vocabulary changes
    from process to process (huggingface/tokenizers#1794), which would make the demo's
    numbers drift.
    """
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        normalized = normalizer.normalize_str(text)
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalized))
    characters = sorted({char for word in counts for char in word})
    tokens = [*specials, *characters, *(f"##{char}" for char in characters)]
    by_frequency = sorted(counts, key=lambda word: (-counts[word], word))
    tokens += [word for word in by_frequency if len(word) > 1][: max(vocab_size - len(tokens), 0)]
    return {token: index for index, token in enumerate(tokens)}


def wordpiece_tokenizer(
    vocabulary: dict[str, int], family: str = "electra"
) -> PreTrainedTokenizerFast:
    """An uncased tokenizer over ``vocabulary`` that frames a pair as ``family`` does:
    ``[CLS] a [SEP] b [SEP]`` with segment ids (ELECTRA, BERT, DeBERTa), the same without
    segments (ModernBERT), or ``<s> a </s></s> b </s>`` (RoBERTa, XLM-RoBERTa)."""
    pad, unk, cls, sep, mask = ROBERTA_SPECIAL_TOKENS if _roberta_like(family) else SPECIAL_TOKENS
    tokenizer = Tokenizer(models.WordPiece(vocabulary, unk_token=unk))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    if _roberta_like(family):
        tokenizer.post_processor = processors.RobertaProcessing(
            (sep, vocabulary[sep]), (cls, vocabulary[cls]), trim_offsets=False
        )
    else:
        segment = "" if family == "modernbert" else ":1"
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}",
            pair=f"{cls} $A {sep} $B{segment} {sep}{segment}",
            special_tokens=[(cls, vocabulary[cls]), (sep, vocabulary[sep])],
        )
    roles = {"bos_token": cls, "eos_token": sep} if _roberta_like(family) else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token=unk,
        pad_token=pad,
        cls_token=cls,
        sep_token=sep,
        mask_token=mask,
        model_input_names=list(MODEL_INPUT_NAMES),
        **roles,
    )


def backbone_config(settings: TinySettings, tokenizer: PreTrainedTokenizerFast) -> PretrainedConfig:
    """The family's transformers config at the tiny sizes."""
    family, dropout = settings.family, settings.dropout
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=settings.hidden_size,
        num_hidden_layers=settings.num_hidden_layers,
        num_attention_heads=settings.num_attention_heads,
        intermediate_size=settings.intermediate_size,
        initializer_range=settings.initializer_range,
        pad_token_id=tokenizer.pad_token_id,
    )
    positions = settings.max_position_embeddings
    dropouts = dict(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    if family == "electra":
        return ElectraConfig(
            embedding_size=settings.hidden_size,
            max_position_embeddings=positions,
            **dropouts,
            **common,
        )
    if family == "modernbert":
        special = dict(cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id)
        return AutoConfig.for_model(
            family,
            max_position_embeddings=positions,
            attention_dropout=dropout,
            mlp_dropout=dropout,
            embedding_dropout=dropout,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
            **special,
            **common,
        )
    if family == "deberta-v2":  # the v3 layout: relative positions only, no segments
        return AutoConfig.for_model(
            family,
            max_position_embeddings=positions,
            type_vocab_size=0,
            position_biased_input=False,
            relative_attention=True,
            pos_att_type=["p2c", "c2p"],
            norm_rel_ebd="layer_norm",
            share_att_key=True,
            **dropouts,
            **common,
        )
    if _roberta_like(family):  # position ids start after the padding id
        return AutoConfig.for_model(
            family,
            max_position_embeddings=positions + tokenizer.pad_token_id + 1,
            type_vocab_size=1,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
            **dropouts,
            **common,
        )
    return AutoConfig.for_model(family, max_position_embeddings=positions, **dropouts, **common)


def build_tiny(texts: Iterable[str], settings: TinySettings, out_dir: Path) -> int:
    """Train the tokenizer, initialise the backbone, save both; return the parameter count."""
    specials = ROBERTA_ORDER if _roberta_like(settings.family) else SPECIAL_TOKENS
    vocabulary = wordpiece_vocabulary(texts, settings.vocab_size, specials)
    tokenizer = wordpiece_tokenizer(vocabulary, settings.family)
    config = backbone_config(settings, tokenizer)
    torch.manual_seed(settings.seed)
    backbone = AutoModel.from_config(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    backbone.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return sum(parameter.numel() for parameter in backbone.parameters())
