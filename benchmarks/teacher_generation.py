"""Throughput of teacher generation (reported in docs/teacher-generation.md).

Re-ranks a synthetic first-stage run (passages of MS MARCO's mean length, 56 words) with
the paper's window and prints queries/s, windows/s, prompt and generated tokens per second
and what that means for the paper's 10,000 queries x 100 passages. Without ``--model`` it
uses the tiny random LM (a measurement of the machinery, not of a 7B model); on a GPU
machine, pass a real model to replace the estimate in the docs with a measurement:

    python benchmarks/teacher_generation.py                       # tiny LM, CPU
    python benchmarks/teacher_generation.py --model castorini/rank_zephyr_7b_v1_full \\
        --queries 256 --batch-size 64                              # a GPU, vLLM if installed
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rank_distillm.data.texts import MappingTexts  # noqa: E402
from rank_distillm.teachers.llm import GenerationSettings, generate_teacher_run  # noqa: E402
from rank_distillm.teachers.llm.tiny_lm import TinyLMSettings, build_tiny_lm  # noqa: E402
from rank_distillm.teachers.llm.window import window_spans  # noqa: E402

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "that",
    "was",
    "on",
    "with",
    "as",
    "by",
    "at",
    "from",
    "an",
    "are",
    "this",
    "be",
    "which",
    "or",
    "it",
    "has",
    "water",
    "river",
    "city",
    "energy",
    "protein",
    "cell",
    "market",
    "price",
    "average",
    "body",
    "heat",
    "law",
    "court",
    "system",
    "blood",
    "plant",
    "light",
    "sound",
    "history",
    "school",
    "tax",
    "insurance",
    "salary",
    "temperature",
    "symptoms",
]


def synthetic_run(path: Path, queries: int, depth: int, words: int, seed: int = 0):
    rng = random.Random(seed)
    lines, query_texts, docs = [], {}, {}
    for q in range(queries):
        query_texts[f"q{q}"] = " ".join(rng.choices(WORDS, k=6))
        for rank in range(1, depth + 1):
            doc_id = f"q{q}-d{rank}"
            docs[doc_id] = " ".join(rng.choices(WORDS, k=max(5, int(rng.gauss(words, 20)))))
            lines.append(f"q{q} Q0 {doc_id} {rank} {depth - rank} bm25\n")
    path.write_text("".join(lines))
    return query_texts, docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="hub id or folder; default: the tiny random LM")
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--stride", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--words", type=int, default=56, help="mean words per passage")
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        context_size = 4096
        model = args.model
        if model is None:
            # One token per byte: a window of 20 passages needs about 8,000 tokens.
            context_size = 16384
            model = str(tmp_path / "tiny-lm")
            build_tiny_lm(Path(model), TinyLMSettings(max_position_embeddings=context_size))
        query_texts, docs = synthetic_run(
            tmp_path / "first-stage.run", args.queries, args.depth, args.words
        )
        settings = GenerationSettings(
            model=model,
            window=args.window,
            stride=args.stride,
            depth=args.depth,
            batch_size=args.batch_size,
            context_size=context_size,
            backend=args.backend,
        )
        started = time.perf_counter()
        stats = generate_teacher_run(
            tmp_path / "first-stage.run",
            MappingTexts(query_texts, docs),
            tmp_path / "teacher.run",
            settings,
        )
        total = time.perf_counter() - started

    seconds = stats["generation_seconds"]
    windows = stats["repairs"]["windows"]
    per_query = len(window_spans(args.depth, args.window, args.stride))
    hours = 10_000 / stats["queries_per_second"] / 3600
    print(f"| model | {args.model or 'tiny random LM (byte tokens)'} |")
    print("|---|---:|")
    print(
        f"| queries x depth, window / stride | {args.queries} x {args.depth}, "
        f"{args.window} / {args.stride} ({per_query} windows per query) |"
    )
    print(f"| generation seconds (model loading excluded) | {seconds:.1f} |")
    print(f"| queries/s | {stats['queries_per_second']:.3f} |")
    print(f"| windows/s | {windows / seconds:.2f} |")
    print(f"| prompt tokens per window (mean) | {stats['prompt_tokens'] / windows:.0f} |")
    print(f"| prompt tokens/s | {stats['prompt_tokens'] / seconds:.0f} |")
    print(f"| 10,000 queries at this rate | {hours:.1f} h |")
    print(f"| whole call, with loading | {total:.1f} s |")


if __name__ == "__main__":
    main()
