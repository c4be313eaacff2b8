"""The authors' evaluation rules (their notebook, ``notebooks/effectiveness.ipynb``) applied
to the published runs: per-query nDCG@10 of every system on every (first stage, dataset)
and every TIREx group.

The rules, as the notebook applies them through pandas and PyTerrier's ``Experiment``:

* ids are read as pandas reads them without a dtype: a column of integers becomes
  numbers, so leading zeros go (:func:`notebook_ids`);
* on a BM25 pair, a re-ranker keeps only its (query, document) pairs in the first
  stage's top 100 (ranked by score, ties in file order), since TIREx re-ranked the top
  1000; the first stage itself is not cut;
* a run is evaluated by its scores as pytrec_eval orders them (descending, ties by
  document id descending); a repeated (query, document) pair keeps its last row, in the
  run and in the qrels, as ir_measures' dictionaries do;
* the judged queries are the qrels' queries that have a topic;
* a TIREx group's tasks are concatenated in the notebook's order, runs, topics and qrels
  alike, *without* prefixing query ids, so tasks that share a query id merge into one query.

Which queries a table keeps (those in every compared run) is the tables' business: each
metrics file says per judged query whether the run contained it (``in_run``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from rank_distillm.data import trec as trec_io
from rank_distillm.data.published import IDS_MAPPED, PublishedSpec, run_file
from rank_distillm.data.published_archive import FIRST_STAGE_SYSTEM, Entry, read_run_file
from rank_distillm.evaluation import measures as evaluate

LOGGER = logging.getLogger(__name__)
MEASURE = "nDCG@10"
FIRST_STAGE_DEPTH = 100
_PAIR = ["query_id", "doc_id"]
_INTEGER = re.compile(r"[+-]?\d+")


class Judgements(Protocol):
    """Where qrels and topics come from (ir_datasets in the pipeline)."""

    def qrels(self, dataset: str) -> pd.DataFrame: ...
    def topic_ids(self, dataset: str) -> set[str]: ...
    def cranfield_numbers(self) -> list[str]: ...


@dataclass(frozen=True)
class IrDatasetsJudgements:
    """Qrels and topics through ir_datasets (downloaded on first use; no documents)."""

    manifests: Sequence[str] = ()

    def qrels(self, dataset: str) -> pd.DataFrame:
        from rank_distillm.data import datasets

        rows = [
            (q.query_id, q.doc_id, q.relevance)
            for q in datasets.load(dataset, self.manifests).qrels_iter()
        ]
        return pd.DataFrame(rows, columns=["query_id", "doc_id", "relevance"]).astype(
            {"query_id": str, "doc_id": str}
        )

    def topic_ids(self, dataset: str) -> set[str]:
        from rank_distillm.data import datasets

        return {q.query_id for q in datasets.load(dataset, self.manifests).queries_iter()}

    def cranfield_numbers(self) -> list[str]:
        """The ``.I`` numbers of Cranfield's queries in file order (``cran.qry``)."""
        from rank_distillm.data import datasets

        path = datasets.load("cranfield", self.manifests).queries_path()
        return cran_qry_numbers(Path(path).read_text(errors="replace").splitlines())


def cran_qry_numbers(lines: Iterable[str]) -> list[str]:
    """The query numbers of a ``cran.qry`` file (``.I 001`` lines) in file order, as
    integers without leading zeros."""
    return [str(int(line.split()[1])) for line in lines if line.startswith(".I ")]


def notebook_ids(values: pd.Series) -> pd.Series:
    """Ids as ``pd.read_csv`` without a dtype gives them, turned back into strings: a
    column of integers loses leading zeros and signs."""
    if len(values) and values.str.fullmatch(_INTEGER).all():
        try:
            return values.astype("int64").astype(str)
        except OverflowError:
            return values
    return values


def prepared(run: pd.DataFrame) -> pd.DataFrame:
    """A normalised run (``published_archive.normalised``) with the notebook's ids."""
    return run.assign(query_id=notebook_ids(run["query_id"]), doc_id=notebook_ids(run["doc_id"]))


