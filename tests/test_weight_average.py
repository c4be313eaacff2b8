"""Tests for rank_distillm.training.weight_average: the checkpoint as a moving average of
the weights (``ema_decay``)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from rank_distillm.training.loop import TrainSettings, train  # noqa: E402
from rank_distillm.training.weight_average import WeightAverage  # noqa: E402
from tests.helpers import read_tensors, split_texts, training_table  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def scalar_model(value: float) -> nn.Linear:
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(value)
    return model


def test_the_average_moves_one_minus_decay_of_the_way() -> None:
    model = scalar_model(0.0)
    average = WeightAverage(model, decay=0.5)
    for weight, expected in ((2.0, 1.0), (4.0, 2.5), (4.0, 3.25)):
        with torch.no_grad():
            model.weight.fill_(weight)
        average.update()
        assert average.average["weight"].item() == expected  # 0.5 * before + 0.5 * weight
    # A resumed run starts from the saved average, not from the model's weights.
    again = WeightAverage(scalar_model(4.0), 0.5, average.state_dict())
    assert again.average["weight"].item() == 3.25
    again.copy_to_model()
    assert again.parameters["weight"].item() == 3.25


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5])
def test_a_decay_outside_zero_to_one_is_refused(decay: float) -> None:
    message = f"ema_decay must be between 0 and 1 \\(exclusive\\), got {decay}"
    with pytest.raises(ValueError, match=message):
        TrainSettings(loss="infonce", sampler="top", steps=1, ema_decay=decay)
    with pytest.raises(ValueError, match=message):
        WeightAverage(scalar_model(0.0), decay)


def test_a_saved_average_must_cover_every_parameter() -> None:
    with pytest.raises(ValueError, match="the saved weight average lacks 1 parameters"):
        WeightAverage(nn.Linear(1, 1), 0.5, {"weight": torch.zeros(1, 1)})


def test_the_checkpoint_holds_the_average_of_each_step(backbone_dir: Path, tmp_path: Path) -> None:
    """The 3-step run's checkpoint is the 2-step run's average moved 1 - decay of the way
    to the plain 3-step run's weights (the runs share their first steps, bit for bit)."""
    decay = 0.9
    table, texts = split_texts(training_table(n_queries=8))
    base = dict(
        loss="infonce", sampler="single_relevant", negatives=3, queries_per_step=4,
        learning_rate=1e-3, query_length=8, doc_length=16, precision="fp32",
    )  # fmt: skip

    def weights(name: str, steps: int, ema_decay: float | None) -> dict[str, torch.Tensor]:
        settings = TrainSettings(**base, steps=steps, ema_decay=ema_decay)
        train(settings, str(backbone_dir), table, texts, tmp_path / name, tmp_path / f"{name}.csv")
        return read_tensors(tmp_path / name)

    averaged_2, averaged_3 = weights("ema-2", 2, decay), weights("ema-3", 3, decay)
    plain_3 = weights("plain-3", 3, None)
    for key, value in averaged_3.items():
        torch.testing.assert_close(value, averaged_2[key].lerp(plain_3[key], 1 - decay))
    assert any(not averaged_3[key].equal(plain_3[key]) for key in plain_3)
