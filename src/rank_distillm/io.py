"""Reading and writing TREC runs, qrels and topics as pandas DataFrames.

Frames use fixed columns so every module can rely on them:

* run: ``query_id`` (str), ``doc_id`` (str), ``rank`` (int64, 1-based), ``score`` (float64)
* qrels: ``query_id`` (str), ``doc_id`` (str), ``relevance`` (int64)
* topics: ``query_id`` (str), ``text`` (str)

Runs can have hundreds of millions of lines, so parsing goes through pandas' C engine and is
validated vectorised; only when something is wrong is the file scanned line by line, to name
the first offending line. All writers are atomic (temp file + ``os.replace``), so a crash never
leaves a half-written file that looks complete to Snakemake.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import logging
import lzma
import math
import os
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

__all__ = [
    "QRELS_COLUMNS",
    "RUN_COLUMNS",
    "TOPICS_COLUMNS",
    "RunNotGrouped",
    "TrecFormatError",
    "atomic_output",
    "atomic_write_text",
    "iter_run_chunks",
    "rank_by_score",
    "require_columns",
    "read_qrels",
    "read_run",
    "read_topics",
    "run_query_ids",
    "truncate_run",
    "write_qrels",
    "write_run",
    "write_topics",
]

LOGGER = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]

RUN_COLUMNS = ["query_id", "doc_id", "rank", "score"]
QRELS_COLUMNS = ["query_id", "doc_id", "relevance"]
TOPICS_COLUMNS = ["query_id", "text"]

_RUN_FIELDS = ("query_id", "Q0", "doc_id", "rank", "score", "tag")
_QRELS_FIELDS = ("query_id", "iteration", "doc_id", "relevance")
# Same field separator as pandas' C engine uses for sep=r"\s+" (space and tab only).
_WHITESPACE = re.compile(r"[ \t]+")
_HAS_WHITESPACE = r"\s"
_OPENERS: dict[str, Callable[..., IO[str]]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}


class TrecFormatError(ValueError):
    """A malformed run/qrels/topics file; the message names ``file:line`` and what was expected."""


class RunNotGrouped(TrecFormatError):
    """A run whose queries' lines are not contiguous, so it cannot be read in chunks."""


# --------------------------------------------------------------------------- atomic writing


