"""An archive of the layout of the authors' ``experiments.tar.gz`` (Zenodo 15150456), built
for the tests, with the judgements it is scored against.

TREC DL: the real first-stage runs of ``../shared/data/trec-dl/runs`` (BM25 DL19, ColBERTv2
DL19 and DL20; BM25 DL20 is generated) with the real qrels and topics; every system's run
is generated from the qrels with its own noise, re-ranking more than the first stage's top
100 on BM25 (so the notebook's cut matters), with scores rounded so that ties occur and
rank columns that disagree with the scores (the notebook ignores them); the ablation
systems' runs lack a query here and there (so the intersection rule matters).

TIREx: the 29 tasks with generated topics, qrels and runs: ChatNoir as ClueWeb's first
stage, tasks of one group sharing query ids (disks45, medline: merged without prefixes;
one system's run lacks a query there),
zero-padded query ids in one run (pandas reads them as numbers), and Cranfield's runs
numbering queries by cran.qry's ``.I`` field while its qrels number them 1, 2, ...
"""

from __future__ import annotations

import io
import random
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rank_distillm.data import paper_tables
from rank_distillm.data import trec as trec_io

PREFIX = "data/experiments"
TREC_DL_FILES = {
    (
        "bm25",
        "msmarco-passage/trec-dl-2019/judged",
    ): "__bm25__msmarco-passage-trec-dl-2019-judged.run",
    ("colbert", "msmarco-passage/trec-dl-2019/judged"): (
        "__colbert__msmarco-passage-trec-dl-2019-judged.run"
    ),
    ("colbert", "msmarco-passage/trec-dl-2020/judged"): (
        "__colbert__msmarco-passage-trec-dl-2020-judged.run"
    ),
}
TREC_DL_JUDGEMENTS = {
    "msmarco-passage/trec-dl-2019/judged": ("qrels.dl19-passage.txt", "topics.dl19-passage.txt"),
    "msmarco-passage/trec-dl-2020/judged": ("qrels.dl20-passage.txt", "topics.dl20.txt"),
}
#: cran.qry's first ten query numbers (``.I 001``, ``.I 002``, ``.I 004``, ...).
CRAN_NUMBERS = ["1", "2", "4", "8", "9", "10", "12", "13", "15", "18"]
#: Query ids shared by tasks of one group (merged by the notebook's concatenation).
SHARED_IDS = {
    "disks45/nocr/trec-robust-2004": ["351", "352", "353", "401"],
    "disks45/nocr/trec7": ["351", "352", "353"],
    "disks45/nocr/trec8": ["401", "402"],
    "medline/2004/trec-genomics-2004": ["1", "2", "3"],
    "medline/2004/trec-genomics-2005": ["100", "101"],
    "medline/2017/trec-pm-2017": ["1", "2", "4"],
    "medline/2017/trec-pm-2018": ["5", "6"],
}
#: The one system outside the TIREx table whose TIREx runs the archive holds (the other
#: thirteen are optional and absent).
OPTIONAL_TIREX = "monoelectra-base-dual-rank-distillm-colbert-adrmse"
#: How good each system is (signal per relevance grade; noise is 1).
QUALITY = {"first_stage": 0.6, "monoelectra-base-dual-rankgpt": 0.2}


@dataclass
class Judgements:
    """Qrels and topics by dataset id, and cran.qry's numbers (``published_eval.Judgements``)."""

    qrels_by_dataset: dict[str, pd.DataFrame] = field(default_factory=dict)
    topics_by_dataset: dict[str, pd.DataFrame] = field(default_factory=dict)
    numbers: list[str] = field(default_factory=lambda: list(CRAN_NUMBERS))

    def qrels(self, dataset: str) -> pd.DataFrame:
        return self.qrels_by_dataset[dataset]

    def topic_ids(self, dataset: str) -> set[str]:
        return set(self.topics_by_dataset[dataset]["query_id"])

    def cranfield_numbers(self) -> list[str]:
        return list(self.numbers)


