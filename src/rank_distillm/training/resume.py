"""Periodic training state, so that a job killed at any point resumes where it was.

A state is a folder ``step-<N>`` under the job's resume folder holding the model, the
optimizer, the scheduler (and loss scaler), the position in the sample stream, the loss
log so far, and every process's random generators (Python, numpy, torch, CUDA). It is
written as ``.tmp-step-<N>`` and renamed when complete, so a kill while saving leaves
the previous state intact; older states are removed once a newer one is in place.

A state remembers what it was written for (settings, start, data, processes): a state
for anything else is set aside with a warning instead of being resumed.

SIGTERM (SLURM's preemption and time limit, ``scancel``) and SIGINT (Ctrl-C) do not kill
the job mid-step: the loop finishes the step, saves a state and stops
(:class:`StopSignals`). A second signal of the same kind acts as usual.
"""

from __future__ import annotations

import json
import logging
import random
import re
import shutil
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch

LOGGER = logging.getLogger(__name__)

COMPLETE = "complete.json"
STATE_NAME = re.compile(r"^step-(\d+)$")


class TrainingInterrupted(RuntimeError):
    """Training stopped on a signal after saving its state; rerun the job to resume."""


@dataclass
class TrainingState:
    """What a resumed run needs, besides the random generators (per process)."""

    step: int
    epoch: int
    index: int  # the last finished step's index in its epoch
    epoch_rng_state: tuple
    pairs: int
    seconds: float
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any] | None
    folder: Path
    weight_average: dict[str, torch.Tensor] | None = None  # with ema_decay


def rng_states() -> dict[str, Any]:
    states = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: Mapping[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _states(resume_dir: Path) -> list[tuple[int, Path]]:
    """Complete states, oldest first."""
    if not resume_dir.is_dir():
        return []
    found = []
    for path in resume_dir.iterdir():
        match = STATE_NAME.match(path.name)
        if match and (path / COMPLETE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def save(
    resume_dir: Path,
    state: TrainingState,
    fingerprint: Mapping[str, Any],
    loss_log: Path,
    process: int,
    barrier: Any,
) -> Path:
    """Write ``state`` (main process, ``process`` 0) and each process's generators;
    ``barrier()`` waits for every process. Returns the new state's folder."""
    final = resume_dir / f"step-{state.step:08d}"
    tmp = resume_dir / f".tmp-{final.name}"
    if process == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier()
    torch.save(rng_states(), tmp / f"rng-{process}.pt")
    if process == 0:
        torch.save(state.model, tmp / "model.pt")
        torch.save(
            {
                "optimizer": state.optimizer,
                "scheduler": state.scheduler,
                "scaler": state.scaler,
                "weight_average": state.weight_average,
            },
            tmp / "optimizer.pt",
        )
        stream = {
            "step": state.step,
            "epoch": state.epoch,
            "index": state.index,
            "epoch_rng_state": state.epoch_rng_state,
            "pairs": state.pairs,
            "seconds": state.seconds,
        }
        torch.save(stream, tmp / "stream.pt")
        shutil.copyfile(loss_log, tmp / "loss.csv")
    barrier()
    if process == 0:
        (tmp / COMPLETE).write_text(json.dumps(dict(fingerprint), indent=2, sort_keys=True))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for step, path in _states(resume_dir):
            if step != state.step:
                shutil.rmtree(path, ignore_errors=True)
    barrier()
    return final


def load(
    resume_dir: Path | None, fingerprint: Mapping[str, Any], process: int
) -> TrainingState | None:
    """The latest complete state written for ``fingerprint``, with this process's
    generators restored; ``None`` when there is none. Every process reads the same
    files, so all agree."""
    if resume_dir is None:
        return None
    states = _states(resume_dir)
    if not states:
        return None
    step, folder = states[-1]
    written_for = json.loads((folder / COMPLETE).read_text())
    wanted = json.loads(json.dumps(dict(fingerprint)))  # as JSON reads it back
    if written_for != wanted:
        changed = sorted(
            key
            for key in wanted.keys() | written_for.keys()
            if written_for.get(key) != wanted.get(key)
        )
        LOGGER.warning(
            "%s was saved by a run with other %s; training from the start instead "
            "(the old state is moved aside to %s)",
            folder,
            ", ".join(changed),
            folder.with_name(f"stale-{folder.name}"),
        )
        if process == 0:
            shutil.rmtree(folder.with_name(f"stale-{folder.name}"), ignore_errors=True)
            folder.rename(folder.with_name(f"stale-{folder.name}"))
        return None
    rng_file = folder / f"rng-{process}.pt"
    if not rng_file.is_file():
        raise FileNotFoundError(f"{rng_file}: missing from a complete training state")
    stream = torch.load(folder / "stream.pt", weights_only=False)
    optimizer = torch.load(folder / "optimizer.pt", weights_only=False)
    state = TrainingState(
        step=stream["step"],
        epoch=stream["epoch"],
        index=stream["index"],
        epoch_rng_state=_as_tuple(stream["epoch_rng_state"]),
        pairs=stream["pairs"],
        seconds=stream["seconds"],
        model=torch.load(folder / "model.pt", weights_only=True),
        optimizer=optimizer["optimizer"],
        scheduler=optimizer["scheduler"],
        scaler=optimizer["scaler"],
        weight_average=optimizer.get("weight_average"),
        folder=folder,
    )
    set_rng_states(torch.load(rng_file, weights_only=False))
    LOGGER.info("resuming from %s (step %d, epoch %d)", folder, step, state.epoch)
    return state


def _as_tuple(state: Any) -> tuple:
    """``random.Random.setstate`` wants tuples all the way down."""
    if isinstance(state, list | tuple):
        return tuple(_as_tuple(item) for item in state)
    return state


def discard(resume_dir: Path | None) -> None:
    """Remove the resume folder once its job's checkpoint is written."""
    if resume_dir is not None and resume_dir.exists():
        shutil.rmtree(resume_dir)


class StopSignals:
    """While active, SIGTERM and SIGINT set :attr:`received` instead of ending the
    process; a second signal of the same kind gets the usual treatment."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self.received == name:
            signal.signal(number, self._previous.get(number, signal.SIG_DFL))
            signal.raise_signal(number)
            return
        self.received = name
        LOGGER.warning("%s received: stopping after this step, saving the training state", name)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread may handle signals: they stay as they are
        for number in self.SIGNALS:
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
