"""Fine-tuning a cross-encoder on a training table with accelerate.

accelerate places the model (CPU, one or several GPUs under ``accelerate launch``),
runs bf16 mixed precision on GPUs and accumulates gradients. The optimiser is the
paper's AdamW with a constant learning rate (an optional linear warm-up helps tiny
models trained from scratch).
"""

from __future__ import annotations

import csv
import logging
import os
import queue
import random
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from rank_distillm import losses, sampling
from rank_distillm.model import CrossEncoder, PairEncoder, load_cross_encoder, save_cross_encoder
from rank_distillm.texts import TextLookup
from rank_distillm.training_tables import TrainingTable

LOGGER = logging.getLogger(__name__)


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
    precision: str = "auto"
    query_length: int = 32
    doc_length: int = 256
    freeze_position_embeddings: bool = True
    seed: int = 42

    def __post_init__(self) -> None:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("a training stage needs exactly one of 'steps' and 'epochs'")
        if self.queries_per_step % self.accumulation_steps:
            raise ValueError("queries_per_step must be a multiple of accumulation_steps")
        losses.get_loss(self.loss)  # fails early on a typo
        if self.sampler not in sampling.SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose one of {sampling.SAMPLERS}")

    def mixed_precision(self) -> str:
        if self.precision == "auto":
            return "bf16" if torch.cuda.is_available() else "no"
        return self.precision


class BatchBuilder:
    """Token ids for samples. Passage texts are fetched and tokenised when first drawn,
    so no corpus is held in memory; tokens are kept for up to ``cache_size`` passages
    (all of a small table's, which then costs no lookups after the first epoch) and for
    every query (each recurs every epoch)."""

    def __init__(
        self,
        table: TrainingTable,
        texts: TextLookup,
        encoder: PairEncoder,
        cache_size: int = 500_000,
    ) -> None:
        self.table, self.texts, self.encoder = table, texts, encoder
        self.cache_size = cache_size
        self._query_tokens: dict[str, list[int]] = {}
        self._doc_tokens: dict[str, list[int]] = {}

    def batch(self, samples: list[sampling.Sample]) -> dict[str, torch.Tensor]:
        new = [q for q in dict.fromkeys(s.query_id for s in samples) if q not in self._query_tokens]
        if new:
            tokens = self.encoder.query_ids(self.texts.query_texts(new))
            self._query_tokens.update(zip(new, tokens, strict=True))
        doc_ids = self.table.doc_ids(row for sample in samples for row in sample.rows)
        missing = [d for d in dict.fromkeys(doc_ids) if d not in self._doc_tokens]
        if missing:
            if len(self._doc_tokens) + len(missing) > self.cache_size:
                self._doc_tokens.clear()  # then this batch needs all its passages again
                missing = list(dict.fromkeys(doc_ids))
            tokens = self.encoder.doc_ids(self.texts.doc_texts(missing))
            self._doc_tokens.update(zip(missing, tokens, strict=True))
        queries = [self._query_tokens[s.query_id] for s in samples for _ in s.rows]
        inputs = self.encoder.collate(queries, [self._doc_tokens[d] for d in doc_ids])
        width = max(len(sample.rows) for sample in samples)
        targets = torch.zeros(len(samples), width)
        mask = torch.zeros(len(samples), width, dtype=torch.bool)
        for i, sample in enumerate(samples):
            targets[i, : len(sample.rows)] = torch.tensor(sample.targets)
            mask[i, : len(sample.rows)] = True
        return {**inputs, "targets": targets, "mask": mask}


class Prefetcher:
    """Runs an iterator in a background thread, ``depth`` items ahead, so building
    batches (text lookups, tokenisation, collation) overlaps the model's work.

    The iterator runs in one thread in order, so seeded sampling stays deterministic.
    An exception in the thread is raised in the consumer.
    """

    _END = object()

    def __init__(self, iterator: Iterator, depth: int = 8) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iterator,), daemon=True)
        self._thread.start()

    def _run(self, iterator: Iterator) -> None:
        try:
            for item in iterator:
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
        except BaseException as error:  # handed to the consumer
            self._queue.put(error)
            return
        self._queue.put(self._END)

    def __iter__(self) -> Prefetcher:
        return self

    def __next__(self):
        item = self._queue.get()
        if item is self._END:
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def batches(
    queries: list[sampling.QueryList],
    settings: TrainSettings,
    rng: random.Random,
    micro_batch: int,
) -> Iterator[tuple[int, list[sampling.Sample]]]:
    """Micro-batches of freshly drawn samples, epoch after epoch, with the epoch number."""
    epoch = 0
    while True:
        order = queries[:]
        rng.shuffle(order)
        samples, skipped = sampling.draw(
            order, settings.sampler, settings.negatives, settings.depth, rng
        )
        if epoch == 0 and skipped:
            LOGGER.warning(
                "%d of %d training queries skipped by the %s sampler "
                "(no relevant passage or too few candidates)",
                skipped,
                len(queries),
                settings.sampler,
            )
        if not samples:
            raise ValueError("no training query has a usable sample")
        for start in range(0, len(samples) - micro_batch + 1, micro_batch):
            yield epoch, samples[start : start + micro_batch]
        epoch += 1


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


