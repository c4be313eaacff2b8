"""Wall-clock figures of the workflow on this machine (reported in docs/benchmarks.md).

Copies the workflow to a temporary folder and times: building the DAG (`snakemake -n`,
median of 5), the whole demo from scratch (`snakemake --cores all`), and the second,
no-op run. Run: `python benchmarks/workflow_timings.py`.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.workflow_runner import copy_workflow, snakemake  # noqa: E402


def timed(workdir: Path, *args: str) -> float:
    started = time.perf_counter()
    result = snakemake(workdir, *args)
    if result.returncode != 0:
        raise SystemExit(result.stdout[-3000:] + result.stderr[-3000:])
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = copy_workflow(Path(tmp))
        dag = statistics.median(timed(workdir, "--dry-run", "--quiet") for _ in range(5))
        demo = timed(workdir, "--cores", "all")
        noop = timed(workdir, "--cores", "all")
    print("| measurement | seconds |")
    print("|---|---:|")
    print(f"| `snakemake -n` (DAG of the demo, median of 5) | {dag:.2f} |")
    print(f"| `snakemake --cores all`, demo from scratch | {demo:.1f} |")
    print(f"| second `snakemake --cores all` (nothing to do) | {noop:.2f} |")


if __name__ == "__main__":
    main()
