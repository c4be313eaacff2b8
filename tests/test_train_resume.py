"""Resuming training after preemption: a real training process killed with SIGKILL or
stopped with SIGTERM mid-run, then run again, ends with the weights of an uninterrupted
run, bit for bit (on a CPU, same thread count)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import dataclasses  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from rank_distillm.model.tiny_backbone import build_tiny  # noqa: E402
from rank_distillm.training.loop import TrainSettings, train  # noqa: E402
from rank_distillm.training.resume import TrainingInterrupted  # noqa: E402
from tests.helpers import TINY, corpus, read_tensors, split_texts, training_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {
    "loss": "infonce",
    "sampler": "single_relevant",
    "negatives": 3,
    "steps": 240,
    "queries_per_step": 4,
    "learning_rate": 1e-3,
    "warmup_steps": 50,  # the schedule's position must come back too
    "query_length": 8,
    "doc_length": 16,
    "freeze_position_embeddings": False,
    "precision": "fp32",
    "save_every_steps": 10,
}
#: The training job, as a process of its own: what a cluster runs and may kill.
JOB = """
import json, sys
import torch
from pathlib import Path
from rank_distillm.logs import log_to
from rank_distillm.training.loop import TrainSettings, train
from tests.helpers import split_texts, training_table

torch.set_num_threads(1)
backbone, root, settings = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
with log_to(None):
    train(TrainSettings(**settings), backbone, *split_texts(training_table(n_queries=16)),
          root / "ckpt", root / "loss.csv", root / "resume")
"""


@pytest.fixture(scope="module")
def dropout_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny backbone with dropout, so every step draws from torch's generator: a
    resumed run only matches if the generator's state came back too."""
    out = tmp_path_factory.mktemp("dropout-backbone")
    build_tiny(corpus(), dataclasses.replace(TINY, dropout=0.1), out)
    return out


def start_job(backbone: Path, root: Path, settings: dict) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", JOB, str(backbone), str(root), json.dumps(settings)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(job: subprocess.Popen) -> tuple[int, str]:
    _, err = job.communicate(timeout=300)
    return job.returncode, err


def saved_steps(root: Path) -> list[int]:
    folder = root / "resume"
    if not folder.is_dir():
        return []
    return sorted(int(p.name[5:]) for p in folder.glob("step-*") if (p / "complete.json").exists())


