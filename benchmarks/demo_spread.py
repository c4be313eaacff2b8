"""The demo's figures over training seeds and thread counts (reported in the README).

Training a tiny model from scratch is sensitive to the floating-point order, which
depends on the number of threads (and on the CPU), and to the seed. This runs the whole
demo once per (seed, threads) in one working copy, each as its own experiment
(``results/spread-s<seed>-t<threads>/``), and prints nDCG@10 per system with the spread.

Run: ``python benchmarks/demo_spread.py --seeds 42 1 2 --threads 1 2`` (about 3 minutes
per variant on 2 idle cores).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.workflow_runner import copy_workflow, snakemake  # noqa: E402


def run_variant(workdir: Path, seed: int, threads: int) -> pd.DataFrame:
    name = f"spread-s{seed}-t{threads}"
    override = workdir / f"{name}.yaml"
    override.write_text(
        yaml.safe_dump(
            {
                "experiment": name,
                "training_defaults": {"seed": seed},
                "compute": {"train_threads": threads},
            }
        )
    )
    started = time.perf_counter()
    result = snakemake(workdir, "--cores", "2", "--configfile", "config.yaml", override.name)
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    zoo = pd.read_csv(workdir / "results" / name / "model-zoo.csv", index_col="system")
    columns = [c for c in zoo.columns if c.startswith("nDCG@10 ")]
    figures = zoo[columns].assign(seed=seed, threads=threads)
    print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, help="also write every variant's figures (CSV)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = copy_workflow(Path(tmp))
        frames = [
            run_variant(workdir, seed, threads) for seed in args.seeds for threads in args.threads
        ]
    figures = pd.concat(frames).reset_index()
    if args.out:
        figures.to_csv(args.out, index=False, float_format="%.4f")
    columns = [c for c in figures.columns if c.startswith("nDCG@10 ")]
    spread = figures.groupby("system", sort=False)[columns].agg(["min", "median", "max"])
    print(spread.round(3).to_string())


if __name__ == "__main__":
    main()