def _lines(rows: Iterable[tuple], sep: str = " ") -> bytes:
    return "".join(sep.join(str(x) for x in row) + "\n" for row in rows).encode()


def _quality(system: str, rng: random.Random) -> float:
    return QUALITY.get(system, 0.8 + 0.9 * rng.random())


def rerank(
    candidates: pd.DataFrame, grades: dict, system: str, rng: random.Random, depth: int
) -> list[tuple]:
    """A system's run over each query's first ``depth`` candidates: score = quality x
    grade + noise, rounded to one decimal (ties), rows in a shuffled order, and a rank
    column that counts the wrong way (the notebook ignores it)."""
    quality = _quality(system, rng)
    rows = []
    for query_id, docs in candidates.groupby("query_id", sort=False):
        picked = list(docs["doc_id"])[:depth]
        scored = [
            (d, round(quality * max(grades.get((query_id, d), 0), 0) + rng.gauss(0, 1), 1))
            for d in picked
        ]
        rng.shuffle(scored)
        rows += [(query_id, "Q0", d, len(scored) - k, s, system) for k, (d, s) in enumerate(scored)]
    return rows


def _grades(qrels: pd.DataFrame) -> dict:
    keys = zip(qrels["query_id"], qrels["doc_id"], strict=True)
    return dict(zip(keys, qrels["relevance"], strict=True))


@dataclass
class Builder:
    """Members of the archive, by path, the judgements they are scored with, and the
    TREC DL first stages (ranked by score) by (first stage, dataset)."""

    rng: random.Random
    members: dict[str, bytes] = field(default_factory=dict)
    judgements: Judgements = field(default_factory=Judgements)
    first_stages: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)

    def add(self, folder: str, name: str, data: bytes) -> None:
        self.members[f"{PREFIX}/{folder}/{name}"] = data

    def write(self, path: Path) -> Path:
        with tarfile.open(path, "w:gz") as tar:
            for name, data in self.members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return path


def _trec_dl(builder: Builder, trec_dl: Path) -> None:
    paper = paper_tables.load()
    for dataset, (qrels_name, topics_name) in TREC_DL_JUDGEMENTS.items():
        builder.judgements.qrels_by_dataset[dataset] = trec_io.read_qrels(trec_dl / qrels_name)
        builder.judgements.topics_by_dataset[dataset] = trec_io.read_topics(trec_dl / topics_name)
    for stage, dataset in paper.trec_dl_pairs():
        dashed = dataset.replace("/", "-")
        shared = TREC_DL_FILES.get((stage, dataset))
        if shared is not None:
            data = (trec_dl / "runs" / shared).read_bytes()
        else:  # BM25 DL20: not among the shared runs
            data = _lines(_first_stage(builder, dataset, per_query=150))
        builder.add(stage, f"{dashed}.run", data)
        first = trec_io.rank_by_score(_parse(data))
        builder.first_stages[stage, dataset] = first
        grades = _grades(builder.judgements.qrels(dataset))
        main_table = paper.tables["trec_dl"].rows
        for number, system in enumerate(paper.trec_dl_systems()[1:]):
            depth = 120 if stage == "bm25" else 100
            rows = rerank(first, grades, system, builder.rng, depth)
            if system not in main_table and number % 2:  # a query this system's run lacks
                rows = [row for row in rows if row[0] != rows[0][0]]
            builder.add(system, f"{stage}_{dashed}.run", _lines(rows, "\t" if number % 2 else " "))


def _parse(data: bytes) -> pd.DataFrame:
    frame = pd.read_csv(io.BytesIO(data), sep=r"\s+", header=None, dtype=str)
    return pd.DataFrame({"query_id": frame[0], "doc_id": frame[2], "score": frame[4].astype(float)})


