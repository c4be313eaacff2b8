"""The encoder families a student can start from, and what each means for a pair.

A family is a transformers ``model_type``. Its pair format (which special tokens frame
query and passage, and whether a segment id marks the passage) comes from its tokenizer
(:class:`rank_distillm.model.pair_encoder.PairFormat`); this module knows what can be
said from a ``config.json`` alone, before any job runs: how many special tokens a pair
adds and how many positions the backbone holds. Plain dicts in, no torch or
transformers import, so the config check stays quick.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Special tokens a pair adds, by family: ``[CLS] q [SEP] p [SEP]`` (ELECTRA, BERT,
#: DeBERTa-v2/v3, ModernBERT) and ``<s> q </s></s> p </s>`` (RoBERTa, XLM-RoBERTa).
SPECIAL_TOKENS: dict[str, int] = {
    "electra": 3,
    "bert": 3,
    "roberta": 4,
    "xlm-roberta": 4,
    "deberta-v2": 3,
    "modernbert": 3,
}
FAMILIES = tuple(SPECIAL_TOKENS)
#: How each family is written in prose, and the pair as it reads it.
NAMES = {
    "electra": "ELECTRA",
    "bert": "BERT",
    "roberta": "RoBERTa",
    "xlm-roberta": "XLM-RoBERTa",
    "deberta-v2": "DeBERTa-v2/v3",
    "modernbert": "ModernBERT",
}
PAIR_TEXT = {
    family: "<s> query </s></s> passage </s>"
    if SPECIAL_TOKENS[family] == 4
    else "[CLS] query [SEP] passage [SEP]"
    for family in FAMILIES
}


def check_family(model_type: str, where: str) -> str:
    """``model_type`` if it is a supported family, else a ``ValueError`` naming ``where``."""
    if model_type not in SPECIAL_TOKENS:
        raise ValueError(
            f"{where}: model_type {model_type!r} is not a supported encoder family "
            f"(supported: {', '.join(FAMILIES)})"
        )
    return model_type


def backbone_type(config: Mapping[str, Any]) -> str:
    """The backbone's ``model_type`` in a backbone's or a lightning-ir checkpoint's config."""
    return str(config.get("backbone_model_type") or config.get("model_type"))


def position_capacity(config: Mapping[str, Any]) -> int | None:
    """How many tokens one sequence may hold, from a backbone's config (``None``: no
    absolute limit, as for DeBERTa-v3's relative positions). RoBERTa's position ids
    start after its padding id, so ``pad_token_id + 1`` of its positions are never used."""
    model_type = backbone_type(config)
    positions = int(config.get("max_position_embeddings", 512))
    if model_type in ("roberta", "xlm-roberta"):
        return positions - int(config.get("pad_token_id", 1)) - 1
    if model_type == "deberta-v2" and not config.get("position_biased_input", True):
        return None
    if config.get("position_embedding_type", "absolute") != "absolute":
        return None  # BERT/ELECTRA with relative position embeddings
    return positions


def length_problem(
    model_type: str, capacity: int | None, query_length: int, doc_length: int
) -> str | None:
    """Why ``query_length + doc_length`` plus the family's special tokens do not fit a
    backbone of ``capacity`` positions, or ``None`` when they do."""
    special = SPECIAL_TOKENS[model_type]
    needed = query_length + doc_length + special
    if capacity is None or needed <= capacity:
        return None
    return (
        f"query_length {query_length} + doc_length {doc_length} + {special} special tokens "
        f"of {model_type} = {needed} positions, but the backbone holds {capacity}"
    )


def read_config(name_or_path: str) -> dict[str, Any] | None:
    """The ``config.json`` of a local folder or of a hub model already in the local
    cache; ``None`` when neither is at hand (nothing is downloaded: a config check must
    not need the network)."""
    local = Path(name_or_path) / "config.json"
    if local.is_file():
        return json.loads(local.read_text())
    if Path(name_or_path).exists():
        return None
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name_or_path, "config.json")
    except ValueError:  # not a valid hub id
        return None
    return json.loads(Path(cached).read_text()) if isinstance(cached, str) else None
