"""The monoELECTRA cross-encoder: a score is a linear layer on the ``[CLS]`` vector of
``[CLS] query [SEP] passage [SEP]``, with query and passage truncated separately (paper: 32
and 256 tokens). Its checkpoints: :mod:`rank_distillm.model.checkpoints`; its input
batches: :mod:`rank_distillm.model.pair_encoder`."""

from __future__ import annotations

import torch
from torch import nn
from transformers import ElectraModel

from rank_distillm.model import lean_encoder as encoder


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
        of :mod:`rank_distillm.model.lean_encoder` runs; training keeps transformers' forward."""
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
