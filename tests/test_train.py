"""Tests for rank_distillm.training.loop: settings, step counts and short real training runs."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import math  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from rank_distillm.data.trec import RUN_COLUMNS  # noqa: E402
from rank_distillm.evaluation.rerank import rerank  # noqa: E402
from rank_distillm.model.checkpoints import load_cross_encoder  # noqa: E402
from rank_distillm.model.pair_encoder import PairEncoder  # noqa: E402
from rank_distillm.training.loop import (  # noqa: E402
    TrainSettings,
    learning_rate_factor,
    total_optimizer_steps,
    train,
)
from tests.helpers import (  # noqa: E402
    one_torch_thread,
    read_tensors,
    split_texts,
    training_table,
)

LOG_HEADER = ["step", "epoch", "loss", "learning_rate", "seconds"]
STEPS = 30
BASE = {
    "loss": "infonce",
    "sampler": "single_relevant",
    "negatives": 3,
    "steps": STEPS,
    "queries_per_step": 4,
    "learning_rate": 1e-3,
    "query_length": 8,
    "doc_length": 16,
    "freeze_position_embeddings": False,
    "precision": "fp32",  # "auto" would pick bf16 on CPUs with bf16 instructions
}


pytestmark = pytest.mark.usefixtures("torch_single_thread")


@dataclass(frozen=True)
class Run:
    summary: dict[str, float]
    out_dir: Path
    log: pd.DataFrame
    header: list[str]


def run_training(settings: TrainSettings, start: Path, root: Path, table: pd.DataFrame) -> Run:
    out_dir, loss_log = root / "ckpt", root / "logs" / "loss.csv"
    with one_torch_thread():
        summary = train(settings, str(start), *split_texts(table), out_dir, loss_log)
    header = loss_log.read_text().splitlines()[0].split(",")
    return Run(summary, out_dir, pd.read_csv(loss_log), header)


@pytest.fixture(scope="module")
def infonce_run(backbone_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("infonce")
    return run_training(TrainSettings(**BASE), backbone_dir, root, training_table())


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(("steps", "epochs"), [(10, 1), (None, None)])
def test_settings_need_exactly_one_of_steps_and_epochs(
    steps: int | None, epochs: int | None
) -> None:
    with pytest.raises(ValueError, match="exactly one of 'steps' and 'epochs'"):
        TrainSettings(loss="infonce", sampler="top", steps=steps, epochs=epochs)


def test_settings_reject_unknown_loss_listing_choices() -> None:
    with pytest.raises(ValueError, match="unknown loss 'infonse'") as error:
        TrainSettings(loss="infonse", sampler="top", steps=1)
    for name in ("infonce", "ranknet", "kl_divergence", "margin_mse", "listnet"):
        assert name in str(error.value)


def test_settings_reject_unknown_sampler() -> None:
    with pytest.raises(ValueError, match="unknown sampler 'random'.*single_relevant"):
        TrainSettings(loss="infonce", sampler="random", steps=1)


def test_settings_need_whole_micro_batches() -> None:
    with pytest.raises(ValueError, match="multiple of accumulation_steps"):
        TrainSettings(
            loss="infonce", sampler="top", steps=1, queries_per_step=6, accumulation_steps=4
        )
    settings = TrainSettings(
        loss="infonce", sampler="top", steps=1, queries_per_step=8, accumulation_steps=4
    )
    assert settings.accumulation_steps == 4


def test_settings_reject_unknown_precision_device_and_save_interval() -> None:
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, fp16"):
        TrainSettings(loss="infonce", sampler="top", steps=1, precision="fp8")
    with pytest.raises(ValueError, match="device must be one of auto, cuda, cpu"):
        TrainSettings(loss="infonce", sampler="top", steps=1, device="tpu")
    with pytest.raises(ValueError, match="save_every_steps must be >= 1"):
        TrainSettings(loss="infonce", sampler="top", steps=1, save_every_steps=0)
    # accelerate's spelling of fp32 stays accepted (older configs).
    assert TrainSettings(loss="infonce", sampler="top", steps=1, precision="no").precision == "no"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without GPU")
def test_a_demanded_gpu_that_is_missing_is_a_clear_error(
    backbone_dir: Path, tmp_path: Path
) -> None:
    settings = TrainSettings(**{**BASE, "device": "cuda"})
    with pytest.raises(
        RuntimeError, match="device: cuda is configured for training, but torch finds no CUDA GPU"
    ):
        run_training(settings, backbone_dir, tmp_path, training_table())
    assert not (tmp_path / "ckpt").exists()


def test_fp16_training_on_a_cpu_is_a_clear_error(backbone_dir: Path, tmp_path: Path) -> None:
    settings = TrainSettings(**{**BASE, "precision": "fp16", "device": "cpu"})
    with pytest.raises(ValueError, match="fp16 training needs a CUDA GPU; use bf16 or fp32"):
        run_training(settings, backbone_dir, tmp_path, training_table())


def test_total_optimizer_steps() -> None:
    by_epochs = TrainSettings(loss="infonce", sampler="top", epochs=3, queries_per_step=4)
    assert total_optimizer_steps(by_epochs, 10) == 10 // 4 * 3 == 6
    assert total_optimizer_steps(by_epochs, 4) == 3
    by_steps = TrainSettings(loss="infonce", sampler="top", steps=17, queries_per_step=4)
    assert total_optimizer_steps(by_steps, 1) == 17
    with pytest.raises(ValueError, match=r"3 usable queries are fewer than queries_per_step \(4\)"):
        total_optimizer_steps(by_epochs, 3)


# --------------------------------------------------------------------------- training runs


def test_training_log(infonce_run: Run) -> None:
    log = infonce_run.log
    assert infonce_run.header == LOG_HEADER
    assert len(log) == STEPS
    assert log["step"].tolist() == list(range(1, STEPS + 1))
    # 16 usable queries, 4 per step: a new epoch every 4 steps.
    assert log["epoch"].tolist() == [(step - 1) // 4 for step in range(1, STEPS + 1)]
    assert (log["learning_rate"] == 1e-3).all()
    assert log["seconds"].is_monotonic_increasing
    # A fresh head scores 4 candidates almost alike: the first loss is about ln 4.
    assert log["loss"].iloc[0] == pytest.approx(math.log(4), abs=0.01)
    assert log["loss"].iloc[-4:].mean() < log["loss"].iloc[0] - 0.1


def test_training_summary(infonce_run: Run) -> None:
    summary = infonce_run.summary
    assert summary["steps"] == STEPS
    assert summary["queries"] == 16
    # Each step: 4 queries x (1 relevant + 3 negatives).
    assert summary["pairs"] == STEPS * 4 * 4
    assert summary["seconds"] > 0


def test_training_writes_a_checkpoint(infonce_run: Run, backbone_dir: Path) -> None:
    out_dir = infonce_run.out_dir
    assert (out_dir / "config.json").is_file()
    assert (out_dir / "model.safetensors").is_file()
    assert (out_dir / "tokenizer.json").is_file()
    assert [path.name for path in out_dir.parent.iterdir() if path.name.startswith(".tmp-")] == []

    model, _ = load_cross_encoder(str(out_dir))
    assert (model.query_length, model.doc_length) == (8, 16)
    trained = read_tensors(out_dir)
    start = read_tensors(backbone_dir)
    assert not torch.equal(
        trained["embeddings.word_embeddings.weight"], start["embeddings.word_embeddings.weight"]
    )
    # Position embeddings were not frozen in this run.
    assert not torch.equal(
        trained["embeddings.position_embeddings.weight"],
        start["embeddings.position_embeddings.weight"],
    )


def test_trained_model_ranks_relevant_passages_first(infonce_run: Run) -> None:
    table = training_table()
    model, tokenizer = load_cross_encoder(str(infonce_run.out_dir))
    run = table.assign(score=0.0)[RUN_COLUMNS]
    out = rerank(
        model,
        PairEncoder(tokenizer, 8, 16),
        run,
        dict(zip(table["query_id"], table["query"], strict=True)),
        dict(zip(table["doc_id"], table["text"], strict=True)),
    )
    top = out[out["rank"] == 1]
    assert len(top) == 16
    # Relevant passages are rank 1 in the table (doc id suffix -1); chance is 1 in 4.
    assert top["doc_id"].str.endswith("-1").mean() >= 0.75


def test_identical_runs_give_identical_checkpoints(
    infonce_run: Run, backbone_dir: Path, tmp_path: Path
) -> None:
    # Leftovers of an earlier, interrupted run: both must be gone afterwards.
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "stale.txt").write_text("old")
    (tmp_path / ".tmp-ckpt").mkdir()
    (tmp_path / ".tmp-ckpt" / "partial.bin").write_text("half")

    again = run_training(TrainSettings(**BASE), backbone_dir, tmp_path, training_table())

    assert not (again.out_dir / "stale.txt").exists()
    assert not (tmp_path / ".tmp-ckpt").exists()
    first, second = read_tensors(infonce_run.out_dir), read_tensors(again.out_dir)
    assert set(first) == set(second)
    for key in first:
        assert torch.equal(first[key], second[key]), key
    assert again.log["loss"].tolist() == infonce_run.log["loss"].tolist()
    assert (infonce_run.out_dir / "config.json").read_text() == (
        again.out_dir / "config.json"
    ).read_text()


def test_gradient_accumulation_takes_the_same_optimizer_steps(
    infonce_run: Run, backbone_dir: Path, tmp_path: Path
) -> None:
    settings = TrainSettings(**{**BASE, "accumulation_steps": 2})
    accumulated = run_training(settings, backbone_dir, tmp_path, training_table())

    assert accumulated.header == LOG_HEADER
    assert len(accumulated.log) == STEPS
    assert accumulated.log["step"].tolist() == list(range(1, STEPS + 1))
    assert accumulated.summary["steps"] == STEPS
    assert accumulated.summary["pairs"] == infonce_run.summary["pairs"]
    assert accumulated.log["epoch"].tolist() == infonce_run.log["epoch"].tolist()
    # Two micro-batches of 2 queries average to one batch of 4 (same samples, same
    # order), so every optimizer step sees the same gradient up to rounding.
    assert accumulated.log["loss"].tolist() == pytest.approx(
        infonce_run.log["loss"].tolist(), abs=1e-4
    )


def test_frozen_position_embeddings_do_not_move(backbone_dir: Path, tmp_path: Path) -> None:
    settings = TrainSettings(**{**BASE, "steps": 3, "freeze_position_embeddings": True})
    result = run_training(settings, backbone_dir, tmp_path, training_table())
    trained, start = read_tensors(result.out_dir), read_tensors(backbone_dir)
    key = "embeddings.position_embeddings.weight"
    assert torch.equal(trained[key], start[key])
    assert not torch.equal(
        trained["embeddings.word_embeddings.weight"], start["embeddings.word_embeddings.weight"]
    )


def test_ranknet_on_teacher_ranks_for_one_epoch(backbone_dir: Path, tmp_path: Path) -> None:
    table = training_table(graded=True)
    assert table.loc[table["query_id"] == "q0", "target"].tolist() == [4.0, 3.0, 2.0, 1.0]
    settings = TrainSettings(
        loss="ranknet",
        sampler="top",
        epochs=1,
        queries_per_step=4,
        learning_rate=1e-3,
        query_length=8,
        doc_length=16,
        precision="fp32",
    )
    result = run_training(settings, backbone_dir, tmp_path, table)

    assert result.summary["steps"] == 16 // 4
    assert result.summary["queries"] == 16
    assert result.summary["pairs"] == 16 * 4
    assert result.header == LOG_HEADER
    assert result.log["step"].tolist() == [1, 2, 3, 4]
    assert result.log["epoch"].tolist() == [0, 0, 0, 0]
    # RankNet on near-equal scores: softplus(0) = ln 2 for every ordered pair.
    assert result.log["loss"].iloc[0] == pytest.approx(math.log(2), abs=0.01)
    assert (result.out_dir / "model.safetensors").is_file()
    model, _ = load_cross_encoder(str(result.out_dir))
    assert (model.query_length, model.doc_length) == (8, 16)


def test_epochs_count_only_usable_queries(backbone_dir: Path, tmp_path: Path) -> None:
    """Queries without a relevant passage are skipped by single_relevant and do not
    count towards an epoch's steps."""
    table = training_table(n_queries=12)
    no_relevant = table["query_id"].isin(["q0", "q1", "q2", "q3"])
    table.loc[no_relevant, "target"] = 0.0
    settings = TrainSettings(**{**BASE, "steps": None, "epochs": 2})
    result = run_training(settings, backbone_dir, tmp_path, table)
    assert result.summary["queries"] == 8
    assert result.summary["steps"] == 8 // 4 * 2
    assert result.log["epoch"].tolist() == [0, 0, 1, 1]


