"""Training tables: runs joined with query and passage texts, with targets.

Both stages train from the same table layout (see ``sampling.TABLE_COLUMNS``), written
as parquet, with a small JSON file of statistics beside it.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from rank_distillm import io as trec_io
from rank_distillm.sampling import TABLE_COLUMNS

LOGGER = logging.getLogger(__name__)

DocTexts = Callable[[Iterable[str]], dict[str, str]]


def sample_queries(run: pd.DataFrame, num_queries: int | None, seed: int) -> pd.DataFrame:
    """Keep ``num_queries`` queries drawn with ``seed`` (all if None or more than there are)."""
    query_ids = run["query_id"].drop_duplicates().tolist()
    if num_queries is None or num_queries >= len(query_ids):
        if num_queries is not None and num_queries > len(query_ids):
            LOGGER.warning("asked for %d queries, the run has %d", num_queries, len(query_ids))
        return run
    keep = set(random.Random(seed).sample(query_ids, num_queries))
    return run[run["query_id"].isin(keep)].reset_index(drop=True)


def teacher_table(
    teacher_run: pd.DataFrame,
    topics: pd.DataFrame,
    doc_texts: DocTexts,
    num_queries: int | None,
    depth: int,
    seed: int,
) -> pd.DataFrame:
    """Stage 2 data: the teacher's top ``depth`` per query, target = depth - rank + 1."""
    run = trec_io.truncate_run(sample_queries(teacher_run, num_queries, seed), depth)
    run["rank"] = run.groupby("query_id", sort=False).cumcount() + 1
    run["target"] = (depth - run["rank"] + 1).astype("float64")
    return join_texts(run, topics, doc_texts)


def hard_negative_table(
    first_stage: pd.DataFrame,
    qrels: pd.DataFrame,
    topics: pd.DataFrame,
    doc_texts: DocTexts,
    num_queries: int | None,
    depth: int,
    seed: int,
) -> pd.DataFrame:
    """Stage 1 data: first-stage top ``depth`` with qrels labels as targets (unjudged 0),
    plus relevant passages the run missed (rank left empty); queries without any
    relevant passage are left out and counted."""
    judged = set(qrels.loc[qrels["relevance"] > 0, "query_id"])
    run = first_stage[first_stage["query_id"].isin(judged)]
    dropped = first_stage["query_id"].nunique() - run["query_id"].nunique()
    if dropped:
        LOGGER.warning("%d queries without a relevant passage left out", dropped)
    run = trec_io.truncate_run(sample_queries(run, num_queries, seed), depth)
    labelled = run.merge(qrels, on=["query_id", "doc_id"], how="left")
    labelled["target"] = labelled["relevance"].fillna(0).astype("float64")
    relevant = qrels[(qrels["relevance"] > 0) & qrels["query_id"].isin(set(run["query_id"]))]
    missed = relevant.merge(run[["query_id", "doc_id"]], how="left", indicator=True)
    missed = missed[missed["_merge"] == "left_only"]
    extra = pd.DataFrame(
        {
            "query_id": missed["query_id"],
            "doc_id": missed["doc_id"],
            "rank": pd.NA,
            "target": missed["relevance"].astype("float64"),
        }
    )
    table = pd.concat([labelled[["query_id", "doc_id", "rank", "target"]], extra])
    table["rank"] = table["rank"].astype("Int64")
    order = {query_id: i for i, query_id in enumerate(run["query_id"].drop_duplicates())}
    table = table.sort_values("query_id", key=lambda ids: ids.map(order), kind="stable")
    return join_texts(table.reset_index(drop=True), topics, doc_texts)


def join_texts(run: pd.DataFrame, topics: pd.DataFrame, doc_texts: DocTexts) -> pd.DataFrame:
    """Add query and passage texts; a query without text is an error naming it."""
    query_text = dict(zip(topics["query_id"], topics["text"], strict=True))
    missing = sorted(set(run["query_id"]) - set(query_text))
    if missing:
        raise KeyError(f"{len(missing)} run queries have no text (first: {missing[:5]})")
    texts = doc_texts(run["doc_id"].drop_duplicates())
    table = run.assign(query=run["query_id"].map(query_text), text=run["doc_id"].map(texts))
    table["rank"] = table["rank"].astype("Int64")
    return table[TABLE_COLUMNS].reset_index(drop=True)


def table_stats(table: pd.DataFrame) -> dict[str, float]:
    per_query = table.groupby("query_id", sort=False).size()
    return {
        "queries": int(per_query.size),
        "rows": len(table),
        "passages_per_query_min": int(per_query.min()) if len(per_query) else 0,
        "passages_per_query_mean": float(per_query.mean()) if len(per_query) else 0.0,
        "passages_per_query_max": int(per_query.max()) if len(per_query) else 0,
        "unranked_rows": int(table["rank"].isna().sum()),
        "positive_targets": int((table["target"] > 0).sum()),
    }


def write_table(table: pd.DataFrame, path: Path, stats_path: Path) -> None:
    """Write the parquet table and its statistics, each atomically."""
    with trec_io.atomic_output(path) as tmp:
        table.to_parquet(tmp, index=False)
    trec_io.atomic_write_text(stats_path, json.dumps(table_stats(table), indent=2) + "\n")


def read_table(path: Path) -> pd.DataFrame:
    table = pd.read_parquet(path)
    trec_io.require_columns(table, TABLE_COLUMNS, f"{path}: training table")
    return table.astype({"query_id": str, "doc_id": str})