def _first_stage(builder: Builder, dataset: str, per_query: int) -> list[tuple]:
    """A BM25 run over the judged queries: judged documents and others, scores rounded to
    whole numbers (ties around rank 100), rows shuffled within each query."""
    qrels = builder.judgements.qrels(dataset)
    rows = []
    for query_id, judged in qrels.groupby("query_id", sort=False):
        docs = list(judged["doc_id"])[:per_query]
        docs += [f"9{builder.rng.randrange(10**7)}" for _ in range(per_query - len(docs))]
        docs = list(dict.fromkeys(docs))
        scored = [(d, float(round(builder.rng.uniform(0, 30)))) for d in docs]
        builder.rng.shuffle(scored)
        rows += [(query_id, "Q0", d, k + 1, s, "bm25") for k, (d, s) in enumerate(scored)]
    return rows


# --------------------------------------------------------------------------- TIREx


def _tirex_queries(task: str, rng: random.Random) -> list[str]:
    if task == "cranfield":
        return [str(n) for n in range(1, len(CRAN_NUMBERS) + 1)]
    if task in SHARED_IDS:
        return SHARED_IDS[task]
    start = rng.randrange(1, 900)
    return [str(start + k) for k in range(rng.randint(3, 5))]


def _tirex_task(builder: Builder, task: str) -> None:
    """Topics, qrels (20 judged documents per query, grades -1 to 2 on Cranfield, else 0
    to 2), a BM25 run of 120 candidates per query and every TIREx system's run over all
    of them (cut to the first stage's top 100 when scored)."""
    rng = builder.rng
    queries = _tirex_queries(task, rng)
    docs = [f"{task.split('/')[0]}-d{k}" for k in range(150)]
    qrels = pd.DataFrame(
        [(q, d, rng.choice([-1, 0, 0, 1, 2])) for q in queries for d in rng.sample(docs, 20)],
        columns=["query_id", "doc_id", "relevance"],
    )
    if task != "cranfield":
        qrels["relevance"] = qrels["relevance"].clip(lower=0)
    builder.judgements.qrels_by_dataset[task] = qrels
    builder.judgements.topics_by_dataset[task] = pd.DataFrame(
        {"query_id": queries, "text": [f"topic {q}" for q in queries]}
    )
    grades = _grades(qrels)
    candidates = pd.DataFrame(
        [(q, d) for q in queries for d in rng.sample(docs, 120)], columns=["query_id", "doc_id"]
    )
    run_ids = dict(zip(queries, CRAN_NUMBERS, strict=False)) if task == "cranfield" else {}
    if task == "vaswani":  # zero-padded ids, which pandas reads as numbers
        run_ids = {q: q.zfill(4) for q in queries}
    rename = lambda rows: [(run_ids.get(r[0], r[0]), *r[1:]) for r in rows]  # noqa: E731
    dashed = task.replace("/", "-")
    first = rerank(candidates, grades, "first_stage", rng, 120)
    folder = "chatnoir-clueweb" if task.startswith("clueweb") else "bm25-tirex"
    builder.add(folder, f"{dashed}.run", _lines(rename(first)))
    ordered = trec_io.rank_by_score(_parse(_lines(first)))
    for system in [*paper_tables.load().tirex_systems()[1:], OPTIONAL_TIREX]:
        rows = rerank(ordered, grades, system, rng, 120)
        if system == "monot5-3b" and task in SHARED_IDS:  # a query its run lacks
            rows = [row for row in rows if row[0] != rows[-1][0]]
        builder.add(system, f"tirex-rerank_{dashed}.run", _lines(rename(rows)))


def build(trec_dl: Path, path: Path, seed: int = 0, tirex: bool = True) -> Builder:
    """Write the archive to ``path`` (TIREx tasks only with ``tirex``); return what went
    into it. A system the tables do not use and a README are in it too."""
    builder = Builder(random.Random(seed))
    _trec_dl(builder, trec_dl)
    if tirex:
        for task in paper_tables.load().tirex_tasks:
            _tirex_task(builder, task)
    builder.add("other-system", "bm25_msmarco-passage-trec-dl-2019-judged.run", b"1 Q0 d 1 1.0 x\n")
    builder.members[f"{PREFIX}/README.md"] = b"runs of the paper\n"
    builder.write(path)
    return builder