@contextmanager
def atomic_output(path: PathLike) -> Iterator[Path]:
    """Yield a temp path next to ``path``; move it onto ``path`` only if the block succeeds.

    The temp name ends with the target's name, so suffix-based inference (``.gz``) still works.
    Parent directories are created. On error the temp file is removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{target.name}")
    try:
        yield tmp
        with open(tmp, "rb") as f:  # flush to disk before the rename makes it visible
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding=encoding)


# --------------------------------------------------------------------------- helpers


def _error(path: PathLike, line: int | None, what: str) -> TrecFormatError:
    where = f"{os.fspath(path)}:{line}" if line is not None else os.fspath(path)
    return TrecFormatError(f"{where}: {what}")


def _compression(path: PathLike) -> str | None:
    return _COMPRESSION.get(Path(path).suffix)


def _open_text(path: PathLike) -> IO[str]:
    opener = _OPENERS.get(Path(path).suffix, open)
    return opener(path, "rt", encoding="utf-8")


def _is_integer(token: str) -> bool:
    # Mirrors pandas' int64 parser, which also accepts integral floats such as "3.0".
    try:
        value = float(token)
    except ValueError:
        return False
    return math.isfinite(value) and value.is_integer()


def _is_number(token: str) -> bool:
    try:
        return not math.isnan(float(token))
    except ValueError:
        return False


def _locate_error(
    path: PathLike, fields: tuple[str, ...], checks: dict[int, str], cause: Exception | None
) -> TrecFormatError:
    """Slow path: scan the file for the first bad line (only called once parsing has failed).

    ``checks`` maps a field index to "integer" or "number".
    """
    expected = f"expected {len(fields)} whitespace-separated columns ({' '.join(fields)})"
    with _open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            stripped = line.strip(" \t\r\n")
            if not stripped:
                continue
            tokens = _WHITESPACE.split(stripped)
            if len(tokens) != len(fields):
                return _error(path, lineno, f"{expected}, found {len(tokens)}")
            for index, kind in checks.items():
                ok, article = (_is_integer, "an") if kind == "integer" else (_is_number, "a")
                if not ok(tokens[index]):
                    what = f"{fields[index]} {tokens[index]!r} is not {article} {kind}"
                    return _error(path, lineno, what)
    return _error(path, None, f"could not parse ({cause})")


def _read_columns(
    path: PathLike, fields: tuple[str, ...], dtypes: dict[int, Any], checks: dict[int, str]
) -> pd.DataFrame:
    """Fast path: parse whitespace-separated columns with the C engine, strict dtypes."""
    try:
        frame = pd.read_csv(
            path,
            sep=r"\s+",
            header=None,
            names=list(range(len(fields))),
            dtype=dtypes,
            na_filter=False,  # "NA"/"null" are valid ids; missing trailing fields become ""
            quoting=csv.QUOTE_NONE,
            engine="c",
            compression=_compression(path),
            encoding="utf-8",
        )
    except (ValueError, OverflowError) as exc:  # ParserError is a ValueError
        raise _locate_error(path, fields, checks, exc) from exc
    # A line with one field too few leaves the last column empty.
    if len(frame) and (frame[len(fields) - 1] == "").any():
        raise _locate_error(path, fields, checks, None)
    return frame


def _rank_order(run: pd.DataFrame) -> np.ndarray:
    """Stable order: queries in first-appearance order, then rank ascending."""
    codes, _ = pd.factorize(run["query_id"])
    return np.lexsort((run["rank"].to_numpy(), codes))


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Fail with the missing column names, e.g. ``training table lacks the columns [...]``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks the columns {missing}; has {list(frame.columns)}")


def _check_tokens(values: pd.Series, what: str, path: PathLike) -> None:
    """Ids and tags are whitespace-separated tokens: they must be non-empty and space-free."""
    if values.isna().any():
        raise ValueError(f"{os.fspath(path)}: {what} contains missing values")
    text = values.astype(str)
    bad = text[(text == "") | text.str.contains(_HAS_WHITESPACE, regex=True)]
    if len(bad):
        raise ValueError(f"{os.fspath(path)}: {what} {bad.iloc[0]!r} is empty or has whitespace")


def _integer_column(values: pd.Series, what: str, path: PathLike) -> np.ndarray:
    array = values.to_numpy()
    if not pd.api.types.is_integer_dtype(array.dtype):
        as_float = array.astype("float64")
        if not np.all(np.isfinite(as_float) & (as_float == np.round(as_float))):
            raise ValueError(f"{os.fspath(path)}: {what} must be integers")
    return array.astype("int64")


def _write_columns(frame: pd.DataFrame, path: PathLike) -> None:
    with atomic_output(path) as tmp:
        frame.to_csv(
            tmp,
            sep=" ",
            header=False,
            index=False,
            quoting=csv.QUOTE_NONE,
            lineterminator="\n",
            compression=_compression(path),
        )


# --------------------------------------------------------------------------- runs


def read_run(path: PathLike) -> pd.DataFrame:
    """Read a TREC run (any whitespace, any second column) ordered by query, then rank.

    Rank, not score, is the order of a run. Queries keep their first-appearance order; a
    duplicate (query_id, doc_id) keeps its best-ranked row.
    """
    frame = _read_columns(
        path,
        _RUN_FIELDS,
        {0: str, 1: "category", 2: str, 3: "int64", 4: "float64", 5: "category"},
        {3: "integer", 4: "number"},
    )
    run = frame[[0, 2, 3, 4]].set_axis(RUN_COLUMNS, axis=1)
    run = run.iloc[_rank_order(run)]
    run = run.drop_duplicates(["query_id", "doc_id"], keep="first")
    return run.reset_index(drop=True)


def write_run(run: pd.DataFrame, path: PathLike, tag: str) -> None:
    """Write ``query_id Q0 doc_id rank score tag`` lines in the frame's order, atomically.

    Scores are written with repr precision, so they read back bit-identical.
    """
    require_columns(run, RUN_COLUMNS, "run")
    _check_tokens(pd.Series([tag]), "tag", path)
    _check_tokens(run["query_id"], "query_id", path)
    _check_tokens(run["doc_id"], "doc_id", path)
    ranks = _integer_column(run["rank"], "rank", path)
    if (ranks < 1).any():
        raise ValueError(f"{os.fspath(path)}: ranks must be >= 1, found {ranks.min()}")
    if run["score"].isna().any():
        raise ValueError(f"{os.fspath(path)}: score contains NaN")
    out = pd.DataFrame(
        {
            "query_id": run["query_id"].to_numpy(),
            "Q0": "Q0",
            "doc_id": run["doc_id"].to_numpy(),
            "rank": ranks,
            "score": run["score"].to_numpy(dtype="float64"),
            "tag": tag,
        }
    )
    _write_columns(out, path)


def rank_by_score(run: pd.DataFrame) -> pd.DataFrame:
    """Sort each query by score descending and renumber ranks 1..n.

    Ties keep the input order (stable); queries keep first-appearance order; NaN scores sort last.
    """
    require_columns(run, ["query_id", "doc_id", "score"], "run")
    codes, _ = pd.factorize(run["query_id"])
    order = np.lexsort((-run["score"].to_numpy(dtype="float64"), codes))
    out = run.iloc[order].reset_index(drop=True)
    out["rank"] = out.groupby("query_id", sort=False).cumcount().to_numpy(dtype="int64") + 1
    extra = [c for c in out.columns if c not in RUN_COLUMNS]
    return out[RUN_COLUMNS + extra]


def truncate_run(run: pd.DataFrame, depth: int) -> pd.DataFrame:
    """Keep the first ``depth`` rows of each query in rank order (rank gaps do not matter)."""
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    require_columns(run, ["query_id", "rank"], "run")
    ordered = run.iloc[_rank_order(run)]
    keep = ordered.groupby("query_id", sort=False).cumcount().to_numpy() < depth
    return ordered[keep].reset_index(drop=True)


# --------------------------------------------------------------------------- qrels


def read_qrels(path: PathLike) -> pd.DataFrame:
    """Read ``query_id iteration doc_id relevance`` lines; a duplicate (query, doc) keeps the last.

    Relevance may be negative (some collections mark junk that way).
    """
    frame = _read_columns(
        path,
        _QRELS_FIELDS,
        {0: str, 1: "category", 2: str, 3: "int64"},
        {3: "integer"},
    )
    qrels = frame[[0, 2, 3]].set_axis(QRELS_COLUMNS, axis=1)
    qrels = qrels.drop_duplicates(["query_id", "doc_id"], keep="last")
    return qrels.reset_index(drop=True)


def write_qrels(qrels: pd.DataFrame, path: PathLike) -> None:
    """Write ``query_id 0 doc_id relevance`` lines atomically."""
    require_columns(qrels, QRELS_COLUMNS, "qrels")
    _check_tokens(qrels["query_id"], "query_id", path)
    _check_tokens(qrels["doc_id"], "doc_id", path)
    out = pd.DataFrame(
        {
            "query_id": qrels["query_id"].to_numpy(),
            "iteration": "0",
            "doc_id": qrels["doc_id"].to_numpy(),
            "relevance": _integer_column(qrels["relevance"], "relevance", path),
        }
    )
    _write_columns(out, path)


# --------------------------------------------------------------------------- topics


def read_topics(path: PathLike) -> pd.DataFrame:
    """Read ``query_id<TAB>text`` lines (exactly two tab-separated fields; blank lines skipped).

    Topic files are small, so plain Python parsing is fine and tells empty text from no text.
    """
    ids: list[str] = []
    texts: list[str] = []
    with _open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                raise _error(
                    path,
                    lineno,
                    f"expected 2 tab-separated columns (query_id text), found {len(fields)}",
                )
            query_id, text = fields
            if not query_id or re.search(_HAS_WHITESPACE, query_id):
                raise _error(path, lineno, f"query_id {query_id!r} is empty or has whitespace")
            ids.append(query_id)
            texts.append(text)
    return pd.DataFrame({"query_id": ids, "text": texts}, columns=TOPICS_COLUMNS, dtype=str)


def write_topics(topics: pd.DataFrame, path: PathLike) -> None:
    """Write ``query_id<TAB>text`` lines atomically; texts with tabs or newlines are refused."""
    require_columns(topics, TOPICS_COLUMNS, "topics")
    _check_tokens(topics["query_id"], "query_id", path)
    lines = []
    for query_id, text in zip(topics["query_id"], topics["text"], strict=True):
        if not isinstance(text, str):
            raise ValueError(f"{os.fspath(path)}: query {query_id}: text {text!r} is not a string")
        if any(c in text for c in "\t\n\r"):
            raise ValueError(
                f"{os.fspath(path)}: query {query_id}: text contains a tab or newline: {text!r}"
            )
        lines.append(f"{query_id}\t{text}\n")
    atomic_write_text(path, "".join(lines))


# --------------------------------------------------------------------------- streaming runs


def _csv_chunks(path: PathLike, chunk_lines: int, **options: Any) -> Iterator[pd.DataFrame]:
    return pd.read_csv(
        path,
        sep=r"\s+",
        header=None,
        na_filter=False,
        quoting=csv.QUOTE_NONE,
        engine="c",
        compression=_compression(path),
        encoding="utf-8",
        chunksize=chunk_lines,
        **options,
    )


def run_query_ids(path: PathLike, chunk_lines: int = 5_000_000) -> list[str]:
    """A run's query ids in first-appearance order, reading only the first column."""
    seen: dict[str, None] = {}
    try:
        for chunk in _csv_chunks(path, chunk_lines, usecols=[0], dtype={0: str}):
            seen.update(dict.fromkeys(pd.unique(chunk[0])))
    except (ValueError, OverflowError) as exc:
        raise _locate_error(path, _RUN_FIELDS, {3: "integer", 4: "number"}, exc) from exc
    return list(seen)


