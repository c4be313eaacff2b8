"""Scoring a training batch in length-sorted sub-batches, for one listwise loss.

A query list of 100 passages padded to its longest passage wastes most of the work:
on issue 6's workload (passage lengths gamma(4, 14) words) the padded batch is 2.5x
the real tokens. Sorting the pairs by length and running the model on chunks, each cut
to its own longest pair, leaves ~5% padding. The chunks' scores are put back in the
batch's order before the loss, so the loss sees exactly the scores of one padded pass
(to float tolerance), and one backward pass covers every chunk.
"""

from __future__ import annotations

import torch
from torch import nn

#: Pairs per chunk: small enough that neighbours in length order pad little, large
#: enough that each chunk's matrix products stay efficient.
PAIRS_PER_CHUNK = 16


def score_by_length(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    token_type_ids: torch.Tensor,
    pairs_per_chunk: int = PAIRS_PER_CHUNK,
) -> torch.Tensor:
    """``model``'s score of each row of a padded pair batch, computed chunk by chunk in
    order of length; returned in the rows' order (differentiable)."""
    if pairs_per_chunk < 1:
        raise ValueError(f"pairs_per_chunk must be >= 1, got {pairs_per_chunk}")
    lengths = attention_mask.sum(dim=1)
    order = torch.argsort(lengths, stable=True)
    pieces = []
    for start in range(0, len(order), pairs_per_chunk):
        rows = order[start : start + pairs_per_chunk]
        width = int(lengths[rows].max())
        pieces.append(
            model(
                input_ids=input_ids[rows, :width],
                attention_mask=attention_mask[rows, :width],
                token_type_ids=token_type_ids[rows, :width],
            )
        )
    sorted_scores = torch.cat(pieces)
    return sorted_scores[torch.argsort(order)]


def score_query_lists(
    model: nn.Module, batch: dict[str, torch.Tensor], pairs_per_chunk: int = PAIRS_PER_CHUNK
) -> torch.Tensor:
    """Scores of a (queries x passages) training batch as the loss expects them: shape
    ``batch["mask"].shape``, padded entries 0. ``batch`` holds the flat pair tensors
    (one row per real pair, in mask order) and ``mask``, as ``train`` builds them."""
    flat = score_by_length(
        model,
        batch["input_ids"],
        batch["attention_mask"],
        batch["token_type_ids"],
        pairs_per_chunk,
    )
    scores = torch.zeros(batch["mask"].shape, dtype=flat.dtype, device=flat.device)
    return scores.masked_scatter(batch["mask"], flat)
