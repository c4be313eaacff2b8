"""Generating a teacher run with an open LLM: sliding-window listwise re-ranking of a
first-stage run, resumable, written in the Zenodo teacher format.

Queries are processed in blocks of ``batch_size``. Within a block, the n-th window of every
query goes to the model in one batch (windows of one query depend on each other, windows of
different queries do not). A finished block is appended to a partial file and fsynced, so a
killed job restarts with the queries not yet done; the run itself is written atomically
once every query is done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from rank_distillm.data import atomic
from rank_distillm.data import trec as trec_io
from rank_distillm.data.query_sample import sample_query_ids
from rank_distillm.data.texts import TextLookup
from rank_distillm.teachers.llm.backends import BACKENDS, DTYPES, Generator, Sampling
from rank_distillm.teachers.llm.parsing import RepairCounts, parse_permutation
from rank_distillm.teachers.llm.prompts import PROMPT_FORMATS, PromptBuilder
from rank_distillm.teachers.llm.shards import Shard, shard_items
from rank_distillm.teachers.llm.window import apply_order, window_spans

LOGGER = logging.getLogger(__name__)

# Settings that change neither which passages are ranked nor how: a partial file made with
# other values of these is still valid.
_NOT_FINGERPRINTED = ("batch_size", "backend", "dtype")


@dataclass(frozen=True)
class GenerationSettings:
    """Config key ``teachers.<name>.generate``. The number of queries is not here: it is the
    teacher's ``queries`` for the training run and all queries for an evaluation set, so
    the caller passes it. Defaults are the paper's and rank_llm's."""

    model: str
    prompt_format: str = "rank_zephyr"
    window: int = 20
    stride: int = 10
    depth: int = 100
    # Words per passage; None is rank_llm's 300 * 20 / window (then shrunk to fit the context).
    passage_length: int | None = None
    context_size: int = 4096
    batch_size: int = 16
    # None: the tokens of a perfect answer "[1] > ... > [window]" (rank_llm's budget).
    max_new_tokens: int | None = None
    # None: as many as max_new_tokens, as rank_llm forces (the model cannot stop early).
    min_new_tokens: int | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 42
    backend: str = "auto"
    dtype: str = "auto"

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.model, str) or not self.model:
            problems.append(f"model must be a hub id or a folder, got {self.model!r}")
        if self.prompt_format not in PROMPT_FORMATS:
            problems.append(f"prompt_format must be one of {list(PROMPT_FORMATS)}")
        if self.window < 1 or not 1 <= self.stride <= self.window:
            problems.append(f"need window >= 1 and 1 <= stride <= window ({self.window=})")
        for key in ("depth", "context_size", "batch_size"):
            if getattr(self, key) < 1:
                problems.append(f"{key} must be >= 1")
        for key in ("passage_length", "max_new_tokens"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                problems.append(f"{key} must be >= 1 or null")
        if self.min_new_tokens is not None and self.min_new_tokens < 0:
            problems.append("min_new_tokens must be >= 0 or null")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            problems.append("need temperature >= 0 and 0 < top_p <= 1")
        if self.backend not in BACKENDS:
            problems.append(f"backend must be one of {list(BACKENDS)}")
        if self.dtype not in DTYPES:
            problems.append(f"dtype must be one of {list(DTYPES)}")
        if problems:
            raise ValueError("generation settings: " + "; ".join(problems))

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str = "generate") -> GenerationSettings:
        """Build from a config mapping; an unknown or missing key is an error naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; known keys: {sorted(known)}")
        if "model" not in config:
            raise ValueError(f"{where}: the key 'model' (hub id or local folder) is required")
        return cls(**config)

    def fingerprint(self) -> dict[str, Any]:
        """The settings that decide the result (a partial file must have been made with them)."""
        values = asdict(self)
        for key in _NOT_FINGERPRINTED:
            values.pop(key)
        return values