def test_too_few_usable_queries_for_one_step(backbone_dir: Path, tmp_path: Path) -> None:
    settings = TrainSettings(**{**BASE, "steps": None, "epochs": 1, "queries_per_step": 8})
    with pytest.raises(ValueError, match=r"4 usable queries are fewer than queries_per_step \(8\)"):
        run_training(settings, backbone_dir, tmp_path, training_table(n_queries=4))
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize(
    ("schedule", "warmup", "factors"),
    [
        ("constant", 0, [1.0] * 6),
        ("constant", 4, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]),
        # (6 - step) / (6 - 0): no warm-up, the last step at 1/6, never at 0
        ("linear", 0, [1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6]),
        # warm-up 1/2, 2/2; then (6 - step) / (6 - 2) from step 2: 4/4, 3/4, 2/4, 1/4
        ("linear", 2, [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]),
    ],
)
def test_learning_rate_schedule(schedule: str, warmup: int, factors: list[float]) -> None:
    settings = TrainSettings(**{**BASE, "warmup_steps": warmup, "lr_schedule": schedule})
    assert [learning_rate_factor(step, settings, 6) for step in range(6)] == factors


def test_an_unknown_learning_rate_schedule_is_an_error() -> None:
    with pytest.raises(
        ValueError, match="lr_schedule must be one of constant, linear, got 'cosine'"
    ):
        TrainSettings(**{**BASE, "lr_schedule": "cosine"})


