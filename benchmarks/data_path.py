"""Preparation memory and the training data path's throughput at MS MARCO-like shapes.

Generates, under a work folder (default /tmp/rank-distillm-data-path):
* a local collection of ``--passages`` passages (MS MARCO-like lengths: 30-80 words) with
  its ir_datasets docstore, and ``--queries`` training queries with one relevant each;
* a first-stage run of ``--queries`` x ``--depth`` lines (tab separated, ``0``, as the
  published ColBERTv2 runs) and a 10,000 x 100 teacher run (Zenodo format).

Then measures, each step in its own process (peak RSS = that process's ru_maxrss):
1. the stage-1 (hard-negative) table from the first-stage run;
2. the stage-2 (teacher) table from the teacher run;
3. the training data path on each table: reading the table, drawing samples, fetching
   texts from the docstore, tokenising and collating, in pairs per second (32 queries x
   8 passages per batch for stage 1, 32 x 100 for stage 2), without any model.

Run: ``python benchmarks/data_path.py`` (about 20 minutes on 2 cores); figures in
docs/benchmarks.md. ``--passages 200000 --queries 10000`` gives a quick smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = 30_000


def word(i: int) -> str:
    """Pseudo-words with a Zipf-like reuse of short ones, as in real text."""
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    out = []
    while True:
        out.append(consonants[i % 14] + vowels[(i // 14) % 5])
        i //= 70
        if not i:
            return "".join(out)


def generate(root: Path, passages: int, queries: int, depth: int, seed: int = 0) -> None:
    from rank_distillm.data.datasets import Manifest

    rng = random.Random(seed)
    vocabulary = [word(i) for i in range(WORDS)]
    weights = [1 / (r + 1) for r in range(WORDS)]
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with (root / "docs.tsv").open("w") as docs:
        for start in range(0, passages, 10_000):
            block = rng.choices(vocabulary, weights=weights, k=10_000 * 55)
            for k in range(min(10_000, passages - start)):
                length = rng.randint(30, 80)
                offset = (k * 55) % (len(block) - 80)
                docs.write(f"{start + k}\t{' '.join(block[offset : offset + length])}\n")
    with (root / "queries.tsv").open("w") as topics, (root / "qrels.txt").open("w") as qrels:
        for q in range(queries):
            topics.write(f"q{q}\t{' '.join(rng.choices(vocabulary, k=rng.randint(3, 9)))}\n")
            qrels.write(f"q{q} 0 {rng.randrange(passages)} 1\n")
    with (root / "first-stage.run").open("w") as run:
        for q in range(queries):
            for r, doc in enumerate(rng.sample(range(passages), depth), start=1):
                run.write(f"q{q}\t0\t{doc}\t{r}\t{100.0 - r / 10:.2f}\tColBERT\n")
    with (root / "teacher.run").open("w") as run:
        for q in rng.sample(range(queries), min(10_000, queries)):
            for r, doc in enumerate(rng.sample(range(passages), 100), start=1):
                run.write(f"q{q} Q0 {doc} {r} {101 - r} rank\n")
    subsets = {"train": {"queries": "queries.tsv", "qrels": "qrels.txt"}}
    Manifest(name="bench", root=root, docs="docs.tsv", subsets=subsets).write(
        root / "manifest.json"
    )
    print(f"generated in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def step_docstore(root: Path) -> dict:
    from rank_distillm.data import datasets

    return {"docs": datasets.build_docstore(datasets.load("bench", [root / "manifest.json"]))}


def step_stage1_table(root: Path) -> dict:
    from rank_distillm.data import datasets
    from rank_distillm.training.tables import write_hard_negative_table

    dataset = datasets.load("bench/train", [root / "manifest.json"])
    stats = write_hard_negative_table(
        root / "first-stage.run",
        datasets.qrels(dataset),
        root / "stage1.parquet",
        root / "stage1.json",
        num_queries=None,
        depth=200,
        seed=42,
        known_queries={q.query_id for q in dataset.queries_iter()},
    )
    return {"rows": stats["rows"], "queries": stats["queries"]}


def step_teacher_table(root: Path) -> dict:
    from rank_distillm.training.tables import write_teacher_table

    stats = write_teacher_table(
        root / "teacher.run", root / "stage2.parquet", root / "stage2.json", 10_000, 100, 42
    )
    return {"rows": stats["rows"], "queries": stats["queries"]}


def step_loader(root: Path, table: str, sampler: str, batches: int) -> dict:
    """Samples -> texts -> tokens -> padded tensors, as the trainer builds them."""
    import torch

    from rank_distillm.data import datasets
    from rank_distillm.data.texts import DatasetTexts
    from rank_distillm.model.pair_encoder import PairEncoder
    from rank_distillm.model.tiny_backbone import wordpiece_tokenizer, wordpiece_vocabulary
    from rank_distillm.training import sampling
    from rank_distillm.training.batches import BatchBuilder, sample_steps
    from rank_distillm.training.tables import read_table

    torch.set_num_threads(1)
    started = time.perf_counter()
    training = read_table(root / table)
    read_seconds = time.perf_counter() - started
    dataset = datasets.load("bench/train", [root / "manifest.json"])
    texts = DatasetTexts(dataset, query_ids=training.query_ids, max_words=256)
    sample_texts = texts.doc_texts([str(i) for i in range(2000)])
    tokenizer = wordpiece_tokenizer(wordpiece_vocabulary(sample_texts, 30_522))
    encoder = PairEncoder(tokenizer, 32, 256)
    lists = sampling.group_queries(training)
    builder = BatchBuilder(training, texts, encoder, cache_size=0)
    stream = sample_steps(lists, sampler, 7, 100, 32, random.Random(42))
    next(stream)  # the first epoch's draw happens here
    pairs, started = 0, time.perf_counter()
    for _ in range(batches):
        batch = builder.batch(next(stream).samples)
        pairs += int(batch["mask"].sum())
    seconds = time.perf_counter() - started
    return {
        "table_read_s": round(read_seconds, 1),
        "pairs": pairs,
        "pairs_per_s": round(pairs / seconds),
        "tokens_per_pair": round(float(batch["attention_mask"].sum()) / batch["mask"].sum().item()),
    }


STEPS = {
    "docstore": step_docstore,
    "stage1-table": step_stage1_table,
    "teacher-table": step_teacher_table,
}


def run_step(root: Path, name: str, *args: str) -> dict:
    """One step in a fresh process; its own peak RSS comes from ``wait4``."""
    started = time.perf_counter()
    command = [sys.executable, __file__, "--root", str(root), "--step", name, *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status:
        raise SystemExit(f"step {name} failed ({status}): {output[-2000:]}")
    result = json.loads(output.strip().splitlines()[-1])
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/rank-distillm-data-path"))
    parser.add_argument("--passages", type=int, default=3_000_000)
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--depth", type=int, default=200)
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--args", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        if args.step == "loader":
            table, sampler, batches = args.args
            print(json.dumps(step_loader(args.root, table, sampler, int(batches))))
        else:
            print(json.dumps(STEPS[args.step](args.root)))
        return
    if not (args.root / "manifest.json").exists():
        generate(args.root, args.passages, args.queries, args.depth)
    size = (args.root / "first-stage.run").stat().st_size / 2**30
    print(f"first-stage run: {args.queries:,} queries x {args.depth} ({size:.2f} GiB)")
    for name, extra in (
        ("docstore", []),
        ("teacher-table", []),
        ("stage1-table", []),
        ("loader", ["--args", "stage1.parquet", "single_relevant", "200"]),
        ("loader", ["--args", "stage2.parquet", "top", "25"]),
    ):
        print(name, *extra[1:2], json.dumps(run_step(args.root, name, *extra)), flush=True)


if __name__ == "__main__":
    main()
