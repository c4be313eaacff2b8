"""How much each BM25 difference is worth on Vaswani (the table in docs/tirex.md).

PISA BM25 through the pipeline's own path, then bm25s with PISA's text processing and
with one difference at a time. Needs ../shared/data/vaswani and the test extras.

    python benchmarks/vaswani_bm25_variants.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("IR_DATASETS_HOME", tempfile.mkdtemp(prefix="ir_datasets-"))
sys.path.insert(0, str(REPO))

import ir_datasets  # noqa: E402
import ir_measures  # noqa: E402
import pandas as pd  # noqa: E402

from rank_distillm.data import datasets  # noqa: E402
from rank_distillm.evaluation.measures import aggregate, evaluate_run  # noqa: E402
from rank_distillm.retrieve import bm25, build_index  # noqa: E402
from tests.test_vaswani import bm25s_run  # noqa: E402

VARIANTS = {
    "bm25s, PISA's text processing": {},
    "  only change: a repeated query term counted twice": {"count_repeated_terms": True},
    "  only change: stopwords removed before stemming": {"stop_after_stemming": False},
    "  only change: Lucene IDF log(1 + (N-df+0.5)/(df+0.5))": {"idf": "lucene"},
    "  only change: k1 = 1.2, b = 0.75 (Terrier's and Anserini's defaults)": {"k1": 1.2, "b": 0.75},
}


def figures(run: pd.DataFrame, qrels: pd.DataFrame) -> tuple[float, float, float]:
    top100 = run[run["rank"] <= 100]
    ndcg = aggregate(evaluate_run(top100, qrels, ["nDCG@10"]))["value"].iloc[0]
    in_rank_order = aggregate(evaluate_run(run, qrels, ["AP@1000"]))["value"].iloc[0]
    by_score = ir_measures.calc_aggregate(
        [ir_measures.AP @ 1000], qrels, run[["query_id", "doc_id", "score"]]
    )[ir_measures.AP @ 1000]
    return ndcg, in_rank_order, by_score


def main() -> None:
    folder = REPO.parent / "shared" / "data" / "vaswani"
    work = Path(tempfile.mkdtemp(prefix="vaswani-"))
    entry = {
        "docs": str(folder / "doc-text.trec"),
        "queries": str(folder / "query-text.trec"),
        "qrels": str(folder / "qrels"),
    }
    datasets.register(datasets.Manifest.from_config("local/vaswani", entry, work))
    dataset = ir_datasets.load("local/vaswani")
    docs = list(datasets.iter_doc_texts(dataset))
    topics, qrels = datasets.topics(dataset), datasets.qrels(dataset)
    build_index(iter(docs), work / "index")
    rows = [
        (
            "PISA BM25 (k1=0.9, b=0.4), this pipeline",
            *figures(bm25(work / "index", topics, num_results=1000), qrels),
        )
    ]
    for label, options in VARIANTS.items():
        rows.append((label, *figures(bm25s_run(docs, topics, 1000, **options), qrels)))
    print("| run | nDCG@10 (top 100) | MAP@1000, rank order | MAP@1000, by score |")
    print("|---|---:|---:|---:|")
    for label, ndcg, ranked, scored in rows:
        print(f"| {label} | {ndcg:.4f} | {ranked:.6f} | {scored:.6f} |")


if __name__ == "__main__":
    main()
