"""The training loop against the one it replaced: the same loss at every step on the same
batches (length-sorted chunks instead of one padded pass), and gradient accumulation
that weights every pair of a step equally."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import random  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from rank_distillm.model.checkpoints import load_cross_encoder  # noqa: E402
from rank_distillm.model.pair_encoder import PairEncoder  # noqa: E402
from rank_distillm.training import losses, sampling  # noqa: E402
from rank_distillm.training.batches import BatchBuilder  # noqa: E402
from rank_distillm.training.loop import TrainSettings, train  # noqa: E402
from tests.helpers import EXTRA_TEXTS, split_texts, training_table  # noqa: E402
from tests.test_length_batches import padded_scores  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def uneven_table(n_queries: int = 12, graded: bool = True) -> pd.DataFrame:
    """Graded query lists of 3 to 6 passages of 1 to ~30 tokens: padding to the longest
    pair would be most of a batch, and RankNet's pair counts differ between queries."""
    table = training_table(n_queries=n_queries, negatives=5, graded=graded)
    texts = [*EXTRA_TEXTS, "fox", "a b c d e f g h i j k l m n o p q r s t u v w x y z"]
    table["text"] = [f"{text} {' '.join([text] * (i % 3))}" for i, text in enumerate(table["text"])]
    table["text"] = [
        f"{words} {texts[i % len(texts)]}" if i % 4 else words
        for i, words in enumerate(table["text"])
    ]
    keep = table["rank"] <= 3 + table["query_id"].str[1:].astype(int) % 4
    return table[keep].reset_index(drop=True)


def old_batches(
    queries: list[sampling.QueryList], settings: TrainSettings, rng: random.Random, size: int
) -> Iterator[tuple[int, list[sampling.Sample]]]:
    """The sample stream of the loop before this one (train.batches), verbatim."""
    epoch = 0
    while True:
        order = queries[:]
        rng.shuffle(order)
        samples, _ = sampling.draw(order, settings.sampler, settings.negatives, settings.depth, rng)
        for start in range(0, len(samples) - size + 1, size):
            yield epoch, samples[start : start + size]
        epoch += 1


def old_losses(settings: TrainSettings, start: Path, frame: pd.DataFrame) -> list[float]:
    """Each step's loss as the loop before this one computed it: one padded pass per
    batch, the loss, backward, AdamW and the warm-up schedule."""
    from accelerate.utils import set_seed

    set_seed(settings.seed)
    rng = random.Random(settings.seed)
    model, tokenizer = load_cross_encoder(
        str(start), settings.query_length, settings.doc_length, seed=settings.seed
    )
    table, texts = split_texts(frame)
    encoder = PairEncoder(tokenizer, settings.query_length, settings.doc_length)
    builder = BatchBuilder(table, texts, encoder)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=settings.learning_rate,
        weight_decay=settings.weight_decay,
    )
    warmup = settings.warmup_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0
    )
    loss_fn = losses.get_loss(settings.loss)
    model.train()
    stream = old_batches(sampling.group_queries(table), settings, rng, settings.queries_per_step)
    values = []
    for _, (_, samples) in zip(range(settings.steps), stream, strict=False):
        batch = builder.batch(samples)
        loss = loss_fn(padded_scores(model, batch), batch["targets"], batch["mask"])
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        values.append(loss.item())
    return values


def new_losses(settings: TrainSettings, start: Path, frame: pd.DataFrame, root: Path) -> list:
    train(settings, str(start), *split_texts(frame), root / "ckpt", root / "loss.csv")
    return pd.read_csv(root / "loss.csv")["loss"].tolist()


@pytest.mark.parametrize(("loss", "sampler"), [("ranknet", "top"), ("infonce", "single_relevant")])
def test_every_step_has_the_loss_of_the_padded_loop(
    backbone_dir: Path, tmp_path: Path, loss: str, sampler: str
) -> None:
    settings = TrainSettings(
        loss=loss,
        sampler=sampler,
        negatives=3,
        steps=24,
        queries_per_step=4,
        learning_rate=1e-3,
        warmup_steps=3,
        query_length=8,
        doc_length=32,
        freeze_position_embeddings=False,
        precision="fp32",
    )
    frame = uneven_table(graded=loss == "ranknet")
    lengths = frame["text"].str.split().str.len()
    assert lengths.max() > 2.5 * lengths.median()  # padding would dominate a batch
    expected = old_losses(settings, backbone_dir, frame)
    got = new_losses(settings, backbone_dir, frame, tmp_path)
    assert len(got) == len(expected) == 24
    # The sums over tokens run in another order: rounding only, also after 24 updates.
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert expected[-1] < expected[0]  # it learned something: not a flat comparison


def test_accumulation_weights_every_pair_of_the_step_equally(
    backbone_dir: Path, tmp_path: Path
) -> None:
    """RankNet on lists of 3 to 6 passages: micro-batches of 2 queries hold different
    numbers of ordered pairs, so averaging their losses would tilt each step."""
    base = {
        "loss": "ranknet",
        "sampler": "top",
        "steps": 9,
        "queries_per_step": 4,
        "learning_rate": 1e-3,
        "query_length": 8,
        "doc_length": 32,
        "freeze_position_embeddings": False,
        "precision": "fp32",
    }
    frame = uneven_table()
    whole = new_losses(TrainSettings(**base), backbone_dir, frame, tmp_path / "whole")
    halves = new_losses(
        TrainSettings(**base, accumulation_steps=2), backbone_dir, frame, tmp_path / "halves"
    )
    quarters = new_losses(
        TrainSettings(**base, accumulation_steps=4), backbone_dir, frame, tmp_path / "quarters"
    )
    assert halves == pytest.approx(whole, rel=1e-5, abs=1e-6)
    assert quarters == pytest.approx(whole, rel=1e-5, abs=1e-6)
    # Adam divides by the gradient's size, so where a gradient is ~0 its rounding moves
    # a weight by up to the learning rate: compare against what training moved.
    start = load_cross_encoder(str(backbone_dir))[0].state_dict()
    models = {
        run: load_cross_encoder(str(tmp_path / run / "ckpt"))[0].state_dict()
        for run in ("whole", "quarters")
    }
    moved = sum(float((models["whole"][k] - v).square().sum()) for k, v in start.items())
    apart = sum(
        float((models["quarters"][k] - v).square().sum()) for k, v in models["whole"].items()
    )
    print(f"training moved weights by {moved**0.5:.2e} (L2); the runs differ by {apart**0.5:.2e}")
    assert apart**0.5 < 0.02 * moved**0.5
