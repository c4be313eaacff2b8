"""The monoELECTRA cross-encoder and its checkpoints in lightning-ir's layout.

A score is a linear layer on the ``[CLS]`` vector of ``[CLS] query [SEP] passage [SEP]``,
with query and passage truncated separately (paper: 32 and 256 tokens). Checkpoints
are what ``webis/monoelectra-base`` publishes: an ELECTRA ``config.json`` plus
lightning-ir's keys, a ``model.safetensors`` with the backbone's keys (no ``electra.``
prefix) and ``linear.*``, and the tokenizer files, so they move both ways.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import ElectraConfig, ElectraModel, PreTrainedTokenizerBase

from rank_distillm import encoder

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
#: What a BERT-style tokenizer needs to hand ELECTRA its segment ids (transformers 5
#: otherwise drops ``token_type_ids`` and every token silently gets segment 0).
MODEL_INPUT_NAMES = ["input_ids", "token_type_ids", "attention_mask"]


class CrossEncoder(nn.Module):
    """ELECTRA backbone + linear scoring head on the first (``[CLS]``) token."""

    def __init__(
        self,
        backbone: ElectraModel,
        query_length: int = 32,
        doc_length: int = 256,
        linear_bias: bool = True,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.linear = nn.Linear(backbone.config.hidden_size, 1, bias=linear_bias)
        self.query_length = query_length
        self.doc_length = doc_length

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
    ) -> torch.Tensor:
        """One score per pair. Without autograd (re-ranking) the lean ``[CLS]``-only pass
        of :mod:`rank_distillm.encoder` runs; training keeps transformers' forward."""
        if not torch.is_grad_enabled() and encoder.supports(self.backbone):
            cls = encoder.cls_vectors(self.backbone, input_ids, attention_mask, token_type_ids)
        else:
            cls = self.backbone(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state[:, 0]
        return self.linear(cls).squeeze(-1)

    def freeze_position_embeddings(self) -> None:
        """The paper trained with frozen position embeddings."""
        self.backbone.embeddings.position_embeddings.weight.requires_grad_(False)


#: Characters read per token allowed before a text is cut (English WordPiece: ~5).
CHARS_PER_TOKEN = 10


@dataclass(frozen=True)
class PairEncoder:
    """Builds ``[CLS] q [SEP] p [SEP]`` batches with separate truncation lengths."""

    tokenizer: PreTrainedTokenizerBase
    query_length: int
    doc_length: int

    def token_ids(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        """The first ``max_length`` token ids of each text, without special tokens.

        A long document is not tokenised whole: it is cut at the last space before
        ``CHARS_PER_TOKEN * max_length`` characters, which leaves every word before the
        cut as the full text would tokenise it. If the cut text has fewer than
        ``max_length`` tokens (very long words or whitespace runs), the whole text is
        tokenised instead, so the ids always equal full tokenisation's.
        """
        if not texts:
            return []
        limit = CHARS_PER_TOKEN * max_length
        heads = [_head(text, limit) for text in texts]
        ids = self._encode(heads, max_length)
        again = [
            i
            for i, (text, head) in enumerate(zip(texts, heads, strict=True))
            if len(head) < len(text) and len(ids[i]) < max_length
        ]
        if again:
            for i, row in zip(
                again, self._encode([texts[i] for i in again], max_length), strict=True
            ):
                ids[i] = row
        return ids

    def _encode(self, texts: list[str], max_length: int) -> list[list[int]]:
        return self.tokenizer(
            texts, add_special_tokens=False, truncation=True, max_length=max_length
        )["input_ids"]

    def query_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self.token_ids(texts, self.query_length)

    def doc_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self.token_ids(texts, self.doc_length)

    def collate(
        self, query_ids: Sequence[list[int]], doc_ids: Sequence[list[int]]
    ) -> dict[str, torch.Tensor]:
        """Pair pre-tokenised queries and passages into one padded batch."""
        cls, sep, pad = (
            self.tokenizer.cls_token_id,
            self.tokenizer.sep_token_id,
            self.tokenizer.pad_token_id,
        )
        sequences, segments = [], []
        for query, doc in zip(query_ids, doc_ids, strict=True):
            first = [cls, *query, sep]
            sequences.append(first + [*doc, sep])
            segments.append([0] * len(first) + [1] * (len(doc) + 1))
        width = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), width), pad, dtype=torch.long)
        token_type_ids = torch.zeros_like(input_ids)
        attention_mask = torch.zeros_like(input_ids)
        for row, (sequence, segment) in enumerate(zip(sequences, segments, strict=True)):
            input_ids[row, : len(sequence)] = torch.tensor(sequence)
            token_type_ids[row, : len(segment)] = torch.tensor(segment)
            attention_mask[row, : len(sequence)] = 1
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
        }


def _head(text: str, limit: int) -> str:
    """``text`` up to its last space within ``limit`` characters (``text`` itself if short
    enough or without such a space). Every tokenizer's pre-tokeniser splits at a space."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit + 1)
    return text[:cut] if cut > 0 else text


def resolve(name_or_path: str) -> Path:
    """A local folder as is, else a Hugging Face hub snapshot (downloaded once, cached)."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    LOGGER.info("fetching %s from the Hugging Face hub", name_or_path)
    return Path(snapshot_download(name_or_path))


def load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
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
    tokenizer = load_tokenizer(path)
    if "backbone_model_type" not in config:
        backbone = ElectraModel.from_pretrained(str(path))
        torch.manual_seed(seed)
        model = CrossEncoder(backbone, query_length or 32, doc_length or 256, linear_bias)
        return model, tokenizer

    if config["backbone_model_type"] != "electra":
        raise ValueError(
            f"{path / 'config.json'}: backbone_model_type is "
            f"{config['backbone_model_type']!r}; only 'electra' checkpoints are supported"
        )
    backbone_config = ElectraConfig(
        **{key: value for key, value in config.items() if key not in LIGHTNING_IR_KEYS}
    )
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