@pytest.mark.parametrize(
    ("schedule", "factors"),
    [
        ("constant", (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)),
        ("linear", (0.25, 0.5, 0.75, 1.0, 1.0, 0.5)),  # (6 - 4) / (6 - 4), (6 - 5) / (6 - 4)
    ],
)
def test_warmup_learning_rate_is_logged_for_the_step_that_used_it(
    backbone_dir: Path, tmp_path: Path, schedule: str, factors: tuple[float, ...]
) -> None:
    settings = TrainSettings(**{**BASE, "steps": 6, "warmup_steps": 4, "lr_schedule": schedule})
    run = run_training(settings, backbone_dir, tmp_path, training_table())
    expected = [1e-3 * factor for factor in factors]
    assert run.log["learning_rate"].tolist() == pytest.approx(expected)


# --------------------------------------------------------------------------- data path


def test_prefetcher_builds_ahead_in_order_and_raises_the_builders_error() -> None:
    from rank_distillm.training.batches import Prefetcher

    with Prefetcher(iter(range(20)), lambda x: x * x, workers=3, depth=4) as loader:
        assert list(loader) == [x * x for x in range(20)]

    def build(x: int) -> int:
        if x == 1:
            raise KeyError("passage 'x' is not in the collection")
        return x

    with Prefetcher(iter(range(5)), build, workers=2) as loader:
        assert next(loader) == 0
        with pytest.raises(KeyError, match="passage 'x'"):
            next(loader)