def first_stage_top(first_stage: pd.DataFrame, depth: int = FIRST_STAGE_DEPTH) -> pd.MultiIndex:
    """The (query, document) pairs of the first stage's top ``depth`` (the file's rows are
    in rank order: ranked by score, ties in file order)."""
    top = first_stage[first_stage.groupby("query_id", sort=False).cumcount() < depth]
    return pd.MultiIndex.from_frame(top[["query_id", "doc_id"]])


def cut(run: pd.DataFrame, pairs: pd.MultiIndex) -> pd.DataFrame:
    """The rows of ``run`` whose (query, document) is one of ``pairs``."""
    keys = pd.MultiIndex.from_frame(run[["query_id", "doc_id"]])
    return run[keys.isin(pairs)].reset_index(drop=True)


def scorer(qrels: pd.DataFrame, topic_ids: set[str]) -> evaluate.RunEvaluator:
    """nDCG@10 against the qrels of the queries that have a topic, a repeated (query,
    document) keeping its last label."""
    qrels = qrels[qrels["query_id"].isin(topic_ids)]
    return evaluate.RunEvaluator(qrels.drop_duplicates(_PAIR, keep="last"), [MEASURE])


def per_query(run: pd.DataFrame, scoring: evaluate.RunEvaluator) -> pd.DataFrame:
    """Per-query nDCG@10 of ``run`` by its scores, a repeated pair keeping its last row
    (``evaluate.write_per_query`` layout)."""
    return scoring(run.drop_duplicates(_PAIR, keep="last"), order="score")


def map_query_ids(run: pd.DataFrame, numbers: Sequence[str]) -> pd.DataFrame | None:
    """Cranfield: the run with its query ids (``cran.qry``'s ``.I`` numbers) mapped to
    ir_datasets' ids (1, 2, ... in file order), or None (logged) where a query id is no
    ``.I`` number."""
    mapping = {number: str(position) for position, number in enumerate(numbers, 1)}
    unknown = sorted(set(run["query_id"]) - set(mapping))
    if unknown:
        LOGGER.warning(
            "cranfield: %d query ids of the run are no cran.qry .I numbers (first: %s); "
            "no mapping applies",
            len(unknown),
            unknown[0],
        )
        return None
    return run.assign(query_id=run["query_id"].map(mapping))


def write_ids_mapped(
    source: str | os.PathLike[str], target: str | os.PathLike[str], numbers: Sequence[str]
) -> None:
    """The archive's Cranfield run ``source`` with its query ids (cran.qry's ``.I``
    numbers, ``numbers`` in file order) mapped to ir_datasets' (1, 2, ... in that order),
    written to ``target``, so that a pipeline re-ranking it finds ir_datasets' topics and
    is scored against the same queries' qrels. Ids that are no ``.I`` numbers are an
    error naming the file."""
    run = trec_io.read_run(source)
    mapped = map_query_ids(run.assign(query_id=notebook_ids(run["query_id"])), numbers)
    if mapped is None:
        raise ValueError(
            f"{os.fspath(source)}: its query ids are no cran.qry .I numbers, so they cannot "
            "be mapped to ir_datasets' (set published.map_cranfield_ids: false to re-rank "
            "PISA's BM25 run of Cranfield instead)"
        )
    trec_io.write_run(mapped, target, FIRST_STAGE_SYSTEM)


# --------------------------------------------------------------------------- the step


class _Cached:
    """Judgements read once per dataset (a TIREx task's qrels serve its task and group)."""

    def __init__(self, judgements: Judgements) -> None:
        self.judgements = judgements
        self.found: dict[tuple[str, str], Any] = {}

    def _get(self, kind: str, dataset: str) -> Any:
        if (kind, dataset) not in self.found:
            self.found[kind, dataset] = getattr(self.judgements, kind)(dataset)
        return self.found[kind, dataset]

    def qrels(self, dataset: str) -> pd.DataFrame:
        return self._get("qrels", dataset)

    def topic_ids(self, dataset: str) -> set[str]:
        return self._get("topic_ids", dataset)

    def cranfield_numbers(self) -> list[str]:
        return self.judgements.cranfield_numbers()