def train(
    settings: TrainSettings,
    start: str,
    table: TrainingTable,
    texts: TextLookup,
    out_dir: Path,
    loss_log: Path,
) -> dict[str, float]:
    """Train from checkpoint/backbone ``start`` on ``table`` (texts from ``texts``); save
    to ``out_dir``.

    The checkpoint is written to a temporary folder and renamed at the end, so an
    interrupted run never leaves a complete-looking checkpoint behind.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    set_seed(settings.seed)
    rng = random.Random(settings.seed)
    accelerator = Accelerator(
        mixed_precision=settings.mixed_precision(),
        gradient_accumulation_steps=settings.accumulation_steps,
    )
    model, tokenizer = load_cross_encoder(
        start, settings.query_length, settings.doc_length, seed=settings.seed
    )
    model.query_length, model.doc_length = settings.query_length, settings.doc_length
    if settings.freeze_position_embeddings:
        model.freeze_position_embeddings()
    encoder = PairEncoder(tokenizer, settings.query_length, settings.doc_length)
    builder = BatchBuilder(table, texts, encoder)
    queries = sampling.group_queries(table)
    usable = len(sampling.draw(queries, settings.sampler, 1, settings.depth, random.Random(0))[0])
    steps = total_optimizer_steps(settings, usable)
    loss_fn = losses.get_loss(settings.loss)

    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=settings.learning_rate,
        betas=settings.adam_betas,
        eps=settings.adam_epsilon,
        weight_decay=settings.weight_decay,
    )
    warmup = max(settings.warmup_steps, 0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    model.train()

    micro_batch = settings.queries_per_step // settings.accumulation_steps
    stream = batches(queries, settings, rng, micro_batch * accelerator.num_processes)

    def built() -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
        for epoch, samples in stream:
            own = samples[accelerator.process_index :: accelerator.num_processes]
            yield epoch, builder.batch(own)

    # On a GPU the CPU is free to build batches ahead; on a CPU a busy extra thread
    # would only slow torch's own threads down.
    loader = Prefetcher(built()) if accelerator.device.type == "cuda" else built()
    loss_log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    pairs = 0
    # Under `accelerate launch` every process trains; only the main one writes.
    log_path = loss_log if accelerator.is_main_process else Path(os.devnull)
    with log_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "epoch", "loss", "learning_rate", "seconds"])
        progress = tqdm(
            total=steps,
            desc="training",
            unit="step",
            mininterval=5,
            disable=not accelerator.is_main_process,
        )
        step, running = 0, 0.0
        while step < steps:
            epoch, built_batch = next(loader)
            batch = {key: value.to(accelerator.device) for key, value in built_batch.items()}
            learning_rate = scheduler.get_last_lr()[0]  # the rate this step uses
            with accelerator.accumulate(model):
                scores = _scores(model, batch)
                loss = loss_fn(scores, batch["targets"], batch["mask"])
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            pairs += int(batch["mask"].sum())
            running += loss.item() / settings.accumulation_steps
            if accelerator.sync_gradients:
                step += 1
                writer.writerow(
                    [
                        step,
                        epoch,
                        f"{running:.6f}",
                        learning_rate,
                        f"{time.perf_counter() - started:.2f}",
                    ]
                )
                progress.update(1)
                progress.set_postfix(loss=f"{running:.4f}", refresh=False)
                running = 0.0
        progress.close()
    if isinstance(loader, Prefetcher):
        loader.close()
    seconds = time.perf_counter() - started
    LOGGER.info(
        "trained %d steps on %d pairs in %.1f s (%.0f pairs/s)",
        steps,
        pairs,
        seconds,
        pairs / seconds,
    )

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        tmp_dir = out_dir.with_name(f".tmp-{out_dir.name}")
        shutil.rmtree(tmp_dir, ignore_errors=True)
        save_cross_encoder(accelerator.unwrap_model(model), tokenizer, tmp_dir)
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp_dir.rename(out_dir)
    return {"steps": steps, "pairs": pairs, "seconds": seconds, "queries": usable}


def _scores(model: CrossEncoder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Score the valid pairs of a padded (queries x passages) batch."""
    flat = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        token_type_ids=batch["token_type_ids"],
    )
    scores = torch.zeros(batch["mask"].shape, dtype=flat.dtype, device=flat.device)
    return scores.masked_scatter(batch["mask"], flat)
