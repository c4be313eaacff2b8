"""A training run's state in and out of checkpoints: what an optimiser step updates
besides the model, where a run starts (fresh, or from a saved
:class:`~rank_distillm.training.resume.TrainingState`), saving the live run's state every
so many steps, and writing the trained model's checkpoint at the end.

:mod:`rank_distillm.training.resume` owns the files of a saved state; this module turns
the loop's live objects into a state and back.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import PreTrainedTokenizerBase

from rank_distillm.model.checkpoints import save_cross_encoder
from rank_distillm.model.cross_encoder import CrossEncoder
from rank_distillm.training import resume
from rank_distillm.training.batches import StepSamples
from rank_distillm.training.weight_average import WeightAverage

if TYPE_CHECKING:
    from accelerate import Accelerator


@dataclass
class Optimisation:
    """What an optimiser step updates besides the model."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler


@dataclass(frozen=True)
class Position:
    """Where a run starts: after optimiser step ``step``, at step ``skip`` of epoch
    ``epoch`` of the sample stream, having trained on ``pairs`` pairs in ``seconds``."""

    step: int = 0
    epoch: int = 0
    skip: int = 0
    pairs: int = 0
    seconds: float = 0.0


def restore(
    state: resume.TrainingState | None, optimisation: Optimisation, rng: random.Random
) -> Position:
    """Continue from ``state`` (the model is restored before accelerate prepares it):
    the optimiser, its schedule and loss scaler, and the sampling generator as the
    state's epoch began. Without a state, the start of the run."""
    if state is None:
        return Position()
    optimisation.optimizer.load_state_dict(state.optimizer)
    optimisation.scheduler.load_state_dict(state.scheduler)
    if state.scaler is not None:
        optimisation.scaler.load_state_dict(state.scaler)
    rng.setstate(state.epoch_rng_state)
    return Position(state.step, state.epoch, state.index + 1, state.pairs, state.seconds)


@dataclass(frozen=True)
class StateSaver:
    """Saves the live run's state into the resume folder ``folder`` every ``every``
    steps, with what it was written for (``fingerprint``) and the loss log so far."""

    folder: Path
    fingerprint: dict[str, Any]
    loss_log: Path
    every: int

    def save(
        self,
        step: int,
        item: StepSamples,
        pairs: int,
        seconds: float,
        model: CrossEncoder,
        optimisation: Optimisation,
        accelerator: Accelerator,
        average: WeightAverage | None = None,
    ) -> Path:
        """Save the state after ``step`` (whose samples were ``item``); returns its folder."""
        scaler = optimisation.scaler
        state = resume.TrainingState(
            step=step,
            epoch=item.epoch,
            index=item.index,
            epoch_rng_state=item.epoch_rng_state,
            pairs=pairs,
            seconds=seconds,
            model=model.state_dict(),
            optimizer=optimisation.optimizer.state_dict(),
            scheduler=optimisation.scheduler.state_dict(),
            scaler=scaler.state_dict() if scaler.is_enabled() else None,
            folder=self.folder,
            weight_average=None if average is None else average.state_dict(),
        )
        return resume.save(
            self.folder,
            state,
            self.fingerprint,
            self.loss_log,
            accelerator.process_index,
            accelerator.wait_for_everyone,
        )


def write_checkpoint(
    accelerator: Accelerator,
    model: CrossEncoder,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: Path,
    resume_dir: Path | None,
) -> None:
    """Write the trained model to ``out_dir`` (main process) through a temporary folder
    renamed at the end, so an interrupted run never leaves a complete-looking
    checkpoint; then the resume folder has served its purpose and is removed."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        tmp_dir = out_dir.with_name(f".tmp-{out_dir.name}")
        shutil.rmtree(tmp_dir, ignore_errors=True)
        save_cross_encoder(model, tokenizer, tmp_dir)
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp_dir.rename(out_dir)
        resume.discard(resume_dir)
    accelerator.wait_for_everyone()