@dataclass(frozen=True)
class QueryCandidates:
    query_id: str
    text: str
    doc_ids: tuple[str, ...]


@dataclass
class QueryResult:
    """A re-ranked query as the partial file stores it."""

    query_id: str
    doc_ids: list[str]
    repairs: RepairCounts
    prompt_tokens: int = 0
    shortened_windows: int = 0  # windows whose passages were cut further to fit the context

    def to_json(self) -> str:
        record = {
            "query_id": self.query_id,
            "doc_ids": self.doc_ids,
            "repairs": self.repairs.as_dict(),
            "prompt_tokens": self.prompt_tokens,
            "shortened_windows": self.shortened_windows,
        }
        return json.dumps(record, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> QueryResult:
        record = json.loads(line)
        return cls(
            query_id=record["query_id"],
            doc_ids=list(record["doc_ids"]),
            repairs=RepairCounts(**record["repairs"]),
            prompt_tokens=int(record["prompt_tokens"]),
            shortened_windows=int(record["shortened_windows"]),
        )


# --------------------------------------------------------------------------- re-ranking


def rerank_block(
    queries: Sequence[QueryCandidates],
    doc_texts: Mapping[str, str],
    generator: Generator,
    builder: PromptBuilder,
    settings: GenerationSettings,
) -> list[QueryResult]:
    """Slide the window over each query's candidates; step n of all queries is one batch."""
    rankings = [list(query.doc_ids) for query in queries]
    spans = [window_spans(len(ranking), settings.window, settings.stride) for ranking in rankings]
    repairs = [RepairCounts() for _ in queries]
    prompt_tokens = [0] * len(queries)
    shortened = [0] * len(queries)
    for step in range(max((len(s) for s in spans), default=0)):
        # Windows of one step usually have one length; a short list can make a shorter one.
        by_length: dict[int, list[int]] = {}
        for index, query_spans in enumerate(spans):
            if step < len(query_spans):
                start, end = query_spans[step]
                by_length.setdefault(end - start, []).append(index)
        for length, members in sorted(by_length.items()):
            answer_tokens = builder.answer_tokens(length)
            max_new = settings.max_new_tokens or answer_tokens
            min_new = settings.min_new_tokens if settings.min_new_tokens is not None else max_new
            sampling = Sampling(
                max_new_tokens=max_new,
                min_new_tokens=min(min_new, max_new),
                temperature=settings.temperature,
                top_p=settings.top_p,
            )
            prompts = []
            for index in members:
                start, end = spans[index][step]
                passages = [doc_texts[doc_id] for doc_id in rankings[index][start:end]]
                prompt = builder.build(queries[index].text, passages, max_new)
                prompts.append(prompt.token_ids)
                prompt_tokens[index] += len(prompt.token_ids)
                shortened[index] += prompt.shortened
            answers = generator.generate(prompts, sampling)
            if len(answers) != len(prompts):
                raise RuntimeError(
                    f"the model gave {len(answers)} answers to {len(prompts)} prompts"
                )
            for index, answer in zip(members, answers, strict=True):
                order, counts = parse_permutation(answer, length)
                apply_order(rankings[index], spans[index][step][0], order)
                repairs[index] = repairs[index] + counts
    return [
        QueryResult(query.query_id, ranking, counts, tokens, cut)
        for query, ranking, counts, tokens, cut in zip(
            queries, rankings, repairs, prompt_tokens, shortened, strict=True
        )
    ]


# --------------------------------------------------------------------------- partial file


def candidates_digest(queries: Iterable[QueryCandidates]) -> str:
    """A hash of the queries and their candidate lists: a partial file from another
    first-stage run or sample cannot be resumed by mistake."""
    digest = hashlib.sha256()
    for query in queries:
        digest.update(query.query_id.encode())
        digest.update(b"\t")
        digest.update("\t".join(query.doc_ids).encode())
        digest.update(b"\n")
    return digest.hexdigest()


class PartialRun:
    """Finished queries, one JSON line each after a header line with the settings.

    Appends are flushed and fsynced per block. A last line cut short by a kill is dropped
    (and logged) on reopening; a header that does not match the current settings is an
    error rather than a silent restart, because the finished work may be hours of GPU time.
    """

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header

    def load(self) -> dict[str, QueryResult]:
        """The finished queries; creates the file (with its header) if there is none."""
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._append([json.dumps({"header": self.header}, sort_keys=True)])
            return {}
        done: dict[str, QueryResult] = {}
        with open(self.path, "rb") as handle:
            lines = handle.read().split(b"\n")
        # Everything after the last newline is a line the writer did not finish.
        complete, tail = lines[:-1], lines[-1]
        if tail:
            LOGGER.warning(
                "%s: dropping a half-written last line (%d bytes) left by an interrupted job",
                self.path,
                len(tail),
            )
            with open(self.path, "r+b") as handle:
                handle.truncate(sum(len(line) + 1 for line in complete))
        if not complete:
            raise ValueError(f"{self.path}: empty partial file; delete it to start over")
        self._check_header(complete[0])
        for lineno, raw in enumerate(complete[1:], start=2):
            try:
                result = QueryResult.from_json(raw.decode("utf-8"))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(
                    f"{self.path}:{lineno}: not a finished-query record ({exc})"
                ) from exc
            done[result.query_id] = result
        return done

    def _check_header(self, raw: bytes) -> None:
        try:
            found = json.loads(raw)["header"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.path}:1: not a partial teacher run header ({exc})") from exc
        if found != self.header:
            changed = sorted(
                key
                for key in set(found) | set(self.header)
                if found.get(key) != self.header.get(key)
            )
            raise ValueError(
                f"{self.path} was made with other settings or candidates (differs in {changed}); "
                "restore them to resume, or delete the file to start over"
            )

    def append(self, results: Sequence[QueryResult]) -> None:
        self._append([result.to_json() for result in results])

    def _append(self, lines: Sequence[str]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())


# --------------------------------------------------------------------------- the step


def sampled_candidates(
    first_stage_run: Path,
    depth: int,
    num_queries: int | None,
    seed: int,
    chunk_lines: int = 2_000_000,
) -> dict[str, tuple[str, ...]]:
    """The first-stage top ``depth`` of ``num_queries`` queries sampled with ``seed`` (the
    teacher table's own sampling, ``data.query_sample.sample_query_ids``), in the run's query
    order. The run is read in chunks, so multi-GB training runs fit in memory."""
    keep = sample_query_ids(trec_io.run_query_ids(first_stage_run), num_queries, seed)
    candidates: dict[str, tuple[str, ...]] = {}
    for chunk in trec_io.iter_run_chunks(first_stage_run, chunk_lines):
        chunk = trec_io.truncate_run(chunk[chunk["query_id"].isin(keep)], depth)
        for query_id, doc_ids in chunk.groupby("query_id", sort=False)["doc_id"]:
            candidates[str(query_id)] = tuple(doc_ids)
    return candidates


def select_candidates(
    first_stage_run: Path,
    texts: TextLookup,
    depth: int,
    num_queries: int | None,
    seed: int,
    chunk_lines: int = 2_000_000,
    shard: Shard | None = None,
    batch_size: int = 1,
) -> list[QueryCandidates]:
    """The sampled queries (:func:`sampled_candidates`) with their texts; with ``shard``,
    only that shard's blocks of ``batch_size`` queries (``shards.shard_items``)."""
    candidates = sampled_candidates(first_stage_run, depth, num_queries, seed, chunk_lines)
    query_ids = list(candidates)
    if shard is not None:
        query_ids = shard_items(query_ids, batch_size, shard)
    query_texts = texts.query_texts(query_ids)
    return [
        QueryCandidates(query_id, text, candidates[query_id])
        for query_id, text in zip(query_ids, query_texts, strict=True)
    ]


def teacher_frame(results: Sequence[QueryResult], depth: int) -> pd.DataFrame:
    """A run frame with rank 1.. and score = depth + 1 - rank (the Zenodo teacher format)."""
    rows = [
        (result.query_id, doc_id, rank, float(depth + 1 - rank))
        for result in results
        for rank, doc_id in enumerate(result.doc_ids, start=1)
    ]
    return pd.DataFrame(rows, columns=trec_io.RUN_COLUMNS).astype({"rank": "int64"})


def generate_teacher_run(
    first_stage_run: Path,
    texts: TextLookup,
    out_run: Path,
    settings: GenerationSettings,
    num_queries: int | None = None,
    tag: str | None = None,
    out_stats: Path | None = None,
    state_dir: Path | None = None,
    generator: Generator | None = None,
    shard: Shard | None = None,
) -> dict[str, Any]:
    """Re-rank the first-stage top ``settings.depth`` of ``num_queries`` sampled queries
    (all if None) with the LLM, write the teacher run to ``out_run``; return statistics.

    ``texts`` gives query texts once and passage texts in bulk, one call per block
    (``texts.DatasetTexts`` for an ir_datasets dataset, ``texts.MappingTexts`` for
    mappings). The partial file ``<state_dir or out_run's folder>/<out_run
    name>.partial.jsonl`` lets a killed job resume; it is removed once the run is written.
    ``generator`` replaces the model named in ``settings`` (tests, or a model already
    loaded). With ``shard``, only that shard's queries are generated (``shards``); the
    statistics record the shard and the settings, which the merge checks.
    """
    started = time.perf_counter()
    out_run = Path(out_run)
    shard = shard or Shard(1, 1)
    queries = select_candidates(
        first_stage_run,
        texts,
        settings.depth,
        num_queries,
        settings.seed,
        shard=shard,
        batch_size=settings.batch_size,
    )
    partial_path = Path(state_dir or out_run.parent) / f"{out_run.name}.partial.jsonl"
    header = {"settings": settings.fingerprint(), "candidates": candidates_digest(queries)}
    partial = PartialRun(partial_path, header)
    done = partial.load()
    todo = [query for query in queries if query.query_id not in done]
    LOGGER.info(
        "teacher generation with %s (%s), %s: %d queries, %d done before (%s), %d to do",
        settings.model,
        settings.prompt_format,
        shard,
        len(queries),
        len(done),
        partial_path,
        len(todo),
    )
    generation_seconds = _generate_missing(todo, texts, settings, partial, done, generator)
    ordered = _finished_in_order(queries, done, partial_path)
    repairs = RepairCounts.total(result.repairs for result in ordered)
    stats = _statistics(
        settings, shard, len(queries), len(todo), ordered, repairs, generation_seconds
    )
    _log_statistics(stats, repairs, settings, generation_seconds, partial_path)
    run_tag = tag or f"{settings.prompt_format}.{Path(settings.model).name}"
    if out_stats is not None:
        atomic.atomic_write_text(out_stats, json.dumps(stats, indent=2, sort_keys=True) + "\n")
    trec_io.write_run(teacher_frame(ordered, settings.depth), out_run, tag=run_tag)
    partial_path.unlink()
    LOGGER.info(
        "teacher run: %d queries, %d rows -> %s (%.1f s in all)",
        len(queries),
        stats["passages"],
        out_run,
        time.perf_counter() - started,
    )
    return stats


def _generate_missing(
    todo: Sequence[QueryCandidates],
    texts: TextLookup,
    settings: GenerationSettings,
    partial: PartialRun,
    done: dict[str, QueryResult],
    generator: Generator | None,
) -> float:
    """Re-rank the queries not done yet, block by block, appending each finished block to
    the partial file and to ``done``; the seconds it took (0 when none was left, and then
    no model is loaded)."""
    from rank_distillm.teachers.llm.backends import load_generator

    if not todo:
        return 0.0
    if generator is None:
        generator = load_generator(
            settings.model,
            settings.backend,
            settings.dtype,
            settings.context_size,
            settings.seed,
        )
    builder = PromptBuilder(
        generator.tokenizer,
        settings.prompt_format,
        settings.context_size,
        settings.passage_length,
    )
    generation_started = time.perf_counter()
    with tqdm(total=len(todo), unit="query", desc="teacher generation", mininterval=5) as bar:
        for begin in range(0, len(todo), settings.batch_size):
            block = todo[begin : begin + settings.batch_size]
            wanted = sorted({doc_id for query in block for doc_id in query.doc_ids})
            passages = dict(zip(wanted, texts.doc_texts(wanted), strict=True))
            results = rerank_block(block, passages, generator, builder, settings)
            partial.append(results)
            done.update((result.query_id, result) for result in results)
            bar.update(len(block))
    return time.perf_counter() - generation_started


def _finished_in_order(
    queries: Sequence[QueryCandidates], done: Mapping[str, QueryResult], partial_path: Path
) -> list[QueryResult]:
    """Every query's result in the run's query order, each checked to be a permutation of
    its candidates (a resumed partial file could hold anything)."""
    ordered = [done[query.query_id] for query in queries]
    for query, result in zip(queries, ordered, strict=True):
        if sorted(result.doc_ids) != sorted(query.doc_ids):
            raise ValueError(
                f"{partial_path}: query {query.query_id} is not a permutation of its candidates"
            )
    return ordered


def _statistics(
    settings: GenerationSettings,
    shard: Shard,
    num_queries: int,
    generated: int,
    ordered: Sequence[QueryResult],
    repairs: RepairCounts,
    generation_seconds: float,
) -> dict[str, Any]:
    """The run's statistics file: counts, tokens, speed and answer repairs, and what made
    it (the settings that decide the result, and the shard's place in the partition)."""
    return {
        "model": settings.model,
        "prompt_format": settings.prompt_format,
        **shard_identity(settings, shard),
        "queries": num_queries,
        "resumed_queries": num_queries - generated,
        "generated_queries": generated,
        "passages": sum(len(result.doc_ids) for result in ordered),
        "prompt_tokens": sum(result.prompt_tokens for result in ordered),
        "generation_seconds": round(generation_seconds, 3),
        "queries_per_second": round(generated / generation_seconds, 4)
        if generation_seconds
        else None,
        "windows_shortened_to_fit": sum(result.shortened_windows for result in ordered),
        "repairs": repairs.as_dict(),
    }


def shard_identity(settings: GenerationSettings, shard: Shard) -> dict[str, Any]:
    """What a shard's run must share with its siblings to be merged: the settings that
    decide the result, and its place in the partition (which ``batch_size`` also sets)."""
    return {
        "settings": settings.fingerprint(),
        "batch_size": settings.batch_size,
        "shard": shard.as_dict(),
    }


def _log_statistics(
    stats: Mapping[str, Any],
    repairs: RepairCounts,
    settings: GenerationSettings,
    generation_seconds: float,
    partial_path: Path,
) -> None:
    """Log the repairs, the windows cut to fit the context (a warning) and the speed."""
    LOGGER.info("repairs over %d queries, %s", stats["queries"], repairs.summary())
    if stats["windows_shortened_to_fit"]:
        LOGGER.warning(
            "%d of %d windows had their passages cut below the word budget to fit context_size %d",
            stats["windows_shortened_to_fit"],
            repairs.windows,
            settings.context_size,
        )
    LOGGER.info(
        "generated %d queries in %.1f s (%s queries/s); %d resumed from %s",
        stats["generated_queries"],
        generation_seconds,
        stats["queries_per_second"],
        stats["resumed_queries"],
        partial_path.name,
    )
