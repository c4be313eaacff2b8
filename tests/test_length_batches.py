"""Tests for rank_distillm.length_batches: scoring a training batch in length-sorted
chunks gives the loss and the gradients of today's single padded pass."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import random  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from rank_distillm import losses, sampling  # noqa: E402
from rank_distillm.length_batches import score_by_length, score_query_lists  # noqa: E402
from rank_distillm.model import PairEncoder, load_cross_encoder  # noqa: E402
from rank_distillm.train import TokenisedTable, _scores  # noqa: E402
from tests.helpers import EXTRA_TEXTS, training_table  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def uneven_batch(backbone_dir: Path):
    """Three queries' lists (6, 6 and 4 passages) with passage lengths from 2 to ~30
    tokens, so the padded batch is mostly padding."""
    model, tokenizer = load_cross_encoder(str(backbone_dir), 8, 32, seed=5)
    table = training_table(n_queries=3, negatives=5, graded=True)
    texts = [*EXTRA_TEXTS, "fox", "a b c d e f g h i j k l m n o p q r s t u v w x y z"]
    table["text"] = [texts[i % len(texts)] * (1 + i % 3) for i in range(len(table))]
    table = table[~((table["query_id"] == "q2") & (table["rank"] > 4))]
    encoder = PairEncoder(tokenizer, 8, 32)
    tokens = TokenisedTable(table, encoder)
    samples, _ = sampling.draw(sampling.group_queries(table), "top", 0, 100, random.Random(0))
    return model, tokens.batch(samples)


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
    expected_loss, expected = loss_and_grads(model, batch, _scores, loss_name)
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


def test_scores_come_back_in_row_order(backbone_dir: Path) -> None:
    model, batch = uneven_batch(backbone_dir)
    model.eval()
    with torch.inference_mode():
        padded = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
        )
        chunked = score_by_length(
            model, batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], 4
        )
        scores = score_query_lists(model, batch, 4)
    torch.testing.assert_close(chunked, padded, rtol=1e-5, atol=1e-6)
    assert scores.shape == batch["mask"].shape
    assert torch.equal(scores[batch["mask"]], chunked)
    assert torch.all(scores[~batch["mask"]] == 0)


def test_chunk_size_must_be_positive(backbone_dir: Path) -> None:
    model, batch = uneven_batch(backbone_dir)
    with pytest.raises(ValueError, match="pairs_per_chunk"):
        score_query_lists(model, batch, 0)
