"""Hand-computed checks for rank_distillm.training.losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rank_distillm.training.losses import (
    LOSSES,
    adr_mse,
    approx_ndcg,
    get_loss,
    infonce,
    kl_divergence,
    listnet,
    margin_mse,
    ranknet,
)

ALL_NAMES = [
    "adr_mse",
    "approx_ndcg",
    "infonce",
    "kl_divergence",
    "listnet",
    "margin_mse",
    "ranknet",
]


def sp(x: float) -> float:
    """softplus"""
    return math.log1p(math.exp(x))


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def t(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def close(value: torch.Tensor, expected: float, tol: float = 1e-6) -> bool:
    return value.dtype == torch.float32 and value.ndim == 0 and abs(value.item() - expected) < tol


# Two queries: A has 3 passages, B has 2 (+1 padding slot).
MASK = torch.tensor([[True, True, True], [True, True, False]])


# --- RankNet ---------------------------------------------------------------------------------


def test_ranknet_single_query() -> None:
    # pairs (0,1), (0,2), (1,2) with score differences 1, 2, 1
    expected = (sp(-1) + sp(-2) + sp(-1)) / 3
    assert close(ranknet(t([[2.0, 1.0, 0.0]]), t([[3, 1, 0]])), expected)


def test_ranknet_ignores_ties() -> None:
    # t0 == t1 -> no pair; (0,2): s0-s2 = -2; (1,2): s1-s2 = -1
    expected = (sp(2) + sp(1)) / 2
    assert close(ranknet(t([[0.0, 1.0, 2.0]]), t([[1, 1, 0]])), expected)


def test_ranknet_pools_over_pairs_of_the_batch() -> None:
    scores = t([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]])
    targets = t([[2, 1, 0], [1, 0, 0]])
    # A: (0,1) diff -1, (0,2) diff -2, (1,2) diff -1; B: (0,1) diff +1
    a = [sp(1), sp(2), sp(1)]
    b = [sp(-1)]
    pooled = sum(a + b) / 4
    per_query = (sum(a) / 3 + sum(b) / 1) / 2
    assert abs(pooled - per_query) > 1e-2
    assert close(ranknet(scores, targets, MASK), pooled)


def test_ranknet_without_pairs_is_zero_with_grad() -> None:
    scores = t([[0.3, -1.0]]).requires_grad_()
    loss = ranknet(scores, t([[1, 1]]))
    assert loss.item() == 0.0 and loss.grad_fn is not None
    loss.backward()
    assert torch.equal(scores.grad, torch.zeros_like(scores))


# --- Margin MSE ------------------------------------------------------------------------------


def test_margin_mse_hand_and_ties() -> None:
    # (0,1): ds=2, dt=2 -> 0; (0,2): ds=1, dt=2 -> 1; (1,2) tie ignored (would add (-1-0)^2)
    assert close(margin_mse(t([[2.0, 0.0, 1.0]]), t([[3, 1, 1]])), (0 + 1) / 2)


def test_margin_mse_pools_over_pairs() -> None:
    scores = t([[2.0, 0.0, 1.0], [0.0, 0.5, 0.0]])
    targets = t([[3, 1, 1], [1, 0, 0]])
    # A: 0 and 1 (2 pairs); B: ds=-0.5, dt=1 -> 2.25 (1 pair)
    assert close(margin_mse(scores, targets, MASK), (0 + 1 + 2.25) / 3)


# --- InfoNCE ---------------------------------------------------------------------------------


def test_infonce_hand_and_padding() -> None:
    scores = t([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]])
    targets = t([[0, 1, 0], [0, 1, 0]])
    a = -math.log(math.exp(2) / (math.exp(1) + math.exp(2) + math.exp(0)))
    b = -math.log(math.exp(0) / (math.exp(3) + math.exp(0)))  # padded slot not in softmax
    assert close(infonce(scores[:1], targets[:1]), a)
    assert close(infonce(scores, targets, MASK), (a + b) / 2)


def test_infonce_matches_torch_cross_entropy() -> None:
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(4, 6, generator=g)
    targets = torch.rand(4, 6, generator=g)
    expected = F.cross_entropy(scores, targets.argmax(-1))
    assert torch.allclose(infonce(scores, targets), expected)


# --- KL / ListNet ----------------------------------------------------------------------------


def test_kl_and_listnet_hand() -> None:
    scores = t([[0.0, math.log(2)]])  # p_s = [1/3, 2/3]
    targets = t([[0.0, 0.0]])  # p_t = [1/2, 1/2]
    kl = 0.5 * math.log(0.5 / (1 / 3)) + 0.5 * math.log(0.5 / (2 / 3))
    ce = -(0.5 * math.log(1 / 3) + 0.5 * math.log(2 / 3))
    assert close(kl_divergence(scores, targets), kl)
    assert close(listnet(scores, targets), ce)
    # ListNet = KL + entropy(p_t)
    assert abs(ce - (kl + math.log(2))) < 1e-12


def test_kl_identical_distributions_is_zero() -> None:
    scores = t([[1.0, 2.0, 3.0], [0.5, -0.5, 9.0]])
    assert abs(kl_divergence(scores, scores + 5.0).item()) < 1e-6  # softmax is shift-invariant
    assert abs(kl_divergence(scores, scores, MASK).item()) < 1e-6


def test_kl_and_listnet_mean_over_queries() -> None:
    scores = t([[0.0, math.log(2), 0.0], [0.0, 0.0, 0.0]])
    targets = t([[0.0, 0.0, 0.0], [math.log(3), 0.0, 0.0]])
    # A: p_s = [1/4, 2/4, 1/4], p_t uniform thirds; B: p_s = [1/2, 1/2], p_t = [3/4, 1/4]
    kl_a = sum(1 / 3 * math.log((1 / 3) / q) for q in (0.25, 0.5, 0.25))
    kl_b = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    ce_a = -sum(1 / 3 * math.log(q) for q in (0.25, 0.5, 0.25))
    ce_b = -(0.75 * math.log(0.5) + 0.25 * math.log(0.5))
    assert close(kl_divergence(scores, targets, MASK), (kl_a + kl_b) / 2)
    assert close(listnet(scores, targets, MASK), (ce_a + ce_b) / 2)


# --- ApproxNDCG ------------------------------------------------------------------------------


def test_approx_ndcg_hand() -> None:
    # r_0 = 1 + sig(0 - 1), r_1 = 1 + sig(1 - 0); gains [2^0-1, 2^1-1] = [0, 1]; IDCG = 1/log2(2)
    expected = 1 - (1 / math.log2(1 + 1 + sig(1))) / 1.0
    assert close(approx_ndcg(t([[1.0, 0.0]]), t([[0, 1]])), expected)
    # temperature 2: sig(0.5) instead of sig(1); negative target clamped -> gain 0
    expected_t2 = 1 - 1 / math.log2(2 + sig(0.5))
    assert close(approx_ndcg(t([[1.0, 0.0]]), t([[-3, 1]]), temperature=2.0), expected_t2)


def test_approx_ndcg_perfect_ranking_low_temperature() -> None:
    scores = t([[3.0, 2.0, 1.0, 0.0]])
    targets = t([[3, 2, 1, 0]])
    assert approx_ndcg(scores, targets, temperature=0.01).item() < 1e-6
    assert approx_ndcg(scores, targets, temperature=1.0).item() > 1e-3  # soft ranks blur


def test_approx_ndcg_excludes_queries_without_gain() -> None:
    scores = t([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    targets = t([[0, 1, 0], [0, 0, 0]])  # query B has IDCG = 0
    mask = torch.tensor([[True, True, False], [True, True, False]])
    expected = 1 - 1 / math.log2(2 + sig(1))
    assert close(approx_ndcg(scores, targets, mask), expected)
    s = scores.clone().requires_grad_()
    loss = approx_ndcg(s, torch.zeros(2, 3))
    assert loss.item() == 0.0 and loss.grad_fn is not None


# --- ApproxRankMSE ---------------------------------------------------------------------------


def test_adr_mse_hand() -> None:
    # approx ranks: 1 + sig(1), 1 + sig(-1); true ranks 1, 2; weights 1/log2(2), 1/log2(3)
    # 1 - sig(-1) = sig(1), so both squared errors are sig(1)^2
    expected = (sig(1) ** 2 / 1.0 + sig(1) ** 2 / math.log2(3)) / 2
    assert close(adr_mse(t([[0.0, 1.0]]), t([[1, 0]])), expected)


def test_adr_mse_ties_broken_by_position() -> None:
    # tied targets -> true ranks [1, 2]; equal scores -> approx ranks [1.5, 1.5]
    expected = (0.25 / 1.0 + 0.25 / math.log2(3)) / 2
    assert close(adr_mse(t([[0.0, 0.0]]), t([[1, 1]])), expected)
    # the earlier position is rank 1: scoring it first is (almost) perfect, the reverse is not
    assert adr_mse(t([[5.0, 0.0]]), t([[1, 1]]), temperature=0.01).item() < 1e-6
    assert adr_mse(t([[0.0, 5.0]]), t([[1, 1]]), temperature=0.01).item() > 0.5


def test_adr_mse_perfect_ranking_near_zero() -> None:
    scores = t([[3.0, 2.0, 1.0, 0.0]])
    assert adr_mse(scores, t([[4, 3, 2, 1]]), temperature=0.01).item() < 1e-6


def test_adr_mse_pools_over_entries() -> None:
    scores = t([[0.0, 1.0, 0.0], [7.0, 0.0, 0.0]])
    targets = t([[1, 0, 0], [1, 0, 0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    a = [sig(1) ** 2, sig(1) ** 2 / math.log2(3)]  # as in test_adr_mse_hand
    b = [0.0]  # single passage: approx rank 1 = true rank 1
    pooled = sum(a + b) / 3
    assert abs(pooled - (sum(a) / 2 + sum(b)) / 2) > 1e-2
    assert close(adr_mse(scores, targets, mask), pooled)


def test_approx_losses_reject_bad_temperature() -> None:
    with pytest.raises(ValueError, match="temperature"):
        adr_mse(t([[0.0, 1.0]]), t([[1, 0]]), temperature=0.0)


# --- Shared properties -----------------------------------------------------------------------


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(3, 5, generator=g)
    targets = torch.randint(0, 4, (3, 5), generator=g).float()
    targets[:, 0] = 5.0  # every query has a positive / a gain
    lengths = torch.tensor([5, 3, 2])
    mask = torch.arange(5)[None, :] < lengths[:, None]
    return scores, targets, mask


@pytest.mark.parametrize("name", ALL_NAMES)
def test_padding_has_no_influence(name: str) -> None:
    loss_fn = get_loss(name)
    scores, targets, mask = _batch()
    results = []
    for pad_score, pad_target in [(0.0, 0.0), (1e30, -1e30), (float("inf"), float("nan"))]:
        s = scores.masked_fill(~mask, pad_score).requires_grad_()
        loss = loss_fn(s, targets.masked_fill(~mask, pad_target), mask)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
        assert torch.equal(s.grad[~mask], torch.zeros(int((~mask).sum())))
        results.append((loss.detach(), s.grad[mask]))
    for loss, grad in results[1:]:
        assert torch.allclose(loss, results[0][0]) and torch.allclose(grad, results[0][1])


@pytest.mark.parametrize("name", ALL_NAMES)
def test_no_mask_equals_full_mask_and_bfloat16(name: str) -> None:
    loss_fn = get_loss(name)
    scores, targets, _ = _batch()
    full = torch.ones_like(scores, dtype=torch.bool)
    assert torch.allclose(loss_fn(scores, targets), loss_fn(scores, targets, full))
    s16, t16 = scores.bfloat16(), targets.bfloat16()
    out = loss_fn(s16, t16)
    assert out.dtype == torch.float32
    assert torch.allclose(out, loss_fn(s16.float(), t16.float()))


def test_registry_and_get_loss() -> None:
    assert sorted(LOSSES) == ALL_NAMES
    assert get_loss("ranknet") is ranknet and get_loss("listnet") is listnet
    with pytest.raises(ValueError) as err:
        get_loss("rankent")
    msg = str(err.value)
    assert "unknown loss 'rankent'" in msg and "did you mean 'ranknet'" in msg
    assert msg.endswith("choose one of: " + ", ".join(ALL_NAMES))


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="targets shape"):
        ranknet(t([[0.0, 1.0]]), t([[1, 0, 0]]))
