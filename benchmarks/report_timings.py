"""Timings of the report stage on a finished demo run: the tables target (Snakemake
start-up included), the same rebuild in-process, and `snakemake --report`.

Usage: python benchmarks/report_timings.py <workdir with a finished demo run> [repeats]

The three measurements are interleaved, so a machine shared with other work slows them
alike; the script prints min, median and max wall-clock seconds of each. It rewrites the
run's tables, plots and report.html (with the same content).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TABLES_IN_PROCESS = """
from pathlib import Path
import yaml
from snakemake.utils import validate
from rank_distillm.experiment import from_config
from rank_distillm.report.files import rebuild_tables
from rank_distillm.report_plan import report_spec
config = yaml.safe_load(Path("config.yaml").read_text())
validate(config, "schemas/config.schema.yaml")
rebuild_tables(report_spec(from_config(config), config))
"""


def timed(command: list[str], workdir: Path) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    subprocess.run(command, cwd=workdir, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    workdir = Path(sys.argv[1]).resolve()
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    python = sys.executable
    commands = {
        "snakemake tables --cores 1": [python, "-m", "snakemake", "tables", "--cores", "1"],
        "rebuild_tables() in one Python process": [python, "-c", TABLES_IN_PROCESS],
        "snakemake --report results/demo/report.html": [
            python,
            "-m",
            "snakemake",
            "--report",
            "results/demo/report.html",
        ],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            times[name].append(timed(command, workdir))
    print(f"{'command':<48} {'min':>6} {'median':>7} {'max':>6}  (s, {repeats} runs)")
    for name, values in times.items():
        print(f"{name:<48} {min(values):6.1f} {statistics.median(values):7.1f} {max(values):6.1f}")


if __name__ == "__main__":
    main()
