"""Reading and writing TREC runs, qrels and topics as pandas DataFrames.

Frames use fixed columns so every module can rely on them:

* run: ``query_id`` (str), ``doc_id`` (str), ``rank`` (int64), ``score`` (float64)
* qrels: ``query_id`` (str), ``doc_id`` (str), ``relevance`` (int64)
* topics: ``query_id`` (str), ``text`` (str)

Runs can have hundreds of millions of lines, so parsing goes through pandas' C engine and is
validated vectorised; only when something is wrong is the file scanned line by line, to name
the first offending line. Irregular but readable input (duplicate rows, rank ties, ...) is
handled by the rules in ``docs/reliability.md``; every rule applied is counted in a
:class:`ReadReport` and logged as a warning, so nothing is dropped silently. All writers are
atomic (temp file + ``os.replace``), so a crash never leaves a half-written file that looks
complete to Snakemake.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rank_distillm.data.atomic import atomic_output, atomic_write_text
from rank_distillm.data.textfiles import (
    FileFormatError,
    detect_compression,
    located,
    numbered_lines,
    stream_errors,
)

__all__ = [
    "QRELS_COLUMNS",
    "RUN_COLUMNS",
    "TOPICS_COLUMNS",
    "Finding",
    "ReadReport",
    "RunNotGrouped",
    "TrecFormatError",
    "iter_run_chunks",
    "rank_by_score",
    "require_columns",
    "read_qrels",
    "read_qrels_with_report",
    "read_run",
    "read_run_with_report",
    "read_topics",
    "read_topics_with_report",
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
_RUN_DTYPES = {0: str, 1: "category", 2: str, 3: "int64", 4: "float64", 5: "category"}
_RUN_CHECKS = {3: "integer", 4: "number"}
# Same field separator as pandas' C engine uses for sep=r"\s+" (space and tab only).
_WHITESPACE = re.compile(r"[ \t]+")
_HAS_WHITESPACE = r"\s"
# Files above this size get a log line before parsing starts, so a long read is explained.
_ANNOUNCE_BYTES = 256 * 2**20
# Writers compress by suffix; readers detect compression from the content.
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}


class TrecFormatError(FileFormatError):
    """A malformed run/qrels/topics file; the message names ``file:line`` and what was expected."""


class RunNotGrouped(TrecFormatError):
    """A run whose queries' lines are not contiguous, so it cannot be read in chunks."""


@dataclass(frozen=True)
class Finding:
    """Rows that a documented rule handled (rather than refused): how many, and what was done."""

    key: str
    count: int
    message: str


@dataclass(frozen=True)
class ReadReport:
    """What reading one file found; ``findings`` lists every rule that changed something.

    ``rows`` counts the file's data lines, ``kept`` the frame's rows. For runs,
    ``min_depth``/``max_depth`` are the fewest/most rows of a query and ``shallowest`` names
    the query with the fewest (a query with few candidates is kept, never dropped).
    """

    path: str
    kind: str
    rows: int
    kept: int
    queries: int
    findings: tuple[Finding, ...] = ()
    min_depth: int | None = None
    max_depth: int | None = None
    shallowest: str | None = None

    def count(self, key: str) -> int:
        """How many rows the rule ``key`` handled (0 if it never applied)."""
        return sum(finding.count for finding in self.findings if finding.key == key)

    def summary(self) -> str:
        text = f"{self.path}: {self.kind} with {self.rows} rows"
        if self.kept != self.rows:
            text += f" ({self.kept} kept)"
        text += f", {self.queries} queries"
        if self.min_depth is not None:
            text += f", {self.min_depth}-{self.max_depth} rows per query"
            if self.min_depth != self.max_depth:
                text += f" (fewest: query {self.shallowest})"
        return text

    def log(self, logger: logging.Logger = LOGGER) -> None:
        """One INFO summary line, then one WARNING per finding (each one a user should read)."""
        logger.info("read %s", self.summary())
        for finding in self.findings:
            logger.warning("%s: %s", self.path, finding.message)


# --------------------------------------------------------------------------- helpers


def _error(path: PathLike, line: int | None, what: str) -> TrecFormatError:
    return TrecFormatError(located(path, line, what))


def _compression(path: PathLike) -> str | None:
    return _COMPRESSION.get(Path(path).suffix)


def _is_integer(token: str) -> bool:
    # Mirrors pandas' int64 parser, which also accepts integral floats such as "3.0".
    try:
        return -(2**63) <= int(token) < 2**63
    except ValueError:
        pass
    try:
        value = float(token)
    except ValueError:
        return False
    return math.isfinite(value) and value.is_integer() and abs(value) < 2**63