def wait_for_state(job: subprocess.Popen, root: Path, at_least: int) -> int:
    """Poll until the job has saved a state at step >= ``at_least``; return that step."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        steps = saved_steps(root)
        if steps and steps[-1] >= at_least:
            return steps[-1]
        if job.poll() is not None:
            raise AssertionError(f"the job ended before saving step {at_least}: {finish(job)}")
        time.sleep(0.01)
    job.kill()
    raise AssertionError("no training state appeared in 240 s")


@pytest.fixture(scope="module")
def uninterrupted(dropout_backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("uninterrupted")
    code, err = finish(start_job(dropout_backbone, root, SETTINGS))
    assert code == 0, err
    return root


def assert_same_result(run: Path, reference: Path) -> None:
    first, second = read_tensors(reference / "ckpt"), read_tensors(run / "ckpt")
    assert set(first) == set(second)
    for key, value in first.items():
        assert value.equal(second[key]), f"{key} differs after resuming"
    columns = ["step", "epoch", "loss", "learning_rate"]
    expected = pd.read_csv(reference / "loss.csv")
    got = pd.read_csv(run / "loss.csv")
    assert got["step"].tolist() == list(range(1, SETTINGS["steps"] + 1))
    pd.testing.assert_frame_equal(got[columns], expected[columns])
    assert got["seconds"].is_monotonic_increasing
    assert not (run / "resume").exists()  # removed once the checkpoint is written


def test_uninterrupted_run_leaves_no_state(uninterrupted: Path) -> None:
    assert (uninterrupted / "ckpt" / "model.safetensors").is_file()
    assert not (uninterrupted / "resume").exists()
    log = pd.read_csv(uninterrupted / "loss.csv")
    assert log["learning_rate"].iloc[0] == pytest.approx(1e-3 / 50)
    assert log["learning_rate"].iloc[-1] == pytest.approx(1e-3)


def test_sigkill_resumes_from_the_last_periodic_state(
    dropout_backbone: Path, uninterrupted: Path, tmp_path: Path
) -> None:
    job = start_job(dropout_backbone, tmp_path, SETTINGS)
    step = wait_for_state(job, tmp_path, at_least=30)
    job.send_signal(signal.SIGKILL)
    code, _ = finish(job)
    assert code == -signal.SIGKILL
    assert not (tmp_path / "ckpt").exists()
    # Killed mid-run: a state (and perhaps a later one half written) is there.
    assert saved_steps(tmp_path)[-1] >= step
    assert saved_steps(tmp_path)[-1] < SETTINGS["steps"]

    code, err = finish(start_job(dropout_backbone, tmp_path, SETTINGS))
    assert code == 0, err
    assert "resuming from" in err
    assert_same_result(tmp_path, uninterrupted)


def test_sigterm_saves_the_state_and_stops_cleanly(
    dropout_backbone: Path, uninterrupted: Path, tmp_path: Path
) -> None:
    job = start_job(dropout_backbone, tmp_path, SETTINGS)
    wait_for_state(job, tmp_path, at_least=20)
    job.send_signal(signal.SIGTERM)
    code, err = finish(job)
    assert code == 1
    assert "SIGTERM received: stopping after this step" in err
    assert "TrainingInterrupted: training stopped by SIGTERM after step" in err
    assert not (tmp_path / "ckpt").exists()
    stopped_at = saved_steps(tmp_path)[-1]
    assert 20 <= stopped_at < SETTINGS["steps"]
    logged = pd.read_csv(tmp_path / "loss.csv")
    assert logged["step"].iloc[-1] == stopped_at  # the log kept every finished step

    code, err = finish(start_job(dropout_backbone, tmp_path, SETTINGS))
    assert code == 0, err
    assert f"step {stopped_at}" in err
    assert_same_result(tmp_path, uninterrupted)


class SignallingTexts:
    """Texts whose first passage lookup delivers SIGTERM to this process, as a cluster
    preempting the job during its first step would."""

    def __init__(self, texts) -> None:
        self.texts, self.sent = texts, False

    def query_texts(self, ids):
        return self.texts.query_texts(ids)

    def doc_texts(self, ids):
        if not self.sent:
            self.sent = True
            signal.raise_signal(signal.SIGTERM)
        return self.texts.doc_texts(ids)


def test_in_process_stop_resume_and_a_state_for_other_settings(
    backbone_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = TrainSettings(**{**SETTINGS, "steps": 40})
    table, texts = split_texts(training_table(n_queries=16))
    backbone = str(backbone_dir)
    train(settings, backbone, table, texts, tmp_path / "fresh", tmp_path / "fresh.csv")

    def interrupted(root: Path) -> None:
        with pytest.raises(TrainingInterrupted, match="stopped by SIGTERM after step 1 of 40"):
            train(
                settings,
                backbone,
                table,
                SignallingTexts(texts),
                root / "ckpt",
                root / "loss.csv",
                root / "resume",
            )
        assert saved_steps(root) == [1]
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handler restored

    interrupted(tmp_path / "a")
    train(
        settings,
        backbone,
        table,
        texts,
        tmp_path / "a" / "ckpt",
        tmp_path / "a" / "loss.csv",
        tmp_path / "a" / "resume",
    )
    fresh, resumed = read_tensors(tmp_path / "fresh"), read_tensors(tmp_path / "a" / "ckpt")
    assert all(fresh[key].equal(resumed[key]) for key in fresh)

    interrupted(tmp_path / "b")
    changed = TrainSettings(**{**SETTINGS, "steps": 40, "learning_rate": 2e-3})
    with caplog.at_level(logging.WARNING, logger="rank_distillm.training.resume"):
        train(
            changed,
            backbone,
            table,
            texts,
            tmp_path / "b" / "ckpt",
            tmp_path / "b" / "loss.csv",
            tmp_path / "b" / "resume",
        )
    assert "was saved by a run with other settings; training from the start" in caplog.text
    assert not (tmp_path / "b" / "resume").exists()  # finished, so cleaned up
    other = pd.read_csv(tmp_path / "b" / "loss.csv")
    assert other["step"].tolist() == list(range(1, 41))
    assert other["learning_rate"].iloc[-1] == pytest.approx(2e-3 * 40 / 50)  # warm-up


def test_a_resumed_run_keeps_its_weight_average(backbone_dir: Path, tmp_path: Path) -> None:
    """With ``ema_decay`` the saved state carries the average: stopped after step 1 and
    resumed, the checkpoint equals the uninterrupted run's, bit for bit."""
    settings = TrainSettings(**{**SETTINGS, "steps": 12, "ema_decay": 0.9})
    table, texts = split_texts(training_table(n_queries=16))
    backbone = str(backbone_dir)
    train(settings, backbone, table, texts, tmp_path / "fresh", tmp_path / "fresh.csv")
    root = tmp_path / "resumed"
    arguments = (root / "ckpt", root / "loss.csv", root / "resume")
    with pytest.raises(TrainingInterrupted, match="stopped by SIGTERM after step 1 of 12"):
        train(settings, backbone, table, SignallingTexts(texts), *arguments)
    train(settings, backbone, table, texts, *arguments)
    fresh, resumed = read_tensors(tmp_path / "fresh"), read_tensors(root / "ckpt")
    assert all(fresh[key].equal(resumed[key]) for key in fresh)
