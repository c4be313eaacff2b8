"""What the PyTerrier transformer adds to the re-ranking engine it calls.

``CrossEncoderReranker.transform`` checks the frame, builds the engine's run and text
lookups, calls ``rerank.rerank`` and merges the scores back onto the frame. This times
that against ``rerank.rerank`` alone on the same pairs (``--queries`` x ``--depth``
synthetic passages of 30-80 words, a tiny random ELECTRA, so the model's own time is
small and the frame handling shows), alternating the two ``--repeats`` times, in CPU
seconds of this process.

Run: ``python benchmarks/pyterrier_overhead.py`` (about a minute on 2 cores); figures in
docs/using-a-model.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from rank_distillm.data.datasets import truncate_words  # noqa: E402
from rank_distillm.evaluation.rerank import rerank  # noqa: E402
from rank_distillm.model.checkpoints import load_cross_encoder, save_cross_encoder  # noqa: E402
from rank_distillm.model.tiny_backbone import TinySettings, build_tiny  # noqa: E402
from rank_distillm.pyterrier import CrossEncoderReranker  # noqa: E402

WORDS = [f"w{i}" for i in range(3000)]


def synthetic_frame(queries: int, depth: int, seed: int = 0) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for q in range(queries):
        query = " ".join(rng.choices(WORDS, k=rng.randint(3, 8)))
        for rank in range(depth):
            text = " ".join(rng.choices(WORDS, k=rng.randint(30, 80)))
            rows.append((f"q{q}", query, f"d{q}-{rank}", text, rank, float(depth - rank)))
    return pd.DataFrame(rows, columns=["qid", "query", "docno", "text", "rank", "score"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    work = Path(tempfile.mkdtemp(prefix="pyterrier-overhead-"))
    settings = TinySettings(
        vocab_size=1000,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    frame = synthetic_frame(args.queries, args.depth)
    build_tiny(list(frame["text"].unique()[:2000]), settings, work / "backbone")
    model, tokenizer = load_cross_encoder(str(work / "backbone"), 16, 64, seed=1)
    save_cross_encoder(model, tokenizer, work / "checkpoint")

    reranker = CrossEncoderReranker(work / "checkpoint", batch_size=64, device="cpu")
    run = pd.DataFrame(
        {"query_id": frame["qid"], "doc_id": frame["docno"], "rank": frame["rank"] + 1}
    )
    query_texts = dict(zip(frame["qid"], frame["query"], strict=False))
    # Cut to the passage length in words, as the pipeline's text lookup does.
    doc_texts = {
        docno: truncate_words(text, reranker.model.doc_length)
        for docno, text in zip(frame["docno"], frame["text"], strict=True)
    }

    def engine() -> None:
        rerank(
            reranker.model,
            reranker.encoder,
            run,
            query_texts,
            doc_texts,
            depth=args.depth,
            batch_size=64,
            device="cpu",
        )

    def transformer() -> None:
        reranker.transform(frame)

    # CPU time of this process is the figure: on a shared machine, wall time mostly
    # measures the other processes. Wall time is printed beside it.
    wall: dict[str, list[float]] = {"engine": [], "transformer": []}
    cpu: dict[str, list[float]] = {"engine": [], "transformer": []}
    engine()  # warm-up
    for _ in range(args.repeats):
        for name, call in (("engine", engine), ("transformer", transformer)):
            started, started_cpu = time.perf_counter(), time.process_time()
            call()
            cpu[name].append(time.process_time() - started_cpu)
            wall[name].append(time.perf_counter() - started)
    pairs = args.queries * args.depth
    for name in cpu:
        median = statistics.median(cpu[name])
        print(
            f"{name:12s} CPU median {median:6.2f} s ({pairs / median:6.0f} pairs/s), runs "
            f"{', '.join(f'{v:.2f}' for v in cpu[name])}; wall median "
            f"{statistics.median(wall[name]):.2f} s"
        )
    overhead = statistics.median(cpu["transformer"]) - statistics.median(cpu["engine"])
    print(f"transformer overhead: {overhead:+.2f} s CPU for {pairs} pairs")


if __name__ == "__main__":
    main()
