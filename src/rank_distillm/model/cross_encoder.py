"""The cross-encoder: a score is a linear layer on the pooled vector of a query-passage
pair (monoELECTRA: the ``[CLS]`` vector of ``[CLS] query [SEP] passage [SEP]``), with query
and passage truncated separately (paper: 32 and 256 tokens). Its backbone is any encoder of
:mod:`rank_distillm.model.families`; its checkpoints: :mod:`rank_distillm.model.checkpoints`;
its input batches: :mod:`rank_distillm.model.pair_encoder`."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel

from rank_distillm.model import lean_encoder as encoder

#: lightning-ir's ``pooling_strategy`` values implemented here.
POOLINGS = ("first", "mean")


def check_pooling(pooling: str, where: str) -> str:
    if pooling not in POOLINGS:
        raise ValueError(
            f"{where}: pooling_strategy {pooling!r} is not implemented "
            f"(implemented: {', '.join(POOLINGS)})"
        )
    return pooling


def uses_segment_ids(backbone: PreTrainedModel) -> bool:
    """Whether the backbone embeds segment ids: BERT and ELECTRA do; RoBERTa (one
    segment), DeBERTa-v3 (none) and ModernBERT (no such input) do not."""
    return getattr(backbone.config, "type_vocab_size", 0) >= 2


class CrossEncoder(nn.Module):
    """An encoder backbone + linear scoring head on the first token's (or the mean) vector."""

    def __init__(
        self,
        backbone: PreTrainedModel,
        query_length: int = 32,
        doc_length: int = 256,
        linear_bias: bool = True,
        pooling: str = "first",
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.linear = nn.Linear(backbone.config.hidden_size, 1, bias=linear_bias)
        self.query_length = query_length
        self.doc_length = doc_length
        self.pooling = check_pooling(pooling, "CrossEncoder")
        self.segment_ids = uses_segment_ids(backbone)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
    ) -> torch.Tensor:
        """One score per pair. Without autograd (re-ranking) the lean first-token-only pass
        of :mod:`rank_distillm.model.lean_encoder` runs where it supports the backbone;
        training and other backbones keep transformers' forward."""
        if (
            not torch.is_grad_enabled()
            and self.pooling == "first"
            and encoder.supports(self.backbone)
        ):
            pooled = encoder.cls_vectors(self.backbone, input_ids, attention_mask, token_type_ids)
        else:
            segments = {"token_type_ids": token_type_ids} if self.segment_ids else {}
            states = self.backbone(
                input_ids=input_ids, attention_mask=attention_mask, **segments
            ).last_hidden_state
            pooled = _pool(states, attention_mask, self.pooling)
        return self.linear(pooled).squeeze(-1)

    def freeze_position_embeddings(self) -> None:
        """The paper trained with frozen position embeddings; families with relative or
        rotary positions (DeBERTa-v3, ModernBERT) have none to freeze."""
        positions = getattr(self.backbone.embeddings, "position_embeddings", None)
        if isinstance(positions, nn.Embedding):
            positions.weight.requires_grad_(False)


def _pool(states: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """The first token's vector, or the mean of the unpadded tokens' vectors."""
    if pooling == "first":
        return states[:, 0]
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(dim=1) / mask.sum(dim=1)
