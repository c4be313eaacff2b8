"""One timed side of the engine benchmark, run inside the virtualenv of the library it times.

``python engine_sides.py SYSTEM TASK WORKLOAD_DIR --threads 2 --precision fp32``
prints one JSON line: ``{"pairs": ..., "seconds": ..., "cpu_seconds": ...}``.
Systems: ``rank-distillm`` (``rerank.rerank``; ``train.train``), ``lightning-ir``
(``CrossEncoderModule.score``; ``LightningIRTrainer.fit`` with RankNet) and
``sentence-transformers`` (``CrossEncoder.predict``, re-ranking only). Re-ranking is
timed from the texts to the scores (tokenisation included); training from the start of
the first optimizer step to the end of the last. Imports and model loading are not timed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine_workload  # noqa: E402


def autocast(precision: str, device: str):
    import torch

    if precision == "bf16":
        return torch.autocast(device.split(":")[0], dtype=torch.bfloat16)
    return contextlib.nullcontext()


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(function, device: str) -> tuple[float, float]:
    synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    synchronize(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def ours_rerank(data: dict, backbone: Path, args: argparse.Namespace) -> dict:
    import pandas as pd

    from rank_distillm.evaluation.rerank import rerank
    from rank_distillm.model.checkpoints import load_cross_encoder
    from rank_distillm.model.pair_encoder import PairEncoder

    settings = data["settings"]
    model, tokenizer = load_cross_encoder(
        str(backbone), settings["query_length"], settings["doc_length"]
    )
    encoder = PairEncoder(tokenizer, settings["query_length"], settings["doc_length"])
    rows = [
        (item["query_id"], doc_id, rank, 0.0)
        for item in data["rerank"]
        for rank, doc_id in enumerate(item["doc_ids"], start=1)
    ]
    run = pd.DataFrame(rows, columns=["query_id", "doc_id", "rank", "score"])
    queries = {item["query_id"]: item["query"] for item in data["rerank"]}
    docs = {
        doc_id: text
        for item in data["rerank"]
        for doc_id, text in zip(item["doc_ids"], item["docs"], strict=True)
    }

    def score() -> None:
        rerank(
            model,
            encoder,
            run,
            queries,
            docs,
            depth=len(run),
            batch_size=args.batch_size,
            device=args.device,
            precision=args.precision,
        )

    seconds, cpu = timed(score, args.device)
    return {"pairs": len(run), "seconds": seconds, "cpu_seconds": cpu}


def ours_train(data: dict, backbone: Path, args: argparse.Namespace) -> dict:
    """The adapter to ``rank_distillm.training.loop``: the only code that knows its signature."""
    import tempfile

    import pandas as pd

    from rank_distillm.data.texts import MappingTexts
    from rank_distillm.training.loop import TrainSettings, train
    from rank_distillm.training.tables import TrainingTable

    settings = data["settings"]
    rows = [
        (item["query_id"], doc_id, rank, target)
        for item in data["train"]
        for rank, (doc_id, target) in enumerate(
            zip(item["doc_ids"], item["targets"], strict=True), start=1
        )
    ]
    table = TrainingTable.from_frame(
        pd.DataFrame(rows, columns=["query_id", "doc_id", "rank", "target"])
    )
    texts = MappingTexts(
        {item["query_id"]: item["query"] for item in data["train"]},
        {
            doc_id: text
            for item in data["train"]
            for doc_id, text in zip(item["doc_ids"], item["docs"], strict=True)
        },
    )
    steps = len(data["train"]) // settings["queries_per_step"]
    train_settings = TrainSettings(
        loss="ranknet",
        sampler="top",
        depth=settings["passages_per_query"],
        steps=steps,
        queries_per_step=settings["queries_per_step"],
        learning_rate=1e-5,
        precision=args.precision,
        query_length=settings["query_length"],
        doc_length=settings["doc_length"],
        freeze_position_embeddings=False,  # as lightning-ir: the same parameters train
        seed=settings["seed"],
        device="cuda" if args.device.startswith("cuda") else "cpu",
    )
    with tempfile.TemporaryDirectory() as tmp:
        loss_log = Path(tmp) / "loss.csv"
        cpu = time.process_time()
        summary = train(train_settings, str(backbone), table, texts, Path(tmp) / "model", loss_log)
        cpu = time.process_time() - cpu  # includes loading and tokenising: an upper bound
        seconds = float(pd.read_csv(loss_log)["seconds"].iloc[-1])
    return {"pairs": int(summary["pairs"]), "seconds": seconds, "cpu_seconds": cpu}


def lightning_ir_module(backbone: Path, settings: dict, loss_functions=None):
    from lightning_ir import CrossEncoderModule
    from lightning_ir.models.cross_encoders.mono import MonoConfig

    config = MonoConfig(
        query_length=settings["query_length"], doc_length=settings["doc_length"], linear_bias=True
    )
    return CrossEncoderModule(
        model_name_or_path=str(backbone), config=config, loss_functions=loss_functions
    )


def lightning_ir_rerank(data: dict, backbone: Path, args: argparse.Namespace) -> dict:
    import torch

    module = lightning_ir_module(backbone, data["settings"]).to(args.device).eval()

    def run() -> None:
        with torch.inference_mode(), autocast(args.precision, args.device):
            for item in data["rerank"]:
                module.score(item["query"], item["docs"])

    seconds, cpu = timed(run, args.device)
    pairs = sum(len(item["docs"]) for item in data["rerank"])
    return {"pairs": pairs, "seconds": seconds, "cpu_seconds": cpu}


def lightning_ir_train(data: dict, backbone: Path, args: argparse.Namespace) -> dict:
    import torch
    from lightning import Callback
    from lightning_ir import LightningIRDataModule, LightningIRTrainer, RankNet
    from lightning_ir.data import RankSample
    from torch.utils.data import DataLoader

    torch.manual_seed(data["settings"]["seed"])
    module = lightning_ir_module(backbone, data["settings"], loss_functions=[RankNet()])
    module.set_optimizer(torch.optim.AdamW, lr=1e-5)
    samples = [
        RankSample(
            item["query_id"],
            item["query"],
            item["doc_ids"],
            item["docs"],
            targets=torch.tensor(item["targets"]),
        )
        for item in data["train"]
    ]
    per_step = data["settings"]["queries_per_step"]
    steps = len(samples) // per_step
    loader = DataLoader(
        samples, batch_size=per_step, collate_fn=LightningIRDataModule()._collate_fn
    )

    class StepClock(Callback):
        """Time from the start of the first step to the end of the last one."""

        def __init__(self) -> None:
            self.ends: list[tuple[float, float]] = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if not self.ends:
                synchronize(args.device)
                self.ends.append((time.perf_counter(), time.process_time()))

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            synchronize(args.device)
            self.ends.append((time.perf_counter(), time.process_time()))

    clock = StepClock()
    precision = {"fp32": "32-true", "bf16": "bf16-mixed"}[args.precision]
    trainer = LightningIRTrainer(
        max_steps=steps,
        accelerator="gpu" if args.device.startswith("cuda") else "cpu",
        devices=1,
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )
    trainer.fit(module, train_dataloaders=loader)
    (wall0, cpu0), (wall1, cpu1) = clock.ends[0], clock.ends[-1]
    pairs = sum(len(item["docs"]) for item in data["train"][: steps * per_step])
    return {"pairs": pairs, "seconds": wall1 - wall0, "cpu_seconds": cpu1 - cpu0}


def sentence_transformers_rerank(data: dict, backbone: Path, args: argparse.Namespace) -> dict:
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(backbone), num_labels=1, device=args.device)
    pairs = [(item["query"], doc) for item in data["rerank"] for doc in item["docs"]]

    def run() -> None:
        with autocast(args.precision, args.device):
            model.predict(pairs, batch_size=args.batch_size, show_progress_bar=False)

    seconds, cpu = timed(run, args.device)
    return {"pairs": len(pairs), "seconds": seconds, "cpu_seconds": cpu}


SIDES = {
    ("rank-distillm", "rerank"): ours_rerank,
    ("rank-distillm", "train"): ours_train,
    ("lightning-ir", "rerank"): lightning_ir_rerank,
    ("lightning-ir", "train"): lightning_ir_train,
    ("sentence-transformers", "rerank"): sentence_transformers_rerank,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("system", choices=sorted({system for system, _ in SIDES}))
    parser.add_argument("task", choices=["rerank", "train"])
    parser.add_argument("workload", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    side = SIDES.get((args.system, args.task))
    if side is None:
        raise SystemExit(f"{args.system} has no {args.task} side in this benchmark")
    data = engine_workload.load(args.workload)
    print(json.dumps(side(data, args.workload / "backbone", args)))


if __name__ == "__main__":
    main()
