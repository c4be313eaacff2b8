"""Fine-tuning a cross-encoder on a training table.

One optimizer step takes ``queries_per_step`` queries, whatever the number of
processes: under data-parallel training (:mod:`rank_distillm.training.launch`, accelerate's
process group and DistributedDataParallel) each process takes an equal share, split
further into ``accumulation_steps`` micro-batches, and every micro-batch's loss is
weighted so that the step's loss is the loss of its whole batch
(:mod:`rank_distillm.training.global_batch`). Each micro-batch is scored in length-sorted chunks
(:mod:`rank_distillm.training.length_batches`) for one loss and one backward pass.

The optimiser is the paper's AdamW with a constant learning rate (an optional linear
warm-up helps tiny models trained from scratch; ``lr_schedule: linear`` decays the rate
to zero after it; with ``ema_decay`` the checkpoint holds a moving average of the
weights, :mod:`rank_distillm.training.weight_average`). Precision follows
:func:`rank_distillm.model.precision.choose` (bf16 autocast on GPUs and on CPUs with bf16
instructions, fp32 elsewhere or when configured). With a resume folder, the state is
saved every ``save_every_steps`` steps and on SIGTERM, and a rerun continues from it
(:mod:`rank_distillm.training.checkpointing`, :mod:`rank_distillm.training.resume`); on a
CPU the result is bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import logging
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from rank_distillm.data.texts import TextLookup
from rank_distillm.model import precision as precisions
from rank_distillm.model.checkpoints import check_lengths, load_cross_encoder
from rank_distillm.model.cross_encoder import CrossEncoder
from rank_distillm.model.numerics import portable_numerics_enabled
from rank_distillm.model.pair_encoder import PairEncoder
from rank_distillm.training import (
    checkpointing,
    global_batch,
    length_batches,
    losses,
    resume,
    sampling,
    weight_average,
)
from rank_distillm.training.batches import (
    BatchBuilder,
    Prefetcher,
    StepSamples,
    sample_steps,
    shares,
    targets_and_mask,
)
from rank_distillm.training.tables import TrainingTable

if TYPE_CHECKING:
    from accelerate import Accelerator

LOGGER = logging.getLogger(__name__)

LOSS_LOG_HEADER = ["step", "epoch", "loss", "learning_rate", "seconds"]
DEVICES = ("auto", "cuda", "cpu")
LR_SCHEDULES = ("constant", "linear")


@dataclass(frozen=True)
class TrainSettings:
    """One training stage (config: a recipe's ``stage1``/``stage2``)."""

    loss: str
    sampler: str
    negatives: int = 7
    depth: int = 100
    steps: int | None = None
    epochs: int | None = None
    queries_per_step: int = 32
    accumulation_steps: int = 1
    learning_rate: float = 1e-5
    weight_decay: float = 0.01
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_epsilon: float = 1e-8
    warmup_steps: int = 0
    lr_schedule: str = "constant"
    ema_decay: float | None = None  # None: the last weights; else their moving average
    precision: str = "auto"
    query_length: int = 32
    doc_length: int = 256
    freeze_position_embeddings: bool = True
    seed: int = 42
    save_every_steps: int = 1000
    device: str = "auto"

    def __post_init__(self) -> None:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("a training stage needs exactly one of 'steps' and 'epochs'")
        if self.queries_per_step % self.accumulation_steps:
            raise ValueError("queries_per_step must be a multiple of accumulation_steps")
        losses.get_loss(self.loss)  # fails early on a typo
        if self.sampler not in sampling.SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose one of {sampling.SAMPLERS}")
        if self.save_every_steps < 1:
            raise ValueError(f"save_every_steps must be >= 1, got {self.save_every_steps}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        precisions.normalized(self.precision)  # fails early on a typo
        if self.ema_decay is not None:
            weight_average.check_decay(self.ema_decay)


def total_optimizer_steps(settings: TrainSettings, usable_queries: int) -> int:
    if settings.steps is not None:
        return settings.steps
    per_epoch = usable_queries // settings.queries_per_step
    if per_epoch == 0:
        raise ValueError(
            f"{usable_queries} usable queries are fewer than queries_per_step "
            f"({settings.queries_per_step})"
        )
    return per_epoch * settings.epochs


def training_device(setting: str) -> str:
    """``cuda`` when a GPU is there (or demanded), else ``cpu``; a GPU demanded by the
    config (``device: cuda``) but absent is an error, not a silent week on a CPU."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "device: cuda is configured for training, but torch finds no CUDA GPU "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none'}); "
            "run the job on a GPU node, or set device: auto to allow a CPU"
        )
    if setting == "cpu" or not torch.cuda.is_available():
        return "cpu"
    return "cuda"


@contextlib.contextmanager
def deterministic(device: str) -> Iterator[None]:
    """Deterministic algorithms on a CPU, as reproducible as torch allows (on a GPU they
    would cost speed; GPU runs are not bit-reproducible anyway). Restored afterwards."""
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    if device == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


@dataclass
class StepBatches:
    """One process's micro-batches of one optimizer step."""

    step: StepSamples
    micro_batches: list[dict[str, Any]]
    weights: list[float]  # each micro-batch's share of the step's loss denominator
    pairs: int  # pairs of the whole step, all processes


class LossLog:
    """The per-step CSV (step, epoch, loss, learning rate, seconds), written by the main
    process in batches of rows, continuing a resumed run's rows."""

    def __init__(self, path: Path, enabled: bool, resumed_from: Path | None) -> None:
        self.path, self.enabled = path, enabled
        self._handle: Any = None
        if not enabled:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if resumed_from is not None:
            shutil.copyfile(resumed_from, path)
            self._handle = path.open("a", newline="")
        else:
            self._handle = path.open("w", newline="")
            csv.writer(self._handle).writerow(LOSS_LOG_HEADER)
        self._writer = csv.writer(self._handle)

    def write(self, rows: list[tuple]) -> None:
        if self.enabled:
            self._writer.writerows(rows)
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def train(
    settings: TrainSettings,
    start: str,
    table: TrainingTable,
    texts: TextLookup,
    out_dir: Path,
    loss_log: Path,
    resume_dir: Path | None = None,
) -> dict[str, float]:
    """Train from checkpoint/backbone ``start`` on ``table`` (texts from ``texts``); save
    to ``out_dir``, the loss of every step to ``loss_log``.

    With ``resume_dir``, the training state is saved there every
    ``settings.save_every_steps`` steps and when SIGTERM/SIGINT arrives (then
    :class:`~rank_distillm.training.resume.TrainingInterrupted` is raised), a run finding a state
    there continues from it, and the folder is removed once the checkpoint is written.
    The checkpoint is written to a temporary folder and renamed at the end, so an
    interrupted run never leaves a complete-looking checkpoint behind.
    """
    device_type, chosen, accelerator = _set_up(settings)
    model, tokenizer = _load_model(settings, start)
    queries = sampling.group_queries(table)
    usable = len(sampling.draw(queries, settings.sampler, 1, settings.depth, random.Random(0))[0])
    steps = total_optimizer_steps(settings, usable)

    fingerprint = _fingerprint(settings, start, table, accelerator.num_processes)
    state = resume.load(resume_dir, fingerprint, accelerator.process_index)
    if state is not None:
        model.load_state_dict(state.model)  # before accelerate wraps it
    scorer = accelerator.prepare(length_batches.ListScorer(model))
    optimisation = _optimisation(model, settings, steps, device_type, chosen)
    rng = random.Random(settings.seed)
    position = checkpointing.restore(state, optimisation, rng)
    model.train()

    loss_fn = losses.get_loss(settings.loss)
    average = None
    if settings.ema_decay is not None:
        saved = state.weight_average if state is not None else None
        average = weight_average.WeightAverage(model, settings.ema_decay, saved)
    run = _Run(
        settings, steps, device_type, chosen, accelerator, scorer, optimisation, loss_fn, average
    )
    builder = BatchBuilder(
        table, texts, PairEncoder(tokenizer, settings.query_length, settings.doc_length)
    )
    loader = _loader(run, builder, queries, rng, position)
    log = LossLog(
        loss_log,
        accelerator.is_main_process,
        state.folder / "loss.csv" if state is not None else None,
    )
    progress = _Progress(run, position, log)
    saver = (
        checkpointing.StateSaver(resume_dir, fingerprint, loss_log, settings.save_every_steps)
        if resume_dir is not None
        else None
    )
    try:
        _run_steps(run, loader, progress, saver, position.step)
    finally:
        progress.close()
        if isinstance(loader, Prefetcher):
            loader.close()
    seconds = progress.finish()
    if average is not None:
        average.copy_to_model()  # the checkpoint holds the average
    checkpointing.write_checkpoint(accelerator, run.model, tokenizer, out_dir, resume_dir)
    return {"steps": steps, "pairs": progress.pairs, "seconds": seconds, "queries": usable}


def _set_up(settings: TrainSettings) -> tuple[str, precisions.Precision, Accelerator]:
    """Where and in which precision to train, accelerate's process group (its processes
    must split a step evenly), and every random generator seeded."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    device_type = training_device(settings.device)
    chosen = precisions.choose(settings.precision, device_type)
    if chosen.dtype == "fp16" and device_type != "cuda":
        raise ValueError("precision: fp16 training needs a CUDA GPU; use bf16 or fp32 on a CPU")
    accelerator = Accelerator(cpu=device_type == "cpu")
    processes = accelerator.num_processes
    if settings.queries_per_step % (processes * settings.accumulation_steps):
        raise ValueError(
            f"queries_per_step ({settings.queries_per_step}) must be a multiple of "
            f"accumulation_steps ({settings.accumulation_steps}) x training processes "
            f"({processes})"
        )
    precisions.log_choice(chosen, "training")
    set_seed(settings.seed)
    return device_type, chosen, accelerator


def _load_model(
    settings: TrainSettings, start: str
) -> tuple[CrossEncoder, PreTrainedTokenizerBase]:
    """The start checkpoint (or a backbone with a fresh head) at the settings' lengths."""
    model, tokenizer = load_cross_encoder(
        start, settings.query_length, settings.doc_length, seed=settings.seed
    )
    model.query_length, model.doc_length = settings.query_length, settings.doc_length
    check_lengths(model, tokenizer, start)
    if settings.freeze_position_embeddings:
        model.freeze_position_embeddings()
    return model, tokenizer


def learning_rate_factor(step: int, settings: TrainSettings, steps: int) -> float:
    """The share of the learning rate that optimiser step ``step`` (from 0) of ``steps``
    uses: ``(step + 1) / warmup_steps`` during the warm-up (so no step trains at rate 0),
    then 1 (``constant``, the paper's) or, for ``linear``, ``(steps - step) / (steps -
    warmup_steps)``: the decay of transformers' ``get_linear_schedule_with_warmup``, whose
    warm-up would start at rate 0 instead."""
    warmup = settings.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    if settings.lr_schedule == "constant":
        return 1.0
    return max(0.0, (steps - step) / max(1, steps - warmup))


def fused_adamw(device_type: str) -> bool | None:
    """AdamW's ``fused`` argument for training on ``device_type``: True under portable
    numerics on a CPU (the default AdamW takes its square roots from MKL's vector math
    library, whose results, not correctly rounded, follow the CPU: docs/benchmarks.md,
    "Portable numerics across CPU makers"; the fused kernel uses ATen's own vector code,
    which the pinned ATen kernels make the same everywhere), else torch's default."""
    return True if device_type == "cpu" and portable_numerics_enabled() else None


def _optimisation(
    model: CrossEncoder,
    settings: TrainSettings,
    steps: int,
    device_type: str,
    chosen: precisions.Precision,
) -> checkpointing.Optimisation:
    """The paper's AdamW over the trainable parameters at a constant rate (after the
    optional linear warm-up; or decaying linearly), and a loss scaler that only fp16 uses;
    the update is fused under portable numerics on a CPU (`fused_adamw`)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable,
        lr=settings.learning_rate,
        betas=settings.adam_betas,
        eps=settings.adam_epsilon,
        weight_decay=settings.weight_decay,
        fused=fused_adamw(device_type),
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, settings, steps)
    )
    scaler = torch.amp.GradScaler(device_type, enabled=chosen.dtype == "fp16")
    return checkpointing.Optimisation(optimizer, scheduler, scaler)


@dataclass
class _Run:
    """A set-up run: its settings and length, where and in which precision it trains,
    the model as accelerate prepared it, and what an optimiser step updates."""

    settings: TrainSettings
    steps: int
    device_type: str
    precision: precisions.Precision
    accelerator: Accelerator
    scorer: torch.nn.Module  # a ListScorer around the model, prepared by accelerate
    optimisation: checkpointing.Optimisation
    loss_fn: losses.LossFn
    average: weight_average.WeightAverage | None = None

    @property
    def processes(self) -> int:
        return self.accelerator.num_processes

    @property
    def model(self) -> CrossEncoder:
        """The cross-encoder out of accelerate's wrapping."""
        return self.accelerator.unwrap_model(self.scorer).model

    @property
    def flush_every(self) -> int:
        """Steps between reading losses back: reading a GPU loss waits for the GPU."""
        return 1 if self.device_type == "cpu" else 25

    def optimiser_step(self, item: StepBatches) -> torch.Tensor:
        """One optimiser step on this process's micro-batches of ``item`` (and the weight
        average's, with ``ema_decay``); returns this process's part of the step's loss."""
        accelerator, optimisation = self.accelerator, self.optimisation
        step_loss = torch.zeros((), device=accelerator.device)
        for i, (batch, weight) in enumerate(zip(item.micro_batches, item.weights, strict=True)):
            batch = _to_device(batch, accelerator.device)
            final = i == len(item.micro_batches) - 1
            sync = contextlib.nullcontext() if final else accelerator.no_sync(self.scorer)
            with sync:
                with self.precision.autocast(self.device_type):
                    scores = self.scorer(batch)
                loss = self.loss_fn(scores, batch["targets"], batch["mask"])
                # DistributedDataParallel averages gradients over processes.
                optimisation.scaler.scale(loss * (weight * self.processes)).backward()
            step_loss += loss.detach() * weight
        optimisation.scaler.step(optimisation.optimizer)
        optimisation.scaler.update()
        optimisation.scheduler.step()
        optimisation.optimizer.zero_grad(set_to_none=True)
        if self.average is not None:
            self.average.update()
        return step_loss

    def stop_requested(self, signals: resume.StopSignals, step: int) -> bool:
        """Whether to stop after ``step``; all processes agree (they compare notes every
        ``flush_every`` steps, since on a GPU that waits for the device)."""
        if self.processes == 1:
            return signals.received is not None
        if step % self.flush_every:
            return False
        flag = torch.tensor(float(signals.received is not None), device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, reduction="sum") > 0)


@dataclass(frozen=True)
class _StepBuilder:
    """One step's samples into this process's micro-batches, each weighted by its share
    of the step's loss denominator (:mod:`rank_distillm.training.global_batch`)."""

    builder: BatchBuilder
    loss: str
    process: int
    processes: int
    accumulation_steps: int
    chunk: int  # pairs per length-sorted chunk
    pin: bool  # page-locked copies, for a GPU

    def __call__(self, step: StepSamples) -> StepBatches:
        parts = shares(step.samples, self.process, self.processes, self.accumulation_steps)
        total = global_batch.denominator(self.loss, *targets_and_mask(step.samples))
        micro_batches, weights = [], []
        for part in parts:
            batch = length_batches.sort_by_length(self.builder.batch(part), self.chunk)
            own = global_batch.denominator(self.loss, batch["targets"], batch["mask"])
            micro_batches.append(_pinned(batch) if self.pin else batch)
            weights.append(own / max(total, 1.0))
        return StepBatches(step, micro_batches, weights, sum(len(s.rows) for s in step.samples))


def _loader(
    run: _Run,
    builder: BatchBuilder,
    queries: list[sampling.QueryList],
    rng: random.Random,
    position: checkpointing.Position,
) -> Iterator[StepBatches]:
    """This process's batches of every step from ``position`` on."""
    settings = run.settings
    build = _StepBuilder(
        builder,
        settings.loss,
        run.accelerator.process_index,
        run.processes,
        settings.accumulation_steps,
        chunk=length_batches.pairs_per_chunk(
            run.device_type, run.model.backbone.config.hidden_size
        ),
        pin=run.device_type == "cuda",
    )
    stream = sample_steps(
        queries,
        settings.sampler,
        settings.negatives,
        settings.depth,
        settings.queries_per_step,
        rng,
        position.epoch,
        position.skip,
    )
    # On a GPU the CPU is free to build batches ahead, in several threads (tokenising
    # runs without the GIL); on a CPU an extra busy thread would only slow torch down.
    if run.device_type == "cuda":
        return Prefetcher(stream, build, workers=4, depth=16)
    return map(build, stream)


class _Progress:
    """How the run goes: each step's loss in the loss log (read back every
    ``flush_every`` steps), the progress bar, a log line every tenth of the run, and the
    pairs and seconds trained, counting what a resumed run did before."""

    def __init__(self, run: _Run, position: checkpointing.Position, log: LossLog) -> None:
        self.run, self.log = run, log
        self.bar = tqdm(
            total=run.steps,
            initial=position.step,
            desc="training",
            unit="step",
            mininterval=5,
            disable=not run.accelerator.is_main_process,
        )
        self.report_every = max(1, run.steps // 10)
        self.pending: list[tuple[int, int, torch.Tensor, float]] = []
        self.recent: list[float] = []
        self.pairs_before, self.seconds_before = position.pairs, position.seconds
        self.pairs, self.started = position.pairs, time.perf_counter()

    def add(
        self, step: int, epoch: int, loss: torch.Tensor, learning_rate: float, pairs: int
    ) -> None:
        """Count step ``step``'s pairs and keep its loss, read back in turn."""
        self.pairs += pairs
        self.pending.append((step, epoch, loss, learning_rate))
        if len(self.pending) >= self.run.flush_every or step == self.run.steps:
            self.flush()

    def seconds(self) -> float:
        """Seconds trained, this run and the runs it resumes."""
        return self.seconds_before + time.perf_counter() - self.started

    def pairs_per_second(self) -> float:
        """This run's speed."""
        return (self.pairs - self.pairs_before) / max(time.perf_counter() - self.started, 1e-9)

    def flush(self) -> None:
        """The kept losses (summed over processes) to the log, the bar and the report."""
        if not self.pending:
            return
        values = torch.stack([loss for _, _, loss, _ in self.pending])
        if self.run.processes > 1:
            values = self.run.accelerator.reduce(values, reduction="sum")
        elapsed = self.seconds()
        rows = [
            (step, epoch, f"{value:.6f}", rate, f"{elapsed:.2f}")
            for (step, epoch, _, rate), value in zip(self.pending, values.tolist(), strict=True)
        ]
        self.log.write(rows)
        self.recent.extend(values.tolist())
        del self.recent[:-100]
        rate = self.pairs_per_second()
        self.bar.update(len(self.pending))
        self.bar.set_postfix(
            loss=f"{self.recent[-1]:.4f}", pairs_per_s=f"{rate:.0f}", refresh=False
        )
        steps = self.run.steps
        if any(step % self.report_every == 0 or step == steps for step, *_ in self.pending):
            LOGGER.info(
                "step %d/%d (epoch %d): loss %.4f (mean of the last %d steps), %.0f pairs/s",
                self.pending[-1][0],
                steps,
                self.pending[-1][1],
                sum(self.recent) / len(self.recent),
                len(self.recent),
                rate,
            )
        self.pending.clear()

    def close(self) -> None:
        self.bar.close()
        self.log.close()

    def finish(self) -> float:
        """Log what the run did; returns the seconds trained."""
        seconds = self.seconds()
        LOGGER.info(
            "trained %d steps on %d pairs in %.1f s (%.0f pairs/s this run)",
            self.run.steps,
            self.pairs,
            seconds,
            self.pairs_per_second(),
        )
        return seconds


def _run_steps(
    run: _Run,
    loader: Iterator[StepBatches],
    progress: _Progress,
    saver: checkpointing.StateSaver | None,
    first_step: int,
) -> None:
    """The steps after ``first_step``. With a resume folder, the state is saved every
    ``save_every_steps`` steps; a stop signal ends the run after the step it came in
    (saving the state first, where there is a resume folder)."""
    steps = run.steps
    with (
        deterministic(run.device_type),
        precisions.tf32(run.device_type),
        resume.StopSignals() as signals,
    ):
        for step in range(first_step + 1, steps + 1):
            item = next(loader)
            learning_rate = run.optimisation.scheduler.get_last_lr()[0]  # the rate this step uses
            step_loss = run.optimiser_step(item)
            progress.add(step, item.step.epoch, step_loss, learning_rate, item.pairs)
            stop = step < steps and run.stop_requested(signals, step)
            if saver is not None and step < steps:
                if stop or step % saver.every == 0:
                    progress.flush()
                    saved = saver.save(
                        step,
                        item.step,
                        progress.pairs,
                        progress.seconds(),
                        run.model,
                        run.optimisation,
                        run.accelerator,
                        run.average,
                    )
                    if stop:
                        raise resume.TrainingInterrupted(
                            f"training stopped by {signals.received} after step {step} of "
                            f"{steps}; its state is in {saved}: run the job again to resume"
                        )
            elif stop:
                raise resume.TrainingInterrupted(
                    f"training stopped by {signals.received} after step {step} of {steps} "
                    "(no resume folder: nothing saved)"
                )


def _pinned(batch: dict[str, Any]) -> dict[str, Any]:
    """Page-locked copies, which the GPU copies from while the host works on."""
    return {
        key: value.pin_memory() if isinstance(value, torch.Tensor) else value
        for key, value in batch.items()
    }


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    if device.type == "cpu":
        return batch
    return {
        key: value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value
        for key, value in batch.items()
    }


def _fingerprint(
    settings: TrainSettings, start: str, table: TrainingTable, processes: int
) -> dict[str, Any]:
    """What a saved state must have been written for to be resumed: the settings (but
    how often states are saved), the start, the data and the number of processes."""
    values = dataclasses.asdict(settings)
    values.pop("save_every_steps")
    return {
        "settings": values,
        "start": str(start),
        "table_rows": len(table),
        "table_queries": len(table.query_ids),
        "processes": processes,
    }
