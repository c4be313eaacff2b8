"""Ranking / distillation losses (definitions follow lightning-ir, as used by Rank-DistiLLM).

Every loss has the signature ``loss(scores, targets, mask=None) -> Tensor`` where ``scores`` and
``targets`` are float tensors of shape ``(queries, passages)`` and ``mask`` is a bool tensor of the
same shape (True = real entry, False = padding; ``None`` = all real). Targets: higher is better.
Padded entries never influence the value nor receive gradient. Computation is done in float32
and a float32 scalar is returned.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from rank_distillm.config.hints import did_you_mean

__all__ = [
    "LOSSES",
    "adr_mse",
    "approx_ndcg",
    "get_loss",
    "infonce",
    "kl_divergence",
    "listnet",
    "margin_mse",
    "ranknet",
]

_NEG = torch.finfo(torch.float32).min  # finite "-inf": exp(_NEG - x) == 0 and 0 * _NEG == 0


def _prepare(scores: Tensor, targets: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """Validate shapes, cast to float32, replace padded values by 0 (cuts their gradient)."""
    if scores.ndim != 2:
        raise ValueError(f"scores must have shape (queries, passages), got {tuple(scores.shape)}")
    if targets.shape != scores.shape:
        raise ValueError(
            f"targets shape {tuple(targets.shape)} != scores shape {tuple(scores.shape)}"
        )
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    elif mask.shape != scores.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != scores shape {tuple(scores.shape)}")
    mask = mask.to(device=scores.device, dtype=torch.bool)
    s = torch.where(mask, scores.float(), 0.0)
    t = torch.where(mask, targets.to(device=scores.device, dtype=torch.float32), 0.0)
    return s, t, mask


def _query_mean(per_query: Tensor, valid: Tensor) -> Tensor:
    """Mean of ``per_query`` over ``valid`` queries (0, still connected to the graph, if none)."""
    total = torch.where(valid, per_query, 0.0).sum()
    return total / valid.sum().clamp(min=1)


def _pair_mask(t: Tensor, mask: Tensor) -> Tensor:
    """(q, i, j) mask of valid pairs with t_i > t_j (ties and padding excluded)."""
    both = mask[:, :, None] & mask[:, None, :]
    return both & (t[:, :, None] > t[:, None, :])


def _approx_ranks(s: Tensor, mask: Tensor, temperature: float) -> Tensor:
    """r_i = 1 + sum_{j != i, j valid} sigmoid((s_j - s_i) / T)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    n = s.shape[1]
    sig = torch.sigmoid((s[:, None, :] - s[:, :, None]) / temperature)  # [q, i, j]
    keep = mask[:, None, :] & ~torch.eye(n, dtype=torch.bool, device=s.device)
    return 1.0 + torch.where(keep, sig, 0.0).sum(-1)


def infonce(scores: Tensor, targets: Tensor, mask: Tensor | None = None) -> Tensor:
    """Cross-entropy of the softmax over scores w.r.t. argmax(targets), mean over queries."""
    s, t, mask = _prepare(scores, targets, mask)
    logits = s.masked_fill(~mask, _NEG)
    positive = t.masked_fill(~mask, float("-inf")).argmax(-1)
    per_query = F.cross_entropy(logits, positive, reduction="none")
    return _query_mean(per_query, mask.any(-1))


