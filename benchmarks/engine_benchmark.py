"""Side-by-side speed of re-ranking and training: this project, lightning-ir 0.0.6 and
sentence-transformers' ``CrossEncoder`` on issue 6's seeded workload.

    python benchmarks/engine_benchmark.py                 # CPU, fp32 and bf16, 2 threads
    python benchmarks/engine_benchmark.py --gpu           # ELECTRA-base, 32 + 256 tokens, bf16
    python benchmarks/engine_benchmark.py --gpu --dry-run # the GPU mode in miniature, on a CPU

Each library runs in its own virtualenv under ``.bench/`` (created on first use from
PyPI: lightning-ir needs transformers 4, sentence-transformers 6.2 needs transformers 5),
each measurement in a fresh process, the systems interleaved round after round; the
median round is reported, with pairs per CPU-second beside pairs per second (on a
shared machine, wall-clock depends on the neighbours; with 2 threads, CPU time also
counts OpenMP's spin-waiting). Results also go to ``.bench/engine-*.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import engine_gpu  # noqa: E402
import engine_workload  # noqa: E402

TORCH = "torch==2.13.0"  # the project's pin, from local disk
#: Virtualenvs and what goes into each (issue 6 names these versions).
ENVIRONMENTS = {
    "lightning-ir": ["lightning-ir==0.0.6", "transformers<5", "datasets<4.5", TORCH],
    "sentence-transformers": ["sentence-transformers==6.2.0", "transformers==5.24.0", TORCH],
}


def python_of(system: str, bench_dir: Path) -> str:
    """The interpreter a system runs under, its virtualenv made on first use."""
    if system == "rank-distillm":
        return sys.executable
    venv = bench_dir / system
    marker = venv / "requirements.json"
    wanted = ENVIRONMENTS[system]
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return str(venv / "bin" / "python")
    print(f"installing {system} into {venv}: {' '.join(wanted)}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *wanted], check=True)
    marker.write_text(json.dumps(wanted))
    return str(venv / "bin" / "python")


def run_side(python: str, system: str, task: str, workload: Path, args, precision: str) -> dict:
    command = [
        python,
        str(HERE / "engine_sides.py"),
        system,
        task,
        str(workload),
        "--threads",
        str(args.threads),
        "--precision",
        precision,
        "--device",
        args.device,
        "--batch-size",
        str(args.batch_size),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{system} {task} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def matmul_peak(threads: int, device: str, dtype: str) -> float:
    """FLOP/s of the best of 5 x 3 large square matmuls (2048 on a CPU, 8192 on a GPU)
    in ``dtype`` (``fp32`` or ``bf16``): this device's practical peak."""
    import torch

    torch.set_num_threads(threads)
    n = 2048 if device == "cpu" else 8192
    kind = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    a = torch.randn(n, n, dtype=kind, device=device)
    b = torch.randn(n, n, dtype=kind, device=device)
    best = 0.0
    for _ in range(5):
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(3):
            a @ b
        if device != "cpu":
            torch.cuda.synchronize()
        best = max(best, 3 * 2 * n**3 / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bench-dir", type=Path, default=HERE.parent / ".bench")
    parser.add_argument("--gpu", action="store_true", help="ELECTRA-base, bf16, on cuda")
    parser.add_argument("--dry-run", action="store_true", help="the GPU mode, tiny, on CPU")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--systems", default="rank-distillm,lightning-ir,sentence-transformers")
    parser.add_argument("--tasks", default="rerank,train")
    parser.add_argument(
        "--precisions", default=None, help="fp32,bf16 on CPU (default); bf16 with --gpu"
    )
    args = parser.parse_args()
    gpu_mode = args.gpu or args.dry_run
    args.device = "cuda" if args.gpu and not args.dry_run else "cpu"
    args.batch_size = args.batch_size or (256 if args.gpu else 32)
    precisions = (args.precisions or ("bf16" if gpu_mode else "fp32,bf16")).split(",")
    if args.dry_run:
        workload, mode = engine_workload.dry_run_workload(), "dry-run"
    elif args.gpu:
        workload, mode = engine_workload.gpu_workload(), "gpu"
    else:
        workload, mode = engine_workload.Workload(), "cpu"

    workload_dir = args.bench_dir / f"workload-{mode}"
    if not (workload_dir / "workload.json").is_file():
        engine_workload.build(workload, workload_dir)
    data = engine_workload.load(workload_dir)
    if engine_workload.settings_of(data) != workload:
        engine_workload.build(workload, workload_dir)
        data = engine_workload.load(workload_dir)

    systems = args.systems.split(",")
    pythons = {system: python_of(system, args.bench_dir) for system in systems}
    sides = [
        (system, task, precision)
        for task in args.tasks.split(",")
        for precision in precisions
        for system in systems
        if not (system == "sentence-transformers" and task == "train")
    ]
    results: dict[tuple[str, str, str], list[dict]] = {side: [] for side in sides}
    for round_ in range(args.rounds):
        for side in sides:
            system, task, precision = side
            measured = run_side(pythons[system], system, task, workload_dir, args, precision)
            results[side].append(measured)
            print(
                f"round {round_ + 1}: {system} {task} {precision}: "
                f"{measured['pairs'] / measured['seconds']:.1f} pairs/s",
                file=sys.stderr,
                flush=True,
            )

    peaks = measure_peaks(args, precisions)
    rows = []
    for (system, task, precision), runs in results.items():
        rates = [run["pairs"] / run["seconds"] for run in runs]
        rate = statistics.median(rates)
        pairs = runs[0]["pairs"]
        flops = engine_workload.pair_flops(data, task) * (3 if task == "train" else 1)
        flops *= pairs / sum(len(item["docs"]) for item in data[task])
        seconds = pairs / rate
        rows.append(
            {
                "system": system,
                "task": task,
                "precision": precision,
                "pairs_per_s": rate,
                "all_rounds": rates,
                "cpu_pairs_per_s": statistics.median(r["pairs"] / r["cpu_seconds"] for r in runs),
                "flops_per_s": flops / seconds,
                "utilisation": flops / seconds / peaks[precision][0],
            }
        )
    report = {
        "mode": mode,
        "device": args.device,
        "threads": args.threads,
        "rounds": args.rounds,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(args.device),
        "peaks": peaks,
        "load_average": os.getloadavg(),
        "rows": rows,
    }
    if gpu_mode:
        report["gpu_hours"] = gpu_hours(report)
    name = f"engine-{mode}-{args.tasks.replace(',', '-')}-{args.threads}threads.json"
    (args.bench_dir / name).write_text(json.dumps(report, indent=2))
    print(markdown(report))


def measure_peaks(args: argparse.Namespace, precisions: list[str]) -> dict[str, tuple[float, str]]:
    """Per precision, the peak the rows' utilisation is a fraction of, and what it is: on
    a CPU the measured matmul peak (bf16 too, so the bf16 rows have a meaningful
    fraction); on a GPU the datasheet's dense bf16 peak (MFU), or the measured one for a
    GPU the table does not know."""
    peaks = {}
    for precision in precisions:
        if args.device == "cuda" and precision == "bf16":
            import torch

            known = engine_gpu.datasheet_peak(torch.cuda.get_device_name())
            if known:
                peaks[precision] = known
                continue
        size = 2048 if args.device == "cpu" else 8192
        measured = matmul_peak(args.threads, args.device, precision)
        peaks[precision] = (measured, f"{size}^3 {precision} torch.matmul")
    return peaks


def machine(device: str) -> str:
    """The device the run measured, in words (CPU model from /proc/cpuinfo)."""
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name()
    from rank_distillm.model.numerics import cpuinfo_field

    return f"{cpuinfo_field(['model name']) or 'unknown CPU'}, {os.cpu_count()} CPUs"


def gpu_hours(report: dict) -> list[dict]:
    """The paper's GPU hours at this run's bf16 rates of our training and re-ranking."""
    rate = {
        row["task"]: row["pairs_per_s"]
        for row in report["rows"]
        if row["system"] == "rank-distillm" and row["precision"] == "bf16"
    }
    if set(rate) != {"train", "rerank"}:
        return []
    config = HERE.parent / "configs" / "paper.yaml"
    jobs = engine_gpu.paper_hours(rate["train"], rate["rerank"], config)
    return [{**vars(job), "hours": job.hours} for job in jobs]


def markdown(report: dict) -> str:
    peaks = "; ".join(
        f"{precision} peak {flops / 1e9:,.0f} GFLOP/s ({what})"
        for precision, (flops, what) in report["peaks"].items()
    )
    of_peak = "MFU" if report["device"] == "cuda" else "FLOP/s of peak"
    lines = [
        f"{report['date']}, {report['machine']}: mode {report['mode']}, device "
        f"{report['device']}, {report['threads']} threads, median of {report['rounds']} "
        f"rounds; {peaks}; load average {report['load_average'][0]:.1f}",
        "",
        f"| task | precision | system | pairs/s | rounds | pairs/CPU-s | {of_peak} | ours ÷ it |",
        "|---|---|---|---:|---|---:|---:|---:|",
    ]
    ours = {
        (row["task"], row["precision"]): row["pairs_per_s"]
        for row in report["rows"]
        if row["system"] == "rank-distillm"
    }
    for row in report["rows"]:
        mine = ours.get((row["task"], row["precision"]))
        theirs = mine and row["system"] != "rank-distillm"
        ratio = f"{mine / row['pairs_per_s']:.2f}" if theirs else "—"
        rounds = ", ".join(f"{rate:.1f}" for rate in row["all_rounds"])
        lines.append(
            f"| {row['task']} | {row['precision']} | {row['system']} | "
            f"{row['pairs_per_s']:.1f} | {rounds} | {row['cpu_pairs_per_s']:.1f} | "
            f"{row['utilisation']:.1%} | {ratio} |"
        )
    if report.get("gpu_hours"):
        jobs = [
            engine_gpu.JobHours(**{k: v for k, v in job.items() if k != "hours"})
            for job in report["gpu_hours"]
        ]
        caveat = " (a dry run's tiny model: the arithmetic, not a figure)" * (
            report["mode"] == "dry-run"
        )
        lines += [
            "",
            f"The paper's GPU hours at these bf16 rates{caveat}:",
            "",
            engine_gpu.hours_markdown(jobs),
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
