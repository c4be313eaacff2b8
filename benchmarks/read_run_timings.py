"""Time ``rank_distillm.data.trec.read_run`` on a large generated run file.

The checks in ``read_run`` (duplicates, rank ties, rank/score disagreements, depths) must
not slow it down noticeably on the run sizes the paper uses (hundreds of millions of lines).
The file is generated once (seeded) and kept, so the module of two checkouts can be
compared on the same file, interleaved::

    python benchmarks/read_run_timings.py --file /tmp/20m.run                # this checkout
    PYTHONPATH=/path/to/other/src python benchmarks/read_run_timings.py --file /tmp/20m.run
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from pathlib import Path

import numpy as np


def generate(path: Path, queries: int, depth: int, seed: int = 0) -> None:
    """A clean BM25-like run: ``queries`` x ``depth`` lines, 1-based ranks, falling scores."""
    rng = np.random.default_rng(seed)
    query_ids = rng.choice(np.arange(1_000, 1_200_000), size=queries, replace=False)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for query_id in query_ids:
            doc_ids = rng.choice(8_841_823, size=depth, replace=False)
            scores = np.sort(rng.gamma(4.0, 4.0, size=depth))[::-1]
            handle.write(
                "".join(
                    f"{query_id} Q0 {doc} {rank} {score!r} bm25\n"
                    for rank, (doc, score) in enumerate(
                        zip(doc_ids.tolist(), scores.tolist(), strict=True), start=1
                    )
                )
            )
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=Path("/tmp/read-run-20m.run"))
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--depth", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    if not args.file.exists():
        started = time.perf_counter()
        generate(args.file, args.queries, args.depth)
        print(f"generated {args.file} in {time.perf_counter() - started:.0f} s")

    from rank_distillm.data import trec as trec_io

    print(f"module: {trec_io.__file__}")
    wall, cpu = [], []
    for _ in range(args.repeat):
        gc.collect()
        started, started_cpu = time.perf_counter(), time.process_time()
        run = trec_io.read_run(args.file)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        del run
    # CPU time is the steadier figure on a shared machine; wall time shows waiting too.
    print(
        f"read_run: {args.file.stat().st_size / 2**30:.2f} GiB; "
        f"CPU s {', '.join(f'{s:.1f}' for s in cpu)} (median {statistics.median(cpu):.1f}); "
        f"wall s {', '.join(f'{s:.1f}' for s in wall)} (median {statistics.median(wall):.1f})"
    )


if __name__ == "__main__":
    main()