def _is_number(token: str) -> bool:
    try:
        return not math.isnan(float(token))
    except ValueError:
        return False


def _locate_error(
    path: PathLike,
    compression: str | None,
    fields: tuple[str, ...],
    checks: dict[int, str],
    cause: Exception | None,
) -> FileFormatError:
    """Slow path: scan the file for the first bad line (only called once parsing has failed).

    ``checks`` maps a field index to "integer" or "number".
    """
    expected = f"expected {len(fields)} whitespace-separated columns ({' '.join(fields)})"
    try:
        for lineno, line in numbered_lines(path, compression):
            stripped = line.strip(" \t\r\n")
            if not stripped:
                continue
            tokens = _WHITESPACE.split(stripped)
            if len(tokens) != len(fields):
                return _error(path, lineno, f"{expected}, found {len(tokens)}")
            for index, kind in checks.items():
                ok, kind_text = (
                    (_is_integer, "an integer (64-bit)")
                    if kind == "integer"
                    else (_is_number, "a number")
                )
                if not ok(tokens[index]):
                    what = f"{fields[index]} {tokens[index]!r} is not {kind_text}"
                    return _error(path, lineno, what)
    except FileFormatError as error:  # not UTF-8, or a damaged compressed stream
        return error
    return _error(path, None, f"could not parse ({cause})")


def _read_columns(
    path: PathLike,
    fields: tuple[str, ...],
    dtypes: dict[int, Any],
    checks: dict[int, str],
    allow_empty: bool,
) -> pd.DataFrame:
    """Fast path: parse whitespace-separated columns with the C engine, strict dtypes.

    Blank lines, trailing whitespace, CRLF line ends and a UTF-8 byte-order mark are
    accepted; a file without data lines is refused unless ``allow_empty``.
    """
    compression = detect_compression(path)
    size = os.path.getsize(path)
    if size > _ANNOUNCE_BYTES:  # parsing takes about 35 CPU s per GiB
        LOGGER.info("reading %s (%.1f GiB, %s)", path, size / 2**30, compression or "plain text")
    try:
        with stream_errors(path, compression):
            frame = pd.read_csv(
                path,
                sep=r"\s+",
                header=None,
                names=list(range(len(fields))),
                dtype=dtypes,
                na_filter=False,  # "NA"/"null" are valid ids; missing trailing fields become ""
                quoting=csv.QUOTE_NONE,
                engine="c",
                compression=compression,
                encoding="utf-8",
            )
    except FileFormatError:
        raise
    except (ValueError, OverflowError) as exc:  # ParserError, UnicodeDecodeError
        raise _locate_error(path, compression, fields, checks, exc) from exc
    # A line with one field too few leaves the last column empty.
    if len(frame) and (frame[len(fields) - 1] == "").any():
        raise _locate_error(path, compression, fields, checks, None)
    if not len(frame) and not allow_empty:
        raise _error(
            path,
            None,
            f"has no data lines (it is empty or blank); expected lines of {len(fields)} "
            f"whitespace-separated columns ({' '.join(fields)})",
        )
    return frame


def _first(frame: pd.DataFrame, mask: np.ndarray, columns: Sequence[str]) -> str:
    """``query_id '1' doc_id 'a'`` for the first row where ``mask`` is true."""
    row = frame.iloc[int(np.flatnonzero(mask)[0])]
    values = (row[column] for column in columns)
    return " ".join(
        f"{column} {value!r}" if isinstance(value, str) else f"{column} {value}"
        for column, value in zip(columns, values, strict=True)
    )


@contextmanager
def _trec_errors() -> Iterator[None]:
    """Raise textfiles' errors (not UTF-8, damaged stream) as the TrecFormatError callers catch."""
    try:
        yield
    except TrecFormatError:
        raise
    except FileFormatError as error:
        raise TrecFormatError(str(error)) from error


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


def read_run(path: PathLike, *, allow_empty: bool = False) -> pd.DataFrame:
    """Read a TREC run ordered by query, then rank; see :func:`read_run_with_report`."""
    return read_run_with_report(path, allow_empty=allow_empty)[0]


