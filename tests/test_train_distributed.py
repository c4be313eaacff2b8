"""Data-parallel training: two processes (gloo, on the CPU) train like one process with
the same global batch; ``queries_per_step`` and ``epochs`` mean the same whatever the
number of processes."""

from __future__ import annotations

import os
import signal

os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from rank_distillm.model.checkpoints import load_cross_encoder  # noqa: E402
from rank_distillm.training.launch import launch  # noqa: E402
from rank_distillm.training.loop import TrainSettings, train  # noqa: E402
from tests.helpers import split_texts  # noqa: E402
from tests.test_train_engine import uneven_table  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_single_thread")

BASE = {
    "loss": "ranknet",  # pooled over pairs: the case where shares must be weighted
    "sampler": "top",
    "epochs": 2,
    "queries_per_step": 4,
    "learning_rate": 1e-3,
    "warmup_steps": 3,
    "query_length": 8,
    "doc_length": 32,
    "freeze_position_embeddings": False,
    "precision": "fp32",
}


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_cross_encoder(str(folder))[0].state_dict()


def assert_same_training(run: Path, reference: Path, start: Path) -> None:
    got, expected = pd.read_csv(run / "loss.csv"), pd.read_csv(reference / "loss.csv")
    # 12 usable queries, 4 per step, 2 epochs: 6 steps, however many processes.
    assert got["step"].tolist() == expected["step"].tolist() == list(range(1, 7))
    assert got["epoch"].tolist() == expected["epoch"].tolist() == [0, 0, 0, 1, 1, 1]
    # The schedule advances once per optimizer step (warm-up over 3 steps).
    warm_up = [1e-3 / 3, 2e-3 / 3, 1e-3, 1e-3, 1e-3, 1e-3]
    assert got["learning_rate"].tolist() == pytest.approx(warm_up)
    assert got["learning_rate"].tolist() == expected["learning_rate"].tolist()
    # The loss of the whole global batch, gathered from both processes.
    assert got["loss"].tolist() == pytest.approx(expected["loss"].tolist(), rel=1e-5, abs=1e-6)
    first, second, initial = weights(run / "ckpt"), weights(reference / "ckpt"), weights(start)
    moved = sum(float((second[k] - v).square().sum()) for k, v in initial.items()) ** 0.5
    apart = sum(float((first[k] - v).square().sum()) for k, v in second.items()) ** 0.5
    assert moved > 0.1
    assert apart < 0.01 * moved  # float order only (gradients summed across processes)


@pytest.fixture(scope="module")
def one_process(backbone_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("one-process")
    table, texts = split_texts(uneven_table())
    summary = train(
        TrainSettings(**BASE), str(backbone_dir), table, texts, root / "ckpt", root / "loss.csv"
    )
    assert summary["steps"] == 6
    return root


def test_two_processes_train_like_one_with_the_same_global_batch(
    backbone_dir: Path, one_process: Path, tmp_path: Path
) -> None:
    """2 processes x 2 micro-batches of 1 query against 1 process x 4 queries: lists of 3
    to 6 passages, so each micro-batch holds another number of RankNet pairs."""
    settings = TrainSettings(**{**BASE, "accumulation_steps": 2})
    table, texts = split_texts(uneven_table())
    launch(
        2,
        train,
        settings,
        str(backbone_dir),
        table,
        texts,
        tmp_path / "ckpt",
        tmp_path / "loss.csv",
        threads=1,
    )
    assert_same_training(tmp_path, one_process, backbone_dir)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without GPUs")
def test_processes_for_the_gpus_a_job_was_given() -> None:
    from rank_distillm.training.launch import training_processes

    assert training_processes(1) == 1  # the demo: one process on the CPU
    with pytest.raises(
        RuntimeError, match="compute.train_gpus asks for 2 GPUs per training job, but torch sees 0"
    ):
        training_processes(2)


def test_an_exception_in_a_process_is_raised_in_the_launcher() -> None:
    """``math.sqrt(-1.0)`` fails in both processes: the launcher stops the group and raises
    torch's ChildFailedError (each process's traceback is in the job's log)."""
    import math

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(ChildFailedError, match="_worker FAILED"):
        launch(2, math.sqrt, -1.0)
    assert signal.getsignal(signal.SIGTERM) == before  # the launcher's handler is gone
