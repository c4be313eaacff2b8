"""How the losses of micro-batches (gradient accumulation) and processes (data-parallel
training) add up to the loss of the whole optimizer step.

Every loss in :mod:`rank_distillm.training.losses` is a sum of terms divided by a count: pooled
losses (RankNet, margin MSE) by the batch's ordered pairs, ADR-MSE by its passages, the
others by its queries. Averaging micro-batch losses would weight a term by the size of
the micro-batch it landed in; weighting each micro-batch's loss by its count over the
whole step's count gives every term of the global batch the same weight, exactly as one
pass over the whole step would.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor


def _ordered_pairs(targets: Tensor, mask: Tensor) -> Tensor:
    both = mask[:, :, None] & mask[:, None, :]
    return (both & (targets[:, :, None] > targets[:, None, :])).sum()


def _passages(targets: Tensor, mask: Tensor) -> Tensor:
    return mask.sum()


def _queries(targets: Tensor, mask: Tensor) -> Tensor:
    return mask.any(dim=-1).sum()


def _queries_with_gain(targets: Tensor, mask: Tensor) -> Tensor:
    """ApproxNDCG leaves out queries without a positive target (their IDCG is 0)."""
    return (mask & (targets > 0)).any(dim=-1).sum()


#: What each loss divides its sum of terms by (see rank_distillm.training.losses).
DENOMINATORS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "ranknet": _ordered_pairs,
    "margin_mse": _ordered_pairs,
    "adr_mse": _passages,
    "infonce": _queries,
    "kl_divergence": _queries,
    "listnet": _queries,
    "approx_ndcg": _queries_with_gain,
}


def denominator(loss: str, targets: Tensor, mask: Tensor) -> float:
    """The count the loss ``loss`` divides by on a batch with these targets and mask."""
    try:
        count = DENOMINATORS[loss]
    except KeyError:
        raise ValueError(f"no denominator known for loss {loss!r}") from None
    return float(count(targets.float(), mask.bool()))