def read_run_with_report(
    path: PathLike, *, allow_empty: bool = False
) -> tuple[pd.DataFrame, ReadReport]:
    """Read a TREC run and report (and log) every rule applied to it.

    Lines are ``query_id Q0 doc_id rank score tag`` separated by any spaces or tabs; the
    second and sixth columns are ignored. Rank, not score, is the order of a run: queries
    keep their first-appearance order, rows follow ascending rank, equal ranks follow the
    higher score and then file order. A duplicate (query_id, doc_id) keeps its first row in
    that order. Rank gaps are kept as they are.
    """
    with _trec_errors():
        frame = _read_columns(
            path,
            _RUN_FIELDS,
            _RUN_DTYPES,
            _RUN_CHECKS,
            allow_empty,
        )
    run = frame[[0, 2, 3, 4]].set_axis(RUN_COLUMNS, axis=1)
    run, codes, query_ids, findings = _normalise_run(run)
    depths = np.bincount(codes, minlength=len(query_ids))
    shallowest = int(depths.argmin()) if len(depths) else None
    report = ReadReport(
        path=os.fspath(path),
        kind="run",
        rows=len(frame),
        kept=len(run),
        queries=len(query_ids),
        findings=tuple(findings),
        min_depth=None if shallowest is None else int(depths[shallowest]),
        max_depth=None if shallowest is None else int(depths.max()),
        shallowest=None if shallowest is None else str(query_ids[shallowest]),
    )
    report.log()
    return run, report


def _normalise_run(
    run: pd.DataFrame,
) -> tuple[pd.DataFrame, np.ndarray, pd.Index, list[Finding]]:
    """Order a run (queries by first appearance, rows by rank, equal ranks by higher score
    then file order) and drop duplicate (query, doc) rows, keeping the best-ranked; return
    the run, its query codes and ids, and what was found."""
    codes, query_ids = pd.factorize(run["query_id"])
    codes = codes.astype(np.int32 if len(query_ids) < 2**31 else np.int64)  # half the memory
    ranks = run["rank"].to_numpy()
    order = np.lexsort((ranks, codes))
    if _repeats(codes[order], ranks[order]).any():
        order = np.lexsort((-run["score"].to_numpy(), ranks, codes))  # stable: then file order
    codes = codes[order]
    run = run.iloc[order].reset_index(drop=True)
    del order

    findings = []
    duplicate = run.duplicated(["query_id", "doc_id"], keep="first").to_numpy()
    if duplicate.any():
        count = int(duplicate.sum())
        first = _first(run, duplicate, ["query_id", "doc_id", "rank"])
        findings.append(
            Finding(
                "duplicate_rows",
                count,
                f"dropped {count} duplicate (query_id, doc_id) rows; each pair keeps its "
                f"best-ranked row (first dropped: {first})",
            )
        )
        run = run[~duplicate].reset_index(drop=True)
        codes = codes[~duplicate]

    ranks = run["rank"].to_numpy()
    tied = _repeats(codes, ranks)
    if tied.any():
        count = int(tied.sum())
        first = _first(run, tied, ["query_id", "rank"])
        findings.append(
            Finding(
                "rank_ties",
                count,
                f"{count} rows have the same rank as the row before them in their query; "
                f"tied rows are ordered by score (highest first), then by file order "
                f"(first: {first})",
            )
        )
    scores = run["score"].to_numpy()
    rising = np.concatenate(([False], (codes[1:] == codes[:-1]) & (scores[1:] > scores[:-1])))
    if rising.any():
        count = int(rising.sum())
        first = _first(run, rising, ["query_id", "rank", "score"])
        findings.append(
            Finding(
                "score_rank_conflicts",
                count,
                f"{count} rows score higher than the row ranked before them; the rank column "
                f"decides the order, so check that it is meant to (first: {first})",
            )
        )

    return run, codes, query_ids, findings


