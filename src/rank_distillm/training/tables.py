"""Training tables: which passages each training query sees, with rank and target.

A table holds ids, ranks and targets only (``TABLE_COLUMNS``), one row per (query,
passage), queries contiguous and in run order, each query's rows in rank order with the
relevant passages a first stage missed last (rank missing). Texts are looked up when
training (``rank_distillm.data.texts``), so the paper's stage-1 table (about 500k queries x
200 candidates) is a parquet file of a few GB, not tens, and is built by streaming the
run file in chunks with bounded memory.

Tables are parquet files with a JSON file of statistics beside them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rank_distillm.data import atomic
from rank_distillm.data import trec as trec_io
from rank_distillm.data.query_sample import sample_query_ids

LOGGER = logging.getLogger(__name__)

TABLE_COLUMNS = ["query_id", "doc_id", "rank", "target"]
_PAIR = ["query_id", "doc_id"]
TABLE_SCHEMA = pa.schema(
    [
        ("query_id", pa.string()),
        ("doc_id", pa.string()),
        ("rank", pa.int32()),  # null: a relevant passage the run did not retrieve
        ("target", pa.float32()),  # higher is better
    ]
)


# --------------------------------------------------------------------------- depth


def first_stage_top(
    first_stage_run: Path, query_ids: set[str], depth: int, chunk_lines: int = 2_000_000
) -> pd.DataFrame:
    """The (query_id, doc_id) pairs of ``query_ids`` whose rank in ``first_stage_run`` is
    at most ``depth`` (the file's rank column, as the authors' ``subsample.py`` reads it).

    The run is streamed, so memory grows with ``len(query_ids) x depth``, not with the
    run (the paper's ColBERTv2 training run is ~9 GB; its teacher has 10,000 queries). A
    run whose queries are not contiguous is read whole instead, with a warning.
    """

    def cut(run: pd.DataFrame) -> pd.DataFrame:
        return run.loc[run["query_id"].isin(query_ids) & (run["rank"] <= depth), _PAIR]

    try:
        parts = [cut(chunk) for chunk in trec_io.iter_run_chunks(first_stage_run, chunk_lines)]
    except trec_io.RunNotGrouped as error:
        LOGGER.warning("%s; reading the whole run into memory instead of streaming it", error)
        parts = [cut(trec_io.read_run(first_stage_run))]
    top = pd.concat(parts, ignore_index=True)
    missing = len(query_ids - set(top["query_id"]))
    if missing:
        LOGGER.warning(
            "%d of %d teacher queries are not in the first-stage run %s (no passages kept)",
            missing,
            len(query_ids),
            first_stage_run,
        )
    return top


def subsample(teacher: pd.DataFrame, first_stage_top: pd.DataFrame) -> pd.DataFrame:
    """The paper's depth sub-sampling (``utils/subsample.py`` of webis-de/rank-distillm):
    the teacher's pairs that are in ``first_stage_top`` (:func:`first_stage_top`), each
    query's ordered by the teacher's score, highest first.

    Ties are broken as the authors' pandas code breaks them: by doc id, ascending, as
    numbers when every id of the chunk reads as a number (MS MARCO's do), else as text.
    Queries keep the teacher run's order; the rank column is renumbered by the caller.
    """
    kept = teacher.merge(first_stage_top, on=_PAIR, how="inner")
    numeric = pd.to_numeric(kept["doc_id"], errors="coerce")
    doc_order = numeric if not numeric.isna().any() else kept["doc_id"]
    queries = pd.Series(pd.factorize(kept["query_id"])[0], index=kept.index)
    order = pd.DataFrame({"query": queries, "score": kept["score"], "doc": doc_order})
    order = order.sort_values(["query", "score", "doc"], ascending=[True, False, True])
    return kept.loc[order.index].reset_index(drop=True)


def compare_with_run(table: Path, run_path: Path) -> str | None:
    """None if the training table holds exactly the run's (query, doc, rank) triples (e.g.
    a table sub-sampled here against the authors' published sub-sample), else what differs."""
    ours = pq.read_table(table, columns=["query_id", "doc_id", "rank"]).to_pandas()
    theirs = trec_io.read_run(run_path)[["query_id", "doc_id", "rank"]]
    ours["rank"] = ours["rank"].astype("int64")
    both = ours.merge(theirs, how="outer", indicator=True)
    differ = both[both["_merge"] != "both"]
    if differ.empty:
        return None
    first = differ.sort_values("_merge", kind="stable").iloc[0]  # ours first
    return (
        f"{int((differ['_merge'] == 'left_only').sum())} (query, doc, rank) rows only in "
        f"{table}, {int((differ['_merge'] == 'right_only').sum())} only in {run_path} "
        f"(first: query {first['query_id']}, doc {first['doc_id']}, rank {first['rank']}; "
        f"{differ['query_id'].nunique()} queries differ)"
    )


def require_published(out_table: Path, out_stats: Path, published: Path) -> None:
    """Fail unless the table equals the authors' published sub-sample (removing the table
    and its statistics, so nothing half-right looks complete)."""
    difference = compare_with_run(out_table, published)
    if difference is None:
        LOGGER.info("%s equals the published sub-sample %s", out_table, published)
        return
    out_table.unlink()
    out_stats.unlink()
    raise ValueError(
        f"the sub-sampled teacher table differs from the published {published}: {difference}. "
        "Train on the published file instead (a teacher with it as train_run) or drop it "
        "from the teacher's published_subsamples"
    )


# --------------------------------------------------------------------------- writing


def _build(
    run_path: Path,
    process: Callable[[pd.DataFrame], pd.DataFrame],
    out_table: Path,
    out_stats: Path,
    extra: Mapping[str, int],
    chunk_lines: int,
) -> dict[str, float]:
    """Stream ``run_path`` in chunks of whole queries through ``process`` into a parquet
    table (written under a temporary name, renamed when complete), then its statistics.

    A run whose queries are not contiguous cannot be streamed; it is read whole instead,
    with a warning (the result is the same; only the memory differs).
    """
    try:
        return _write(
            trec_io.iter_run_chunks(run_path, chunk_lines), process, out_table, out_stats, extra
        )
    except trec_io.RunNotGrouped as error:
        LOGGER.warning("%s; reading the whole run into memory instead of streaming it", error)
        return _write([trec_io.read_run(run_path)], process, out_table, out_stats, extra)


def _write(
    runs: Iterable[pd.DataFrame],
    process: Callable[[pd.DataFrame], pd.DataFrame],
    out_table: Path,
    out_stats: Path,
    extra: Mapping[str, int],
) -> dict[str, float]:
    sizes: list[int] = []
    rows = unranked = positive = 0
    with atomic.atomic_output(out_table) as tmp, pq.ParquetWriter(tmp, TABLE_SCHEMA) as writer:
        for run in runs:
            chunk = process(run)
            if chunk.empty:
                continue
            writer.write_table(
                pa.Table.from_pandas(
                    chunk[TABLE_COLUMNS], schema=TABLE_SCHEMA, preserve_index=False
                )
            )
            sizes += chunk.groupby("query_id", sort=False).size().tolist()
            rows += len(chunk)
            unranked += int(chunk["rank"].isna().sum())
            positive += int((chunk["target"] > 0).sum())
    array = np.asarray(sizes or [0])
    stats = {
        "queries": len(sizes),
        "rows": rows,
        "passages_per_query_min": int(array.min()),
        "passages_per_query_mean": float(array.mean()),
        "passages_per_query_max": int(array.max()),
        "unranked_rows": unranked,
        "positive_targets": positive,
        **extra,
    }
    atomic.atomic_write_text(out_stats, json.dumps(stats, indent=2) + "\n")
    LOGGER.info("training table %s: %s", out_table, stats)
    return stats


# --------------------------------------------------------------------------- tables


def _check_query_texts(query_ids: Iterable[str], known: set[str] | None, what: str) -> None:
    if known is None:
        return
    missing = sorted(set(query_ids) - known)
    if missing:
        raise KeyError(
            f"{what}: {len(missing)} queries have no text in the training queries "
            f"(first: {missing[:5]})"
        )


def write_teacher_table(
    teacher_run: Path,
    out_table: Path,
    out_stats: Path,
    num_queries: int | None,
    depth: int,
    seed: int,
    known_queries: set[str] | None = None,
    chunk_lines: int = 2_000_000,
    first_stage_run: Path | None = None,
) -> dict[str, float]:
    """Stage-2 data: ``num_queries`` sampled queries of the teacher run, ``depth`` passages each.

    Without ``first_stage_run``, the teacher's top ``depth`` (the whole run when ``depth``
    is the depth it ranked). With it, the paper's depth sub-sampling
    (:func:`subsample`): the teacher's pairs whose first-stage rank is at most ``depth``,
    ordered by the teacher's score. Ranks are renumbered 1..n per query; target =
    depth - rank + 1 (the paper's rank targets, higher is better). Queries with fewer than
    ``depth`` passages are kept with what they have, and counted.
    """
    keep = sample_query_ids(trec_io.run_query_ids(teacher_run), num_queries, seed)
    _check_query_texts(keep, known_queries, str(teacher_run))
    top = None if first_stage_run is None else first_stage_top(first_stage_run, keep, depth)
    short = 0

    def process(run: pd.DataFrame) -> pd.DataFrame:
        nonlocal short
        run = run[run["query_id"].isin(keep)]
        run = trec_io.truncate_run(run, depth) if top is None else subsample(run, top)
        run["rank"] = run.groupby("query_id", sort=False).cumcount() + 1
        short += int((run.groupby("query_id", sort=False).size() < depth).sum())
        run["target"] = (depth - run["rank"] + 1).astype("float32")
        return run

    extra = {"depth": depth, "first_stage_cut": int(top is not None)}
    stats = _build(teacher_run, process, out_table, out_stats, extra, chunk_lines)
    if short:
        LOGGER.warning(
            "%d of %d teacher queries have fewer than %d passages", short, len(keep), depth
        )
    return stats


def write_hard_negative_table(
    first_stage_run: Path,
    qrels: pd.DataFrame,
    out_table: Path,
    out_stats: Path,
    num_queries: int | None,
    depth: int,
    seed: int,
    known_queries: set[str] | None = None,
    chunk_lines: int = 2_000_000,
    relevance_level: int = 1,
) -> dict[str, float]:
    """Stage-1 data: a first stage's top ``depth`` with qrels labels as targets (unjudged
    0), plus the relevant passages the run missed (rank missing, after the ranked ones, in
    qrels order). Only queries with a relevant passage are kept; the others are counted.

    Labels below ``relevance_level`` count as unjudged, so those passages can be drawn as
    negatives: graded training qrels then look like MS MARCO's sparse binary ones, where
    a passage nobody marked is a negative even when it is partly relevant."""
    if relevance_level < 1:
        raise ValueError(f"relevance_level must be at least 1, got {relevance_level}")
    qrels = qrels[qrels["relevance"] >= relevance_level]  # the relevant ones, from here on
    judged = set(qrels["query_id"])
    run_ids = trec_io.run_query_ids(first_stage_run)
    candidates = [query_id for query_id in run_ids if query_id in judged]
    without_relevant = len(run_ids) - len(candidates)
    if without_relevant:
        LOGGER.warning(
            "%d queries without a relevant passage left out (relevant: label >= %d)",
            without_relevant,
            relevance_level,
        )
    keep = sample_query_ids(candidates, num_queries, seed)
    _check_query_texts(keep, known_queries, str(first_stage_run))
    labels = qrels[qrels["query_id"].isin(keep)]

    def process(run: pd.DataFrame) -> pd.DataFrame:
        run = trec_io.truncate_run(run[run["query_id"].isin(keep)], depth)
        own = labels[labels["query_id"].isin(set(run["query_id"]))]
        labelled = run.merge(own, on=["query_id", "doc_id"], how="left")
        labelled["target"] = labelled["relevance"].fillna(0).astype("float32")
        missed = own.merge(run[["query_id", "doc_id"]], how="left", indicator=True)
        missed = missed[missed["_merge"] == "left_only"]
        extra = pd.DataFrame(
            {
                "query_id": missed["query_id"],
                "doc_id": missed["doc_id"],
                "rank": pd.NA,
                "target": missed["relevance"].astype("float32"),
            }
        )
        table = pd.concat([labelled[TABLE_COLUMNS], extra], ignore_index=True)
        table["rank"] = table["rank"].astype("Int32")
        order = {query_id: i for i, query_id in enumerate(run["query_id"].drop_duplicates())}
        return table.sort_values("query_id", key=lambda ids: ids.map(order), kind="stable")

    extra = {
        "depth": depth,
        "relevance_level": relevance_level,
        "queries_without_relevant": without_relevant,
    }
    return _build(first_stage_run, process, out_table, out_stats, extra, chunk_lines)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class TrainingTable:
    """A table in memory as flat arrays: query ``i`` owns rows ``offsets[i]:offsets[i+1]``.

    About 20 bytes a row plus the doc ids' characters, so the paper's 100M-row stage-1
    table fits in about 3 GB; reading it takes seconds (doc ids are kept as one Arrow
    string array, not dictionary-encoded: unifying millions of dictionary values costs
    minutes and gigabytes).
    """

    query_ids: list[str]
    offsets: np.ndarray  # int64, len(query_ids) + 1
    docs: pa.Array  # large_string, one per row
    ranks: np.ndarray  # float32 per row, NaN where unranked
    targets: np.ndarray  # float32 per row

    def __len__(self) -> int:
        return len(self.docs)

    def doc_ids(self, rows: Iterable[int]) -> list[str]:
        return self.docs.take(pa.array(np.fromiter(rows, dtype=np.int64))).to_pylist()

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> TrainingTable:
        """From a frame with ``TABLE_COLUMNS`` (tests, small tables)."""
        trec_io.require_columns(frame, TABLE_COLUMNS, "training table")
        table = pa.Table.from_pandas(
            frame[TABLE_COLUMNS], schema=TABLE_SCHEMA, preserve_index=False
        )
        return cls._from_arrow(table)

    @classmethod
    def _from_arrow(cls, table: pa.Table) -> TrainingTable:
        """Queries keep their first-appearance order; within a query, ranked rows go by
        rank and unranked ones last (stable), whatever order the file has."""
        query = _dictionary_encoded(table.column("query_id"))
        # Dictionary codes number queries in order of first appearance.
        codes = query.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        docs = table.column("doc_id").cast(pa.large_string()).combine_chunks()
        ranks = table.column("rank").cast(pa.float32()).to_numpy(zero_copy_only=False)
        targets = table.column("target").cast(pa.float32()).to_numpy(zero_copy_only=False)
        position = np.where(np.isnan(ranks), np.float32(np.inf), ranks)
        later_query = codes[1:] > codes[:-1]
        ordered = later_query | ((codes[1:] == codes[:-1]) & (position[1:] >= position[:-1]))
        if not ordered.all():
            order = np.lexsort((position, codes))
            codes, ranks, targets = codes[order], ranks[order], targets[order]
            docs = docs.take(pa.array(order))
        starts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
        offsets = np.concatenate([[0], starts, [len(codes)]]).astype(np.int64)
        if len(codes) == 0:
            offsets = np.zeros(1, dtype=np.int64)
        return cls(
            query_ids=query.dictionary.take(pa.array(codes[offsets[:-1]])).to_pylist(),
            offsets=offsets,
            docs=docs,
            ranks=ranks,
            targets=targets,
        )


def _dictionary_encoded(column: pa.ChunkedArray) -> pa.DictionaryArray:
    """One dictionary array whose codes number the values in order of first appearance."""
    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    column = column.unify_dictionaries()
    if column.num_chunks == 0:
        return pa.DictionaryArray.from_arrays(pa.array([], pa.int32()), pa.array([], pa.string()))
    return column.combine_chunks()


def read_table(path: Path) -> TrainingTable:
    """Read a training table written by this module (or by a user: the same columns)."""
    names = pq.read_schema(path).names
    missing = [c for c in TABLE_COLUMNS if c not in names]
    if missing:
        raise ValueError(f"{path}: training table lacks the columns {missing}; has {names}")
    table = pq.read_table(path, columns=TABLE_COLUMNS, read_dictionary=["query_id"])
    return TrainingTable._from_arrow(table)