def test_batch_builder_fetches_each_passage_once_while_it_fits_the_cache(
    backbone_dir: Path,
) -> None:
    from rank_distillm.training.batches import BatchBuilder
    from rank_distillm.training.sampling import Sample

    table, texts = split_texts(training_table(n_queries=2, negatives=2))
    asked: list[list[str]] = []
    original = texts.doc_texts
    texts.doc_texts = lambda ids: asked.append(list(ids)) or original(ids)
    _, tokenizer = load_cross_encoder(str(backbone_dir))
    encoder = PairEncoder(tokenizer, 8, 16)
    samples = [Sample("q0", [0, 1], [1.0, 0.0]), Sample("q1", [3, 4, 5], [1.0, 0.0, 0.0])]
    builder = BatchBuilder(table, texts, encoder, cache_size=10)
    first = builder.batch(samples)
    again = builder.batch(samples)
    assert asked == [["d0-1", "d0-2", "d1-1", "d1-2", "d1-3"]]  # once, in bulk
    for key in ("input_ids", "attention_mask", "token_type_ids", "targets", "mask"):
        assert torch.equal(first[key], again[key])
    assert first["mask"].tolist() == [[True, True, False], [True, True, True]]
    # The same batch as tokenising the texts directly.
    direct = encoder.collate(
        encoder.query_ids(["tell me about apple"] * 2 + ["tell me about banana"] * 3),
        encoder.doc_ids(texts.doc_texts(["d0-1", "d0-2", "d1-1", "d1-2", "d1-3"])),
    )
    assert torch.equal(first["input_ids"], direct["input_ids"])
    # A cache too small for a batch is emptied and refilled: still correct.
    small = BatchBuilder(table, texts, encoder, cache_size=2)
    small.batch(samples[:1])  # q0's two passages fill the cache
    assert torch.equal(small.batch(samples)["input_ids"], first["input_ids"])
