"""Cross-encoder checkpoints in lightning-ir's layout.

Checkpoints are what ``webis/monoelectra-base`` publishes: an ELECTRA ``config.json`` plus
lightning-ir's keys, a ``model.safetensors`` with the backbone's keys (no ``electra.``
prefix) and ``linear.*``, and the tokenizer files, so they move both ways.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import ElectraConfig, ElectraModel, PreTrainedTokenizerBase

from rank_distillm.model.cross_encoder import CrossEncoder
from rank_distillm.model.pair_encoder import MODEL_INPUT_NAMES

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


def load_tokenizer(path: Path, config: ElectraConfig | None = None) -> PreTrainedTokenizerBase:
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
) -> tuple[CrossEncoder, PreTrainedTokenizerBase]:
    """Load a lightning-ir mono checkpoint, or start a new head on a plain ELECTRA.

    ``webis/monoelectra-base`` and our own checkpoints carry ``backbone_model_type``;
    ``google/electra-base-discriminator`` or a freshly built backbone do not and get a
    newly initialised (seeded) linear head. Lengths given here override the checkpoint's.
    """
    path = resolve(name_or_path)
    config = json.loads((path / "config.json").read_text())
    if "backbone_model_type" not in config:
        backbone = ElectraModel.from_pretrained(str(path))
        torch.manual_seed(seed)
        model = CrossEncoder(backbone, query_length or 32, doc_length or 256, linear_bias)
        return model, load_tokenizer(path)

    if config["backbone_model_type"] != "electra":
        raise ValueError(
            f"{path / 'config.json'}: backbone_model_type is "
            f"{config['backbone_model_type']!r}; only 'electra' checkpoints are supported"
        )
    backbone_config = ElectraConfig(
        **{key: value for key, value in config.items() if key not in LIGHTNING_IR_KEYS}
    )
    tokenizer = load_tokenizer(path, backbone_config)
    model = CrossEncoder(
        ElectraModel(backbone_config),
        query_length or config.get("query_length", 32),
        doc_length or config.get("doc_length", 256),
        config.get("linear_bias", True),
    )
    state = load_file(str(path / "model.safetensors"))
    head = {
        key.removeprefix("linear."): state.pop(key)
        for key in list(state)
        if key.startswith("linear.")
    }
    missing, unexpected = model.backbone.load_state_dict(state, strict=False)
    # Position ids are a buffer some ELECTRA versions save and others do not.
    missing = [key for key in missing if not key.endswith("position_ids")]
    unexpected = [key for key in unexpected if not key.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(
            f"{path / 'model.safetensors'}: keys do not match an ELECTRA backbone "
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
        architectures=["MonoElectraModel"],
        backbone_model_type="electra",
        query_length=model.query_length,
        doc_length=model.doc_length,
        pooling_strategy="first",
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