def _load_run(entry: Entry) -> pd.DataFrame | None:
    """The prepared run, or None for an optional run the archive lacks (an empty file)."""
    path = run_file(entry)
    if Path(path).stat().st_size == 0:
        return None
    return prepared(read_run_file(path, path))


def _pair_runs(systems: Sequence[str], first_stage: str, dataset: str) -> dict[str, pd.DataFrame]:
    """Every system's prepared run on one pair (absent ones left out); on BM25,
    re-rankers cut to the first stage's top 100."""
    loaded = {s: _load_run(Entry(s, first_stage, dataset)) for s in systems}
    runs = {s: run for s, run in loaded.items() if run is not None}
    if first_stage == "bm25":
        top = first_stage_top(runs[FIRST_STAGE_SYSTEM])
        runs = {s: run if s == FIRST_STAGE_SYSTEM else cut(run, top) for s, run in runs.items()}
    return runs


def _write(frame: pd.DataFrame | None, path: str) -> None:
    """Write per-query metrics; None (no run in the archive) writes a file without rows."""
    if frame is None:
        frame = pd.DataFrame(columns=[*evaluate.PER_QUERY_COLUMNS, evaluate.IN_RUN])
        LOGGER.info("%s: no run in the archive", path)
    else:
        LOGGER.info("%s: nDCG@10 %.4f over %d queries", path, frame["value"].mean(), len(frame))
    evaluate.write_per_query(frame, path)


def _evaluate_pair(
    spec: PublishedSpec, judgements: Judgements, systems: Sequence[str], pair: tuple[str, str]
) -> dict[str, pd.DataFrame]:
    """Evaluate and write every system on one pair; returns the prepared runs."""
    first_stage, dataset = pair
    scoring = scorer(judgements.qrels(dataset), judgements.topic_ids(dataset))
    runs = _pair_runs(systems, first_stage, dataset)
    for system in systems:
        found = per_query(runs[system], scoring) if system in runs else None
        _write(found, spec.metrics_file(system, first_stage, dataset))
    return runs


def _evaluate_group(
    spec: PublishedSpec, judgements: Judgements, group: str, tasks: Sequence[str]
) -> None:
    """Each task, then the group (tasks concatenated in order, query ids unprefixed)."""
    systems = spec.tirex_systems()
    runs = {task: _evaluate_pair(spec, judgements, systems, ("bm25", task)) for task in tasks}
    qrels = pd.concat([judgements.qrels(task) for task in tasks], ignore_index=True)
    scoring = scorer(qrels, set().union(*(judgements.topic_ids(task) for task in tasks)))
    for system in systems:
        parts = [runs[task].get(system) for task in tasks]
        joined = None if any(p is None for p in parts) else pd.concat(parts, ignore_index=True)
        found = None if joined is None else per_query(joined, scoring)
        _write(found, spec.group_metrics_file(system, group))
    if group == "cranfield" and spec.cranfield_mapped():
        _evaluate_cranfield_mapped(spec, judgements, systems, runs["cranfield"], scoring)


def _evaluate_cranfield_mapped(
    spec: PublishedSpec,
    judgements: Judgements,
    systems: Sequence[str],
    runs: Mapping[str, pd.DataFrame],
    scoring: evaluate.RunEvaluator,
) -> None:
    """Cranfield with the runs' query ids mapped to ir_datasets' (a file without rows for
    a system without a run or whose ids do not map, so the table shows no figure)."""
    numbers = judgements.cranfield_numbers()
    for system in systems:
        mapped = map_query_ids(runs[system], numbers) if system in runs else None
        found = None if mapped is None else per_query(mapped, scoring)
        _write(found, spec.group_metrics_file(system, "cranfield", IDS_MAPPED))


def write_published_metrics(spec: PublishedSpec, judgements: Judgements) -> None:
    """Every metrics file of ``spec.metrics_files()``: the TREC DL pairs, then each TIREx
    group with its tasks."""
    judgements = _Cached(judgements)
    systems = spec.paper.trec_dl_systems()
    for pair in spec.trec_dl_pairs():
        _evaluate_pair(spec, judgements, systems, pair)
    for group, tasks in spec.groups().items():
        _evaluate_group(spec, judgements, group, tasks)
