"""An independent scoring of an archive by the authors' rules (paper-notes.md, "How the
notebook evaluates"), for checking rank_distillm.published_* cell by cell.

It shares no code with the package: the runs are read with plain ``pd.read_csv`` (no
dtype, as the notebook reads them), ranked with ``groupby().rank(method="first")``, cut by
a merge, and every table is scored by PyTerrier's ``Experiment`` with ``baseline`` and
``correction="holm"``, as the notebook scores it.
"""

from __future__ import annotations

import tarfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import ir_measures
import numpy as np
import pandas as pd
import pyterrier as pt

from rank_distillm.data import paper_tables
from tests.published_fixture import CRAN_NUMBERS, Judgements

NDCG = ir_measures.nDCG @ 10
Runs = dict[tuple[str, str], dict[str, pd.DataFrame]]


def _entry(path: str) -> tuple[str, str, str]:
    """(system, first stage, dashed dataset) of a member, by the archive's naming."""
    folder, name = path.split("/")[-2:]
    stem = name.split(".")[0]
    if "monoelectra" not in folder and any(w in folder for w in ("chatnoir", "colbert", "bm25")):
        return "first_stage", ("colbert" if "colbert" in folder else "bm25"), stem
    stage, _, dashed = stem.partition("_")
    return folder, ("bm25" if stage.startswith("tirex") else stage), dashed


def read_archive(path: Path, datasets: Sequence[str]) -> Runs:
    """Every run of ``datasets`` in the archive, ranked, BM25 re-rankers cut to the first
    stage's top 100."""
    dashed = {d.replace("/", "-"): d for d in datasets}
    runs: Runs = defaultdict(dict)
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            if not member.name.endswith(".run") or member.name.count("/") < 3:
                continue
            system, stage, name = _entry(member.name)
            if name not in dashed:
                continue
            names = ["qid", "Q0", "docno", "rank", "score", "name"]
            run = pd.read_csv(tar.extractfile(member), sep=r"\s+", header=None, names=names)
            run = run.sort_values(["qid", "score"], ascending=[True, False])
            run["rank"] = run.groupby("qid")["score"].rank(ascending=False, method="first")
            runs[stage, dashed[name]][system] = run.astype({"qid": str, "docno": str})
    for (stage, _), by_system in runs.items():
        if stage != "bm25":
            continue
        first = by_system["first_stage"]
        top = first.loc[first["rank"] <= 100, ["qid", "docno"]]
        for system, run in by_system.items():
            if system != "first_stage":
                by_system[system] = run.merge(top, on=["qid", "docno"])
    return runs


def experiment(
    runs: Mapping[str, pd.DataFrame], topics: pd.DataFrame, qrels: pd.DataFrame, baseline: str
) -> pd.DataFrame:
    """Means and Holm rejections over the queries every run contains (``name``,
    ``nDCG@10``, ``reject``)."""
    common = set.intersection(*(set(run["qid"]) for run in runs.values()))
    names = list(runs)
    kwargs = {"baseline": names.index(baseline), "correction": "holm"} if baseline in names else {}
    found = pt.Experiment(
        [run[run["qid"].isin(common)].reset_index(drop=True) for run in runs.values()],
        topics[topics["qid"].isin(common)],
        qrels[qrels["qid"].isin(common)],
        [NDCG],
        names=names,
        **kwargs,
    )
    reject = found.get("nDCG@10 reject", False)
    return found.assign(reject=reject).set_index("name")[["nDCG@10", "reject"]]


def _judged(judgements: Judgements, datasets: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    topics = pd.concat(
        [
            judgements.topics_by_dataset[d].rename(columns={"query_id": "qid", "text": "query"})
            for d in datasets
        ]
    )
    qrels = pd.concat(
        [
            judgements.qrels_by_dataset[d].rename(
                columns={"query_id": "qid", "doc_id": "docno", "relevance": "label"}
            )
            for d in datasets
        ]
    )
    return topics, qrels


def table(
    runs: Runs, judgements: Judgements, systems: Sequence[str], columns: Mapping[str, list]
) -> dict[tuple[str, str], tuple[float, bool]]:
    """(row, column) -> (nDCG@10, rejected); a column is a list of (first stage, dataset)
    concatenated in order."""
    baseline = paper_tables.load().baseline
    found = {}
    for column, pairs in columns.items():
        by_system = {
            s: pd.concat([runs[pair][s] for pair in pairs], ignore_index=True) for s in systems
        }
        topics, qrels = _judged(judgements, [dataset for _, dataset in pairs])
        result = experiment(by_system, topics, qrels, baseline)
        for system in systems:
            found[system, column] = (
                float(result.loc[system, "nDCG@10"]),
                bool(result.loc[system, "reject"]),
            )
    return found


def cranfield_mapped(runs: Runs) -> Runs:
    """The Cranfield runs with cran.qry's numbers mapped to positions."""
    mapping = {number: str(k) for k, number in enumerate(CRAN_NUMBERS, 1)}
    pair = ("bm25", "cranfield")
    return {pair: {s: r.assign(qid=r["qid"].map(mapping)) for s, r in runs[pair].items()}}


def means(cells: Mapping[tuple[str, str], tuple[float, bool]], groups: Sequence[str], row: str):
    values = pd.Series([cells[row, g][0] for g in groups])
    return values.mean(), np.exp(np.log(values.prod()) / values.notna().sum())