def _repeats(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Rows whose value equals the previous row's within the same query (sorted input)."""
    same = (codes[1:] == codes[:-1]) & (values[1:] == values[:-1])
    return np.concatenate(([False], same))


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


def read_qrels(path: PathLike, *, allow_empty: bool = False) -> pd.DataFrame:
    """Read TREC qrels; see :func:`read_qrels_with_report`."""
    return read_qrels_with_report(path, allow_empty=allow_empty)[0]


def read_qrels_with_report(
    path: PathLike, *, allow_empty: bool = False
) -> tuple[pd.DataFrame, ReadReport]:
    """Read ``query_id iteration doc_id relevance`` lines and report (and log) what was done.

    The iteration column (``0`` or ``Q0``) is ignored. A duplicate (query_id, doc_id) keeps
    its last judgement, as trec_eval does. Relevance may be negative (some collections mark
    junk that way).
    """
    with _trec_errors():
        frame = _read_columns(
            path,
            _QRELS_FIELDS,
            {0: str, 1: "category", 2: str, 3: "int64"},
            {3: "integer"},
            allow_empty,
        )
    qrels = frame[[0, 2, 3]].set_axis(QRELS_COLUMNS, axis=1)
    findings = []
    pair = ["query_id", "doc_id"]
    duplicate = qrels.duplicated(pair, keep="last").to_numpy()
    if duplicate.any():
        count = int(duplicate.sum())
        repeated = qrels[qrels.duplicated(pair, keep=False)]
        labels = repeated.groupby(pair, sort=False)["relevance"].nunique()
        first = _first(qrels, duplicate, [*pair, "relevance"])
        findings.append(
            Finding(
                "duplicate_judgements",
                count,
                f"dropped {count} duplicate (query_id, doc_id) judgements; each pair keeps its "
                f"last one (pairs with conflicting labels: {int((labels > 1).sum())}; first "
                f"dropped: {first})",
            )
        )
        qrels = qrels[~duplicate].reset_index(drop=True)
    report = ReadReport(
        path=os.fspath(path),
        kind="qrels",
        rows=len(frame),
        kept=len(qrels),
        queries=qrels["query_id"].nunique(),
        findings=tuple(findings),
    )
    report.log()
    return qrels, report


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


def read_topics(path: PathLike, *, allow_empty: bool = False) -> pd.DataFrame:
    """Read ``query_id<TAB>text`` lines; see :func:`read_topics_with_report`."""
    return read_topics_with_report(path, allow_empty=allow_empty)[0]


def read_topics_with_report(
    path: PathLike, *, allow_empty: bool = False
) -> tuple[pd.DataFrame, ReadReport]:
    """Read ``query_id<TAB>text`` lines (exactly two tab-separated fields) and report them.

    Texts are kept verbatim. Blank lines are skipped. A repeated query with the same text is
    dropped and counted; with a different text it is an error, since a query has one text.
    An empty text is kept and counted: the query stays in the evaluation. Topic files are
    small, so plain Python parsing is fine and tells empty text from no text.
    """
    with _trec_errors():
        parsed = _parse_topic_lines(path)
    if not parsed.rows and not allow_empty:
        raise _error(
            path, None, "has no data lines (it is empty or blank); expected query_id<TAB>text"
        )
    texts = parsed.texts
    topics = pd.DataFrame(
        {"query_id": list(texts), "text": list(texts.values())}, columns=TOPICS_COLUMNS, dtype=str
    )
    report = ReadReport(
        path=os.fspath(path),
        kind="topics",
        rows=parsed.rows,
        kept=len(topics),
        queries=len(topics),
        findings=tuple(_topic_findings(parsed)),
    )
    report.log()
    return topics, report


@dataclass
class _TopicLines:
    """A topics file as read: each query's text, and the queries the rules set apart."""

    texts: dict[str, str] = field(default_factory=dict)
    repeated: list[str] = field(default_factory=list)  # a repeated line, same text: dropped
    empty: list[str] = field(default_factory=list)  # an empty text: kept
    rows: int = 0  # data lines (not blank)


def _parse_topic_lines(path: PathLike) -> _TopicLines:
    """The topics of ``path``; a malformed line or a query with two texts is an error."""
    parsed = _TopicLines()
    lines: dict[str, int] = {}
    for lineno, raw in numbered_lines(path, detect_compression(path)):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        parsed.rows += 1
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
        if query_id in parsed.texts:
            if parsed.texts[query_id] != text:
                raise _error(
                    path,
                    lineno,
                    f"query_id {query_id!r} already has the text {parsed.texts[query_id]!r} "
                    f"(line {lines[query_id]}), here {text!r}; give each query one text",
                )
            parsed.repeated.append(query_id)
            continue
        if not text.strip():
            parsed.empty.append(query_id)
        parsed.texts[query_id] = text
        lines[query_id] = lineno
    return parsed


def _topic_findings(parsed: _TopicLines) -> list[Finding]:
    """What the report says about repeated lines and empty texts."""
    findings = []
    if parsed.repeated:
        findings.append(
            Finding(
                "duplicate_topics",
                len(parsed.repeated),
                f"dropped {len(parsed.repeated)} repeated lines of queries already read with "
                f"the same text (first: query_id {parsed.repeated[0]!r})",
            )
        )
    if parsed.empty:
        findings.append(
            Finding(
                "empty_texts",
                len(parsed.empty),
                f"{len(parsed.empty)} queries have an empty text and are kept, so a model sees "
                f"only the passage for them (first: query_id {parsed.empty[0]!r})",
            )
        )
    return findings


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


@contextmanager
def _run_chunks(
    path: PathLike, chunk_lines: int, **options: Any
) -> Iterator[Iterator[pd.DataFrame]]:
    """pandas' chunked reader with the settings and errors of :func:`read_run`."""
    compression = detect_compression(path)
    try:
        with _trec_errors(), stream_errors(path, compression):
            yield pd.read_csv(
                path,
                sep=r"\s+",
                header=None,
                na_filter=False,
                quoting=csv.QUOTE_NONE,
                engine="c",
                compression=compression,
                encoding="utf-8",
                chunksize=chunk_lines,
                **options,
            )
    except FileFormatError:
        raise
    except (ValueError, OverflowError) as exc:  # ParserError, UnicodeDecodeError
        raise _locate_error(path, compression, _RUN_FIELDS, _RUN_CHECKS, exc) from exc


def run_query_ids(path: PathLike, chunk_lines: int = 5_000_000) -> list[str]:
    """A run's query ids in first-appearance order, reading only the first column."""
    seen: dict[str, None] = {}
    with _run_chunks(path, chunk_lines, usecols=[0], dtype={0: str}) as chunks:
        for chunk in chunks:
            seen.update(dict.fromkeys(pd.unique(chunk[0])))
    return list(seen)


def _first_reappearance(path: PathLike, query_id: str) -> int | None:
    """The line where ``query_id`` appears again after other queries (slow path)."""
    previous, left = None, False
    for lineno, line in numbered_lines(path, detect_compression(path)):
        token = _WHITESPACE.split(line.strip(" \t\r\n"), maxsplit=1)[0]
        if not token:
            continue
        if token == query_id and left:
            return lineno
        left = left or (previous == query_id and token != query_id)
        previous = token
    return None


def iter_run_chunks(path: PathLike, chunk_lines: int = 2_000_000) -> Iterator[pd.DataFrame]:
    """Read a run in chunks of whole queries with bounded memory (multi-GB training runs).

    Each chunk is ordered, and its duplicates dropped, by the rules of :func:`read_run`;
    what they found is logged once at the end with totals. Each query's lines must be
    contiguous, as in every run this pipeline writes and the paper publishes; otherwise
    :class:`RunNotGrouped` names the line.
    """
    done: set[str] = set()
    carry: pd.DataFrame | None = None
    found: dict[str, list] = {}  # rule -> [total rows, first message]
    rows = queries = 0

    def emit(run: pd.DataFrame) -> pd.DataFrame:
        nonlocal queries
        ordered, _, ids, findings = _normalise_run(run)
        queries += len(ids)
        for finding in findings:
            found.setdefault(finding.key, [0, finding.message])[0] += finding.count
        return ordered

    with _run_chunks(path, chunk_lines, names=list(range(6)), dtype=_RUN_DTYPES) as chunks:
        for frame in chunks:
            if len(frame) and (frame[5] == "").any():
                compression = detect_compression(path)
                raise _locate_error(path, compression, _RUN_FIELDS, _RUN_CHECKS, None)
            rows += len(frame)
            chunk = frame[[0, 2, 3, 4]].set_axis(RUN_COLUMNS, axis=1)
            if carry is not None:
                chunk = pd.concat([carry, chunk], ignore_index=True)
            ids = chunk["query_id"]
            starts = ids != ids.shift()
            unique = pd.unique(ids)
            again = [query_id for query_id in unique if query_id in done]
            if again or int(starts.sum()) != len(unique):
                if not again:
                    blocks = starts.groupby(ids, sort=False).sum()
                    again = [str(blocks[blocks > 1].index[0])]
                raise RunNotGrouped(
                    located(
                        path,
                        _first_reappearance(path, again[0]),
                        f"query {again[0]} appears again after other queries, so the run "
                        "cannot be read query by query (`sort -s -k1,1` groups it)",
                    )
                )
            carry = chunk[ids == unique[-1]]
            done.update(unique[:-1])
            if len(carry) < len(chunk):
                yield emit(chunk[ids != unique[-1]])
    if carry is not None and len(carry):
        yield emit(carry)
    if not rows:
        raise _error(path, None, "has no data lines (it is empty or blank)")
    LOGGER.info("read %s: run with %d rows, %d queries, in chunks", os.fspath(path), rows, queries)
    for key, (count, message) in found.items():
        LOGGER.warning("%s: %s (%s: %d rows in all)", os.fspath(path), message, key, count)
