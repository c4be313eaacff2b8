"""Compute time of the demo's TIREx part in one process (reported in docs/tirex.md).

Generates the default TIREx-like corpora, checks them (building the docstores), indexes
each with PISA, retrieves the BM25 top 100, re-ranks it with a tiny ELECTRA of the demo
config's size (random weights: speed does not depend on training) for two models, and
evaluates. Snakemake adds a process start per job on top (importing transformers is
several seconds). Run: `python benchmarks/demo_tirex_timing.py [repeats]`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("IR_DATASETS_HOME", tempfile.mkdtemp(prefix="ir_datasets-"))
os.environ["HF_HUB_OFFLINE"] = "1"

import ir_datasets  # noqa: E402
import torch  # noqa: E402

from rank_distillm.data import datasets, demo_tirex  # noqa: E402
from rank_distillm.evaluation.measures import evaluate_run  # noqa: E402
from rank_distillm.evaluation.rerank import rerank  # noqa: E402
from rank_distillm.model.checkpoints import load_cross_encoder  # noqa: E402
from rank_distillm.model.pair_encoder import PairEncoder  # noqa: E402
from rank_distillm.model.tiny_backbone import TinySettings, build_tiny  # noqa: E402
from rank_distillm.retrieve import bm25, build_index  # noqa: E402

QUERY_LENGTH, DOC_LENGTH, MODELS, BATCH = 16, 40, 2, 128  # as config.yaml's demo


def run_once(work: Path, suffix: str) -> dict[str, float]:
    times: dict[str, float] = {}
    started = time.perf_counter()
    settings = demo_tirex.DemoTirexSettings()
    corpora = {f"{name}{suffix}": domain for name, domain in settings.corpora.items()}
    settings = demo_tirex.DemoTirexSettings(seed=settings.seed, corpora=corpora)
    manifests = demo_tirex.write_corpora(settings, work / "data")
    times["generate"] = time.perf_counter() - started
    started = time.perf_counter()
    for path in manifests.values():
        datasets.check_collection(datasets.Manifest.read(path))
    times["check + docstores"] = time.perf_counter() - started
    started = time.perf_counter()
    for name in manifests:
        build_index(datasets.iter_doc_texts(ir_datasets.load(name)), work / "index" / name)
    times["PISA indexes"] = time.perf_counter() - started
    runs = {}
    started = time.perf_counter()
    for group, domain in settings.corpora.items():
        for task in (f"{group}/{topic_set}" for topic_set in domain.topic_sets):
            topics = datasets.topics(ir_datasets.load(task))
            runs[task] = (topics, bm25(work / "index" / group, topics, num_results=100))
    times["BM25 top 100"] = time.perf_counter() - started
    texts = [t for _, t in datasets.iter_doc_texts(ir_datasets.load(next(iter(manifests))))]
    build_tiny(texts, TinySettings(), work / "backbone")
    model, tokenizer = load_cross_encoder(str(work / "backbone"), QUERY_LENGTH, DOC_LENGTH)
    encoder = PairEncoder(tokenizer, QUERY_LENGTH, DOC_LENGTH)
    started = time.perf_counter()
    pairs = 0
    for _ in range(MODELS):
        for task, (topics, run) in runs.items():
            dataset = ir_datasets.load(task)
            queries = dict(zip(topics["query_id"], topics["text"], strict=True))
            docs = datasets.doc_texts(dataset, run["doc_id"], max_words=DOC_LENGTH)
            reranked = rerank(model, encoder, run, queries, docs, batch_size=BATCH)
            evaluate_run(reranked, datasets.qrels(dataset), ["nDCG@10"])
            pairs += len(reranked)
    times[f"re-rank + evaluate ({MODELS} models, {pairs} pairs)"] = time.perf_counter() - started
    return times


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    torch.set_num_threads(1)
    for repeat in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            times = run_once(Path(tmp), suffix=f"-{repeat}")
        print(f"run {repeat + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in times.items()))
        print(f"  total {sum(times.values()):.1f} s")


if __name__ == "__main__":
    main()