def ranknet(scores: Tensor, targets: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean softplus(-(s_i - s_j)) over all pairs with t_i > t_j, pooled over the whole batch."""
    s, t, mask = _prepare(scores, targets, mask)
    pairs = _pair_mask(t, mask)
    losses = F.softplus(-(s[:, :, None] - s[:, None, :]))
    return torch.where(pairs, losses, 0.0).sum() / pairs.sum().clamp(min=1)


def margin_mse(scores: Tensor, targets: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean of ((s_i - s_j) - (t_i - t_j))^2 over pairs with t_i > t_j, pooled over the batch."""
    s, t, mask = _prepare(scores, targets, mask)
    pairs = _pair_mask(t, mask)
    sq = ((s[:, :, None] - s[:, None, :]) - (t[:, :, None] - t[:, None, :])) ** 2
    return torch.where(pairs, sq, 0.0).sum() / pairs.sum().clamp(min=1)


def _soft_cross_terms(s: Tensor, t: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Masked softmax(t), log_softmax(t), log_softmax(s) (padded probabilities are exactly 0)."""
    log_p_t = t.masked_fill(~mask, _NEG).log_softmax(-1)
    log_p_s = s.masked_fill(~mask, _NEG).log_softmax(-1)
    return log_p_t.exp(), log_p_t, log_p_s


def kl_divergence(scores: Tensor, targets: Tensor, mask: Tensor | None = None) -> Tensor:
    """KL(softmax(t) || softmax(s)) per query, mean over queries."""
    s, t, mask = _prepare(scores, targets, mask)
    p_t, log_p_t, log_p_s = _soft_cross_terms(s, t, mask)
    terms = torch.where(mask, p_t * (log_p_t - log_p_s), 0.0)
    return _query_mean(terms.sum(-1), mask.any(-1))


def listnet(scores: Tensor, targets: Tensor, mask: Tensor | None = None) -> Tensor:
    """-sum softmax(t)_i * log_softmax(s)_i per query, mean over queries."""
    s, t, mask = _prepare(scores, targets, mask)
    p_t, _, log_p_s = _soft_cross_terms(s, t, mask)
    terms = torch.where(mask, -p_t * log_p_s, 0.0)
    return _query_mean(terms.sum(-1), mask.any(-1))


def approx_ndcg(
    scores: Tensor, targets: Tensor, mask: Tensor | None = None, temperature: float = 1.0
) -> Tensor:
    """Mean over queries of 1 - ApproxDCG / IDCG (gains 2^t - 1, t clamped at 0).

    Queries with IDCG = 0 (no positive target) are excluded from the mean.
    """
    s, t, mask = _prepare(scores, targets, mask)
    ranks = _approx_ranks(s, mask, temperature)
    gains = torch.where(mask, torch.exp2(t.clamp(min=0)) - 1, 0.0)
    dcg = torch.where(mask, gains / torch.log2(1 + ranks), 0.0).sum(-1)
    ideal_gains = gains.sort(-1, descending=True).values
    discounts = torch.log2(torch.arange(2, s.shape[1] + 2, device=s.device, dtype=torch.float32))
    idcg = (ideal_gains / discounts).sum(-1)
    valid = idcg > 0
    per_query = 1 - dcg / torch.where(valid, idcg, 1.0)
    return _query_mean(per_query, valid)


def adr_mse(
    scores: Tensor, targets: Tensor, mask: Tensor | None = None, temperature: float = 1.0
) -> Tensor:
    """ApproxRankMSE: mean of w_i * (approx_rank_i - true_rank_i)^2, w_i = 1/log2(true_rank_i + 1).

    True ranks: rank 1 = highest target, ties broken by position (stable). The mean is pooled
    over all valid entries of the batch (as lightning-ir's ``loss.mean()``), not per query.
    """
    s, t, mask = _prepare(scores, targets, mask)
    approx = _approx_ranks(s, mask, temperature)
    n = s.shape[1]
    valid_j = mask[:, None, :]
    t_i, t_j = t[:, :, None], t[:, None, :]
    earlier = torch.ones(n, n, dtype=torch.bool, device=s.device).tril(-1)  # j < i
    beats = valid_j & ((t_j > t_i) | ((t_j == t_i) & earlier))  # [q, i, j]
    true = 1.0 + beats.sum(-1).float()
    terms = (approx - true) ** 2 / torch.log2(true + 1)
    return torch.where(mask, terms, 0.0).sum() / mask.sum().clamp(min=1)


LossFn = Callable[..., Tensor]

LOSSES: dict[str, LossFn] = {
    "infonce": infonce,
    "ranknet": ranknet,
    "kl_divergence": kl_divergence,
    "margin_mse": margin_mse,
    "approx_ndcg": approx_ndcg,
    "adr_mse": adr_mse,
    "listnet": listnet,
}


def get_loss(name: str) -> LossFn:
    """Look up a loss by name; raises ValueError listing the known names."""
    try:
        return LOSSES[name]
    except KeyError:
        hint = did_you_mean(str(name), sorted(LOSSES), "choose one of")
        raise ValueError(f"unknown loss {name!r}{hint}") from None
