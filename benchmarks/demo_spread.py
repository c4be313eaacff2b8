"""The demo's figures over training seeds, thread counts and numerics (README: "How much
the figures move"), and the tool the demo's recipe was tuned with.

The workflow runs once, in a working copy, up to what training needs (the generated
collections, BM25 runs, training tables). Then each variant (training seed x torch
threads x portable numerics) runs in a fresh process through the same package functions
as the rules: it pins the numerics first, builds the tiny backbone, trains the demo's
models in config order, re-ranks every (first stage, set) cell on one thread, and
evaluates nDCG@10 as the model zoo does (DL sets, their mean, the TIREx mean over
groups). Extra config files (``--config``) change the recipe for the preparation and the
variants alike. Prints every variant's figures and each row's spread (max - min).

Run (about 2 minutes per variant on 2 idle cores; ``--jobs 2`` runs one-thread variants
two at a time)::

    python benchmarks/demo_spread.py --seeds 42 1 2 --threads 2 --portable on
    python benchmarks/demo_spread.py --seeds 42 1 2 --threads 1 2 --portable off
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.workflow_runner import (  # noqa: E402
    WORKFLOW_FILES,
    copy_workflow,
    isolated_env,
    snakemake,
)

FIGURES = ("DL19", "DL20", "mean", "TIREx")


def experiment_of(workdir: Path, configs: list[Path]) -> Any:
    from rank_distillm import experiment
    from tests.helpers import load_config  # imports torch: not before a variant's pin

    files = [workdir / "config.yaml", *configs]
    return experiment.from_config(load_config(files, workdir / "schemas" / "config.schema.yaml"))


def prepare(workdir: Path, configs: list[Path]) -> None:
    """Run the workflow up to the training tables, first-stage runs and docstores."""
    exp = experiment_of(workdir, configs)
    targets = {exp.model_table(model) for model in exp.models}
    targets |= {exp.first_stage_run(stage, split) for stage, split in exp.pairs}
    for split in [*exp.splits, "train"]:
        targets |= set(exp.text_inputs(split))
    options = ["--configfile", "config.yaml", *map(str, configs)]
    result = snakemake(workdir, "--cores", "2", *options, "--", *sorted(targets))
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])


def train_models(exp: Any, out: Path, seed: int, only: list[str]) -> dict[str, Path]:
    """Build the tiny backbones and train every model (or those in ``only``) in config
    order; their checkpoints."""
    from rank_distillm import steps

    starts: dict[str, Path] = {}
    for name, backbone in exp.backbones.items():
        if backbone.tiny is not None:
            starts[name] = out / "backbones" / name
            steps.build_tiny_backbone(exp.manifests(), exp.collection, backbone.tiny, starts[name])
    checkpoints = {}
    for name, model in exp.models.items():
        if only and name not in only:
            continue
        if model.start in exp.models and model.start not in checkpoints:
            raise SystemExit(
                f"--models {name}: it starts from {model.start}, which this run does not "
                f"train; add --models {model.start}"
            )
        start = checkpoints.get(model.start) or starts.get(model.start) or exp.model_start(name)
        checkpoints[name] = out / "models" / name / "checkpoint"
        steps.train_checkpoint(
            str(start),
            Path(exp.model_table(name)),
            exp.manifests(),
            exp.train_dataset,
            checkpoints[name],
            checkpoints[name].parent / "loss.csv",
            {**model.settings, "seed": seed},
        )
    return checkpoints


def figures_of(exp: Any, checkpoints: dict[str, Path], out: Path) -> dict[str, dict[str, float]]:
    """Re-rank every cell on one thread and compute nDCG@10 as the model zoo does."""
    import pandas as pd
    import torch

    from rank_distillm import steps
    from rank_distillm.data import datasets
    from rank_distillm.data import trec as trec_io
    from rank_distillm.evaluation import measures as evaluate
    from rank_distillm.evaluation import tirex

    torch.set_num_threads(1)  # as the rerank rule
    figures = {}
    for name, checkpoint in checkpoints.items():
        jobs = [
            {
                "dataset": exp.dataset_id(split),
                "first_stage_run": exp.first_stage_run(stage, split),
                "out_run": str(out / "runs" / split / stage / f"{name}.run"),
                "depth": exp.first_stages[stage].depth,
            }
            for stage, split in exp.pairs
        ]
        rerank = exp.config["rerank"]
        steps.rerank_first_stages(
            str(checkpoint), exp.manifests(), jobs, rerank["batch_size"], name, "cpu",
            rerank["precision"],
        )  # fmt: skip
        values, tasks = {}, []
        for job, (_, split) in zip(jobs, exp.pairs, strict=True):
            qrels = datasets.qrels(datasets.load(job["dataset"], exp.manifests()))
            level = exp.evaluation[split].relevance_level
            run = trec_io.read_run(job["out_run"])
            per_query = evaluate.evaluate_run(run, qrels, ["nDCG@10"], relevance_level=level)
            if exp.evaluation[split].tirex:
                task = next(t.id for t in exp.tirex.used if t.dataset == job["dataset"])
                tasks.append(per_query.assign(system=name, task=task))
            else:
                values[exp.evaluation[split].label] = float(per_query["value"].mean())
        row = dict(values, mean=sum(values.values()) / len(values))
        if tasks:
            overall = tirex.aggregate(pd.concat(tasks), exp.tirex)["overall"]
            row["TIREx"] = float(overall[overall["aggregate"] == "groups_mean"]["value"].iloc[0])
        figures[exp.models[name].label] = row
    return figures


def loss_curve(path: Path, parts: int = 10) -> list[float]:
    """The mean training loss of each tenth of the steps."""
    import pandas as pd

    losses = pd.read_csv(path)["loss"]
    size = max(len(losses) // parts, 1)
    return [round(float(losses[i : i + size].mean()), 3) for i in range(0, len(losses), size)]


def variant(args: argparse.Namespace) -> None:
    """One variant, in this (fresh) process: pins first, then torch."""
    from rank_distillm.model import numerics

    numerics.pin(args.portable == "on")
    import logging

    import torch

    logging.basicConfig(level=logging.WARNING)
    os.chdir(args.workdir)
    torch.set_num_threads(args.threads)
    numerics.enforce()
    exp = experiment_of(Path("."), [Path(c).resolve() for c in args.config])
    out = Path(args.out)
    started, cpu = time.perf_counter(), time.process_time()
    checkpoints = train_models(exp, out, args.seed, args.models)
    trained, trained_cpu = time.perf_counter() - started, time.process_time() - cpu
    figures = figures_of(exp, checkpoints, out)
    result = {
        "figures": figures,
        "train_seconds": trained,
        "train_cpu_seconds": trained_cpu,
        "loss": {name: loss_curve(path.parent / "loss.csv") for name, path in checkpoints.items()},
    }
    print("RESULT " + json.dumps(result), flush=True)


def run_variant(
    workdir: Path,
    configs: list[Path],
    options: argparse.Namespace,
    seed: int,
    threads: int,
    portable: str,
) -> dict:
    tag = "-".join(c.stem for c in configs)
    name = f"{tag}-s{seed}-t{threads}-{'portable' if portable == 'on' else 'native'}".strip("-")
    command = [
        sys.executable, __file__, "variant", "--workdir", str(workdir), "--out",
        str(workdir / "spread" / name), "--seed", str(seed), "--threads", str(threads),
        "--portable", portable, *(x for c in configs for x in ("--config", str(c))),
        *(x for m in options.models for x in ("--models", m)),
    ]  # fmt: skip
    started = time.perf_counter()
    env = isolated_env(workdir)
    if options.passive:  # on a busy machine: spinning OpenMP threads slow everyone down 10x
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode or not lines:
        raise SystemExit(f"{name} failed:\n{result.stderr[-3000:]}")
    found = json.loads(lines[-1].removeprefix("RESULT "))
    seconds = time.perf_counter() - started
    training = f"training {found['train_seconds']:.0f} s, {found['train_cpu_seconds']:.0f} s CPU"
    print(f"{name}: {seconds:.0f} s ({training})", file=sys.stderr, flush=True)
    for model, curve in found["loss"].items():
        print(f"  {model} loss: {curve}", file=sys.stderr, flush=True)
    return {"variant": name, "seed": seed, "threads": threads, "portable": portable, **found}


def table(results: list[dict]) -> str:
    import pandas as pd

    rows = [
        {"variant": r["variant"], "system": system, **values}
        for r in results
        for system, values in r["figures"].items()
    ]
    frame = pd.DataFrame(rows).rename(columns=lambda c: c.replace(" (demo)", ""))
    columns = [c for c in FIGURES if c in frame.columns]
    wide = frame.pivot(index="variant", columns="system", values=columns).round(3)
    spread = frame.groupby("system", sort=False)[columns].agg(["min", "max"])
    for column in columns:
        spread[(column, "spread")] = spread[(column, "max")] - spread[(column, "min")]
    return f"{wide.to_string()}\n\n{spread.sort_index(axis=1).round(3).to_string()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--portable", choices=["on", "off"], nargs="+", default=["on"])
    parser.add_argument("--config", type=Path, action="append", default=[], help="extra config")
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the working copy here")
    parser.add_argument("--jobs", type=int, default=1, help="variants run at once")
    parser.add_argument("--passive", action="store_true", help="OMP_WAIT_POLICY=PASSIVE")
    parser.add_argument("--models", action="append", default=[], help="train only these")
    parser.add_argument("--out", type=Path, help="also write every variant's figures (JSON)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        for name in WORKFLOW_FILES:  # a kept working copy gets this checkout's workflow
            target = workdir / name
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        copy_workflow(workdir)
        configs = [c.resolve() for c in args.config]
        prepare(workdir, configs)
        variants = [
            (s, t, p) for p in args.portable for t in args.threads for s in args.seeds
        ]  # fmt: skip
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda v: run_variant(workdir, configs, args, *v), variants))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "variant":
        parser = argparse.ArgumentParser()
        parser.add_argument("command")
        for option in ("--workdir", "--out", "--portable"):
            parser.add_argument(option, required=True)
        parser.add_argument("--seed", type=int, required=True)
        parser.add_argument("--threads", type=int, required=True)
        parser.add_argument("--config", action="append", default=[])
        parser.add_argument("--models", action="append", default=[])
        variant(parser.parse_args())
    else:
        main()
