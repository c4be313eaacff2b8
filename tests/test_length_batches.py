"""Tests for rank_distillm.training.length_batches: scoring a training batch in length-sorted
chunks gives the loss and the gradients of the single padded pass it replaced."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import random  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from rank_distillm.model.checkpoints import load_cross_encoder  # noqa: E402
from rank_distillm.model.cross_encoder import CrossEncoder  # noqa: E402
from rank_distillm.model.pair_encoder import PairEncoder  # noqa: E402
from rank_distillm.training import losses, sampling  # noqa: E402
from rank_distillm.training.batches import BatchBuilder  # noqa: E402
from rank_distillm.training.length_batches import (  # noqa: E402
    CPU_PAIRS_PER_CHUNK,
    pairs_per_chunk,
    score_sorted,
    sort_by_length,
)
from tests.helpers import EXTRA_TEXTS, split_texts, training_table  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def score_query_lists(
    model: nn.Module, batch: dict[str, torch.Tensor], pairs_per_chunk: int = CPU_PAIRS_PER_CHUNK
) -> torch.Tensor:
    """Scores of a (queries x passages) training batch as the loss expects them: shape
    ``batch["mask"].shape``, padded entries 0. ``batch`` holds the flat pair tensors
    (one row per real pair, in mask order) and ``mask``, on the CPU."""
    return score_sorted(model, sort_by_length(batch, pairs_per_chunk))


def uneven_batch(backbone_dir: Path):
    """Three queries' lists (6, 6 and 4 passages) with passage lengths from 2 to ~30
    tokens, so the padded batch is mostly padding."""
    model, tokenizer = load_cross_encoder(str(backbone_dir), 8, 32, seed=5)
    table = training_table(n_queries=3, negatives=5, graded=True)
    texts = [*EXTRA_TEXTS, "fox", "a b c d e f g h i j k l m n o p q r s t u v w x y z"]
    table["text"] = [texts[i % len(texts)] * (1 + i % 3) for i in range(len(table))]
    table = table[~((table["query_id"] == "q2") & (table["rank"] > 4))]
    ids, texts = split_texts(table)
    builder = BatchBuilder(ids, texts, PairEncoder(tokenizer, 8, 32))
    samples, _ = sampling.draw(sampling.group_queries(ids), "top", 0, 100, random.Random(0))
    return model, builder.batch(samples)


def padded_scores(model: CrossEncoder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The training loop's scoring before length-sorted chunks: one pass over the batch
    padded to its longest pair, scores scattered into the (queries x passages) mask."""
    flat = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        token_type_ids=batch["token_type_ids"],
    )
    scores = torch.zeros(batch["mask"].shape, dtype=flat.dtype, device=flat.device)
    return scores.masked_scatter(batch["mask"], flat)


def loss_and_grads(model, batch, scorer, loss_name: str):
    model.zero_grad()
    loss = losses.get_loss(loss_name)(scorer(model, batch), batch["targets"], batch["mask"])
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


@pytest.mark.parametrize("loss_name", ["ranknet", "infonce", "kl_divergence"])
@pytest.mark.parametrize("pairs_per_chunk", [1, 3, 16])
def test_chunked_scores_give_the_padded_loss_and_gradients(
    backbone_dir: Path, loss_name: str, pairs_per_chunk: int
) -> None:
    model, batch = uneven_batch(backbone_dir)
    lengths = batch["attention_mask"].sum(1)
    assert batch["mask"].shape == (3, 6)
    assert int(batch["mask"].sum()) == 16
    # Padded to the longest pair, a third of the batch would be padding.
    assert lengths.max() * len(lengths) > 1.4 * lengths.sum()
    assert lengths.min() * 4 < lengths.max()
    # In float64 the two computations agree to rounding (1e-12); in float32 the sums
    # over tokens in another order differ by ~1e-4 of a gradient's largest entry.
    model.double().train()
    expected_loss, expected = loss_and_grads(model, batch, padded_scores, loss_name)
    loss, grads = loss_and_grads(
        model,
        batch,
        lambda m, b: score_query_lists(m, b, pairs_per_chunk=pairs_per_chunk),
        loss_name,
    )
    torch.testing.assert_close(loss, expected_loss, rtol=1e-10, atol=1e-12)
    assert set(grads) == set(expected)
    assert any(g.abs().max() > 0 for g in expected.values())
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected[name], rtol=1e-9, atol=1e-12, msg=name)


def test_scores_come_back_in_the_batch_layout(backbone_dir: Path) -> None:
    model, batch = uneven_batch(backbone_dir)
    model.eval()
    with torch.inference_mode():
        padded = padded_scores(model, batch)
        chunked = score_query_lists(model, batch, 4)
    assert chunked.shape == batch["mask"].shape == (3, 6)
    torch.testing.assert_close(chunked, padded, rtol=1e-5, atol=1e-6)
    assert torch.all(chunked[~batch["mask"]] == 0)


def test_sorting_plans_chunks_on_the_cpu(backbone_dir: Path) -> None:
    _, batch = uneven_batch(backbone_dir)
    lengths = batch["attention_mask"].sum(1).tolist()
    ordered = sort_by_length(batch, 5)
    # Rows in order of length (ties keep their order), chunks of 5, 5, 5 and 1 pairs.
    assert ordered["attention_mask"].sum(1).tolist() == sorted(lengths)
    assert ordered["widths"] == [max(sorted(lengths)[i : i + 5]) for i in (0, 5, 10, 15)]
    # gather: each cell's pair in length order; padded cells read the appended zero (16).
    assert ordered["gather"].shape == (3, 6)
    assert ordered["gather"][2, 4:].tolist() == [16, 16]
    flat = torch.arange(16.0)[torch.argsort(batch["attention_mask"].sum(1), stable=True)]
    gathered = torch.cat([flat, torch.zeros(1)])[ordered["gather"]]
    assert gathered[batch["mask"]].tolist() == list(range(16))


def test_chunk_size_must_be_positive(backbone_dir: Path) -> None:
    model, batch = uneven_batch(backbone_dir)
    with pytest.raises(ValueError, match="pairs_per_chunk"):
        score_sorted(model, sort_by_length(batch, 0))


def test_narrower_models_get_larger_chunks_on_a_cpu() -> None:
    """Per-pair work grows with hidden²: hidden 64 gets 16 x (256/64)² = 256 pairs."""
    assert pairs_per_chunk("cpu", 256) == 16
    assert pairs_per_chunk("cpu", 768) == 16
    assert pairs_per_chunk("cpu", 128) == 64
    assert pairs_per_chunk("cpu", 64) == 256
    assert pairs_per_chunk("cuda", 64) == 128