def _first_reappearance(path: PathLike, query_id: str) -> int | None:
    """The line where ``query_id`` appears again after other queries (slow path)."""
    previous, left = None, False
    with _open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            tokens = _WHITESPACE.split(line.strip(" \t\r\n"), maxsplit=1)
            if not tokens[0]:
                continue
            if tokens[0] == query_id and left:
                return lineno
            if previous == query_id and tokens[0] != query_id:
                left = True
            previous = tokens[0]
    return None


def iter_run_chunks(path: PathLike, chunk_lines: int = 2_000_000) -> Iterator[pd.DataFrame]:
    """Read a run in chunks of whole queries with bounded memory (multi-GB training runs).

    Each chunk is a run frame ordered as :func:`read_run` orders a whole run (queries in
    first-appearance order, rows by rank, a duplicate (query, doc) keeps its best rank).
    Each query's lines must be contiguous, as in every run this pipeline writes and the
    paper publishes; otherwise :class:`RunNotGrouped` names the line.
    """
    checks = {3: "integer", 4: "number"}
    dtypes = {0: str, 1: "category", 2: str, 3: "int64", 4: "float64", 5: "category"}
    done: set[str] = set()
    carry: pd.DataFrame | None = None
    duplicates = 0
    try:
        reader = _csv_chunks(path, chunk_lines, names=list(range(6)), dtype=dtypes)
        for frame in reader:
            if len(frame) and (frame[5] == "").any():
                raise _locate_error(path, _RUN_FIELDS, checks, None)
            chunk = frame[[0, 2, 3, 4]].set_axis(RUN_COLUMNS, axis=1)
            if carry is not None:
                chunk = pd.concat([carry, chunk], ignore_index=True)
            ids = chunk["query_id"]
            blocks = int((ids != ids.shift()).sum())
            unique = pd.unique(ids)
            again = [query_id for query_id in unique if query_id in done]
            if again or blocks != len(unique):
                if not again:
                    counts = (ids != ids.shift()).groupby(ids, sort=False).sum()
                    again = [str(counts[counts > 1].index[0])]
                line = _first_reappearance(path, again[0])
                where = f"{os.fspath(path)}:{line}" if line else os.fspath(path)
                raise RunNotGrouped(
                    f"{where}: query {again[0]} appears again after other queries, so the run "
                    "cannot be read query by query (`sort -s -k1,1` groups it)"
                )
            last = unique[-1]
            carry = chunk[ids == last]
            complete = chunk[ids != last]
            done.update(unique[:-1])
            if len(complete):
                ordered, dropped = _ordered_run(complete)
                duplicates += dropped
                yield ordered
    except (ValueError, OverflowError) as exc:
        if isinstance(exc, TrecFormatError):
            raise
        raise _locate_error(path, _RUN_FIELDS, checks, exc) from exc
    if carry is not None and len(carry):
        ordered, dropped = _ordered_run(carry)
        duplicates += dropped
        yield ordered
    if duplicates:
        LOGGER.warning("%s: %d duplicate (query, doc) rows; kept the best-ranked", path, duplicates)


def _ordered_run(run: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    run = run.iloc[_rank_order(run)]
    kept = run.drop_duplicates(["query_id", "doc_id"], keep="first")
    return kept.reset_index(drop=True), len(run) - len(kept)
