"""Cross-encoder checkpoints in lightning-ir's layout, for every family of
:mod:`rank_distillm.model.families`.

Checkpoints are what ``webis/monoelectra-base`` publishes: the backbone's ``config.json``
plus lightning-ir's keys (``backbone_model_type`` names the family, ``pooling_strategy``
the pooling), a ``model.safetensors`` with the backbone's keys (no ``electra.`` prefix)
and ``linear.*``, and the tokenizer files, so they move both ways.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedTokenizerBase

from rank_distillm.model import families
from rank_distillm.model.cross_encoder import CrossEncoder, check_pooling
from rank_distillm.model.pair_encoder import MODEL_INPUT_NAMES, PairFormat

LOGGER = logging.getLogger(__name__)

#: Keys lightning-ir adds to the backbone's config; it recognises its checkpoints by
#: ``backbone_model_type``.
LIGHTNING_IR_KEYS = (
    "model_type",
    "architectures",
    "backbone_model_type",
    "query_length",
    "doc_length",
    "pooling_strategy",
    "linear_bias",
    "scoring_strategy",
)


def resolve(name_or_path: str) -> Path:
    """A local folder as is, else a Hugging Face hub snapshot (downloaded once, cached)."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    LOGGER.info("fetching %s from the Hugging Face hub", name_or_path)
    return Path(snapshot_download(name_or_path))


def load_tokenizer(path: Path, config: PretrainedConfig | None = None) -> PreTrainedTokenizerBase:
    """The tokenizer saved in ``path``. A lightning-ir checkpoint's ``config.json`` says
    ``model_type: mono``, which transformers does not know: given the backbone's
    ``config``, transformers does not read that file (nor warns about it)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), config=config)
    tokenizer.model_input_names = list(MODEL_INPUT_NAMES)
    return tokenizer


def load_cross_encoder(
    name_or_path: str,
    query_length: int | None = None,
    doc_length: int | None = None,
    linear_bias: bool = True,
    seed: int = 42,
    pooling: str = "first",
) -> tuple[CrossEncoder, PreTrainedTokenizerBase]:
    """Load a lightning-ir mono checkpoint, or start a new head on a plain encoder.

    ``webis/monoelectra-base`` and our own checkpoints carry ``backbone_model_type``;
    ``google/electra-base-discriminator`` or a freshly built backbone do not and get a
    newly initialised (seeded) linear head with ``pooling``. Lengths given here override
    the checkpoint's (:func:`check_lengths` tells whether they fit the backbone).
    """
    path = resolve(name_or_path)
    config = json.loads((path / "config.json").read_text())
    where = f"{path / 'config.json'}"
    families.check_family(families.backbone_type(config), where)
    if "backbone_model_type" not in config:
        backbone = AutoModel.from_pretrained(str(path))
        torch.manual_seed(seed)
        model = CrossEncoder(backbone, query_length or 32, doc_length or 256, linear_bias, pooling)
        tokenizer = load_tokenizer(path)
    else:
        model, tokenizer = _load_checkpoint(path, config, query_length, doc_length)
    return model, tokenizer


def check_lengths(
    model: CrossEncoder, tokenizer: PreTrainedTokenizerBase, name_or_path: str
) -> None:
    """The model's lengths plus the pair's special tokens must fit the backbone's
    positions, or every batch of long texts would fail deep inside the forward pass."""
    config = model.backbone.config.to_dict()
    capacity = families.position_capacity(config)
    special = PairFormat.of(tokenizer).special_tokens
    needed = model.query_length + model.doc_length + special
    if capacity is not None and needed > capacity:
        raise ValueError(
            f"{name_or_path}: query_length {model.query_length} + doc_length "
            f"{model.doc_length} + {special} special tokens = {needed} positions, but this "
            f"{config['model_type']} backbone holds {capacity} (max_position_embeddings "
            f"{config['max_position_embeddings']}); shorten query_length/doc_length"
        )


def _load_checkpoint(
    path: Path, config: dict, query_length: int | None, doc_length: int | None
) -> tuple[CrossEncoder, PreTrainedTokenizerBase]:
    """A lightning-ir mono checkpoint: its backbone, head, lengths and pooling."""
    where = path / "config.json"
    pooling = check_pooling(config.get("pooling_strategy", "first"), f"{where}")
    scoring = config.get("scoring_strategy", "rank")
    if scoring != "rank":
        raise ValueError(
            f"{where}: scoring_strategy {scoring!r} is not implemented (implemented: rank, "
            "the linear head's output as the score)"
        )
    backbone_config = AutoConfig.for_model(
        config["backbone_model_type"],
        **{key: value for key, value in config.items() if key not in LIGHTNING_IR_KEYS},
    )
    tokenizer = load_tokenizer(path, backbone_config)
    model = CrossEncoder(
        AutoModel.from_config(backbone_config),
        query_length or config.get("query_length", 32),
        doc_length or config.get("doc_length", 256),
        config.get("linear_bias", True),
        pooling,
    )
    state = load_file(str(path / "model.safetensors"))
    head = {
        key.removeprefix("linear."): state.pop(key)
        for key in list(state)
        if key.startswith("linear.")
    }
    missing, unexpected = model.backbone.load_state_dict(state, strict=False)
    # Position ids are a buffer some versions save and others do not.
    missing = [key for key in missing if not key.endswith("position_ids")]
    unexpected = [key for key in unexpected if not key.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(
            f"{path / 'model.safetensors'}: keys do not match a "
            f"{config['backbone_model_type']} backbone "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    model.linear.load_state_dict(head)
    return model, tokenizer


def save_cross_encoder(
    model: CrossEncoder, tokenizer: PreTrainedTokenizerBase, out_dir: Path
) -> None:
    """Write the lightning-ir layout: config.json, model.safetensors, tokenizer files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    config = model.backbone.config.to_dict()
    for key in ("architectures", "transformers_version", "dtype", "torch_dtype"):
        config.pop(key, None)
    config.update(
        model_type="mono",
        architectures=[f"Mono{type(model.backbone).__name__}"],
        backbone_model_type=model.backbone.config.model_type,
        query_length=model.query_length,
        doc_length=model.doc_length,
        pooling_strategy=model.pooling,
        linear_bias=model.linear.bias is not None,
        scoring_strategy="rank",
    )
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    state = {
        key: value.detach().contiguous().cpu() for key, value in model.backbone.state_dict().items()
    }
    state.update(
        {
            f"linear.{key}": value.detach().contiguous().cpu()
            for key, value in model.linear.state_dict().items()
        }
    )
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(str(out_dir))
