"""Ours against theirs, per query (rank_distillm.evaluation.reproduction): each trained row against
the authors' published run of its system, on hand-made per-query values whose tests are
worked out in the comments; then the model zoo and the TIREx table that show them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scipy import stats

from rank_distillm.data.published import PublishedSpec
from rank_distillm.evaluation import reproduction, tirex
from rank_distillm.experiment import from_config
from rank_distillm.report.files import ReportSpec, grouped
from rank_distillm.report.model_zoo import Outputs, write_model_zoo
from rank_distillm.report_plan import report_spec
from tests.helpers import load_config
from tests.workflow_runner import REPO

CELL = ("first_stage", "dataset")
# Per-query nDCG@10 of our run and of the authors' run of the same system, q1-q4 in both.
OURS = {
    "a": [0.5, 0.6, 0.7, 0.8],  # theirs differs by -0.1, +0.1, -0.1, +0.1: mean 0, t = 0
    "b": [0.9, 0.8, 0.7, 0.6],  # differences 0.8, 0.74, 0.7, 0.6
    "d": [0.6, 0.5, 0.45, 0.7],  # differences 0.2, 0.1, 0.05, 0.2
}
THEIRS = {
    "a": [0.6, 0.5, 0.8, 0.7],
    "b": [0.1, 0.06, 0.0, 0.0],
    "d": [0.4, 0.4, 0.4, 0.5],
}
SYSTEMS = {"a": "sys-a", "b": "sys-b", "d": "sys-d", "e": "sys-e"}


def t_of(differences: list[float]) -> float:
    """The paired t statistic, by hand: mean / (sample standard deviation / sqrt(n))."""
    n = len(differences)
    mean = sum(differences) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    return mean / (sd / math.sqrt(n))


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ours and theirs on BM25 DL19; q5: a's published run lacks it, q6: our run of b
    lacks it (each left out of that pair only); e: no published run (no test)."""
    ours, theirs = [], []
    for row in OURS:
        for q, (mine, other) in enumerate(zip(OURS[row], THEIRS[row], strict=True), 1):
            ours.append((row, row.upper(), f"q{q}", mine, True))
            theirs.append((row, SYSTEMS[row], f"q{q}", other, True))
    ours += [("a", "A", "q5", 1.0, True), ("b", "B", "q6", 0.0, False)]
    theirs += [("a", "sys-a", "q5", 0.0, False), ("b", "sys-b", "q6", 1.0, True)]
    ours += [("e", "E", f"q{q}", 0.5, True) for q in range(1, 5)]
    columns = ["row", "system", "query_id", "value", "in_run"]
    made = [
        pd.DataFrame(rows, columns=columns).assign(
            first_stage="bm25", dataset="dl19", measure="nDCG@10"
        )
        for rows in (ours, theirs)
    ]
    return made[0], made[1]


def test_reproduced_means_no_significant_difference_after_holm() -> None:
    found = reproduction.tests(*frames(), CELL).set_index("row")
    assert list(found.index) == ["a", "b", "d"]  # e has no published run: no test
    assert (found["queries"] == 4).all()  # q5 and q6 left out of their pair only
    assert found.loc["a", "system"] == "sys-a"
    assert found.loc["a", "baseline"] == "sys-a (authors' run)"
    # a: the same mean (0.65) on both sides, t = 0, p = 1: reproduced.
    assert (found.loc["a", "mean"], found.loc["a", "baseline_mean"]) == pytest.approx((0.65, 0.65))
    assert (found.loc["a", "statistic"], found.loc["a", "p_value"]) == (0.0, 1.0)
    # b: t = 0.71 / (0.08406 / 2) = 16.89, p = 0.00045; Holm over the three rows of the
    # column: 3 p, significant, ours better (▲): not reproduced.
    t_b = t_of([0.8, 0.74, 0.7, 0.6])
    assert t_b == pytest.approx(16.89, abs=0.01)
    p_b = 2 * stats.t.sf(t_b, 3)
    assert found.loc["b", "statistic"] == pytest.approx(t_b)
    assert found.loc["b", "p_holm"] == pytest.approx(3 * p_b)
    assert found.loc["b", "baseline_mean"] == pytest.approx(0.04)
    assert (found.loc["b", "marker"], found.loc["b", "reproduced"]) == ("▲", "no")
    # d: t = 0.1375 / (0.075 / 2) = 11/3, p = 0.0351 < 0.05 alone, but Holm's second step
    # doubles it to 0.0702: no significant difference, reproduced.
    t_d = t_of([0.2, 0.1, 0.05, 0.2])
    assert t_d == pytest.approx(11 / 3)
    p_d = 2 * stats.t.sf(t_d, 3)
    assert p_d == pytest.approx(0.0351, abs=1e-4)
    assert found.loc["d", "p_holm"] == pytest.approx(2 * p_d)
    assert (found.loc["d", "marker"], found.loc["d", "reproduced"]) == ("", "yes")
    assert found.loc["a", "p_holm"] == 1.0


def test_a_pair_without_common_queries_is_an_error() -> None:
    ours, theirs = frames()
    theirs = theirs.assign(query_id="x" + theirs["query_id"])
    with pytest.raises(ValueError, match="'pair': 'a'.*no judged query is in every run"):
        reproduction.tests(ours, theirs, CELL)


def test_no_published_runs_no_tests() -> None:
    ours, theirs = frames()
    assert reproduction.tests(ours, theirs.iloc[:0], CELL).empty


def test_the_model_zoo_shows_the_authors_run_beside_ours(tmp_path: Path) -> None:
    ours, theirs = frames()
    metrics = pd.concat(
        [
            ours.assign(measure=measure, value=ours["value"] * factor)
            for measure, factor in (("nDCG@10", 1.0), ("RR@10", 1.0), ("AP@100", 0.5))
        ],
        ignore_index=True,
    )
    outputs = Outputs(**{kind: tmp_path / f"zoo.{kind}" for kind in Outputs.__annotations__})
    published = reproduction.tests(metrics, theirs, CELL)
    table = write_model_zoo(
        metrics,
        outputs,
        {"bm25": "BM25"},
        {"dl19": "DL19"},
        "Zoo",
        published=published,
    )
    assert list(table["reproduced nDCG@10 DL19"]) == ["yes", "no", "yes", ""]
    assert table.loc["B", "published nDCG@10 DL19"] == pytest.approx(0.04)
    assert list(table["published queries nDCG@10 DL19"]) == [4, 4, 4, 0]
    assert math.isnan(table.loc["E", "p published nDCG@10 DL19"])
    markdown = Path(outputs.md).read_text()
    # Our cell over every judged query (a: q1-q5, 0.72; b: q1-q4 and q6, which our run
    # lacks, 0.6), the authors' over the queries both runs contain.
    assert "| A | **0.720** ≈ 0.650 |" in markdown
    assert "| B | 0.600 ≠ 0.040 |" in markdown
    assert "| D | 0.562 ≈ 0.425 |" in markdown
    assert "| E | 0.500 |" in markdown
    assert "2 of 3 tested cells reproduced" in markdown
    assert "Holm-corrected over the 3 rows compared per column" in markdown
    latex = Path(outputs.tex).read_text()
    assert r"\quad\textit{authors' run} & $\neq$ 0.040 \\" in latex
    assert "≈ 0.650" in Path(outputs.html).read_text()
    tests = pd.read_csv(outputs.tests, keep_default_na=False)
    against_theirs = tests[tests["baseline"].str.endswith("(authors' run)")]
    assert list(against_theirs["row"]) == ["a", "b", "d"]
    assert list(against_theirs["system"]) == ["A", "B", "D"]  # our rows' labels


# --------------------------------------------------------------------------- TIREx

# Group A's two tasks share the query id "q1"; B has one task.
SELECTION = tirex.select_tasks({"tasks": [{"id": "A/t1"}, {"id": "A/t2"}, {"id": "B/t1"}]})
TIREX_OURS = {("A/t1", "q1"): 0.6, ("A/t1", "q2"): 0.2, ("A/t2", "q1"): 0.9,
              ("B/t1", "q1"): 0.5, ("B/t1", "q2"): 0.4}  # fmt: skip
# The authors' run: the same on group A, but it lacks A/t1's q2; 0.4 below ours on B.
TIREX_THEIRS = {("A/t1", "q1"): 0.6, ("A/t1", "q2"): 0.0, ("A/t2", "q1"): 0.9,
                ("B/t1", "q1"): 0.1, ("B/t1", "q2"): 0.0}  # fmt: skip


def tirex_frame(values: dict, row: str, system: str, lacks: set = frozenset()) -> pd.DataFrame:
    lines = [
        (row, system, task, query, "nDCG@10", value, (task, query) not in lacks)
        for (task, query), value in values.items()
    ]
    columns = ["row", "system", "dataset", "query_id", "measure", "value", "in_run"]
    return pd.DataFrame(lines, columns=columns)


def test_tirex_groups_compare_like_with_like(tmp_path: Path) -> None:
    from rank_distillm.report.tirex_tables import write_tirex_tables

    ours = grouped(tirex_frame(TIREX_OURS, "m", "M"), SELECTION, "dataset")
    theirs = tirex_frame(TIREX_THEIRS, "m", "sys-m", lacks={("A/t1", "q2")})
    found = reproduction.tests(ours, grouped(theirs, SELECTION, "dataset"), ("group",))
    found = found.assign(system="M").set_index("group")
    # A: A/t1's q1 and A/t2's q1 stay two queries (prefixed by their task), A/t1's q2 is
    # left out (not in the authors' run); both runs 0.6 and 0.9: t = 0, reproduced.
    assert found.loc["A", "queries"] == 2
    assert (found.loc["A", "mean"], found.loc["A", "baseline_mean"]) == pytest.approx((0.75, 0.75))
    assert found.loc["A", "reproduced"] == "yes"
    # B: ours 0.4 above theirs on both queries, a constant difference: p = 0, different.
    assert (found.loc["B", "p_holm"], found.loc["B", "reproduced"]) == (0.0, "no")
    metrics = pd.DataFrame(
        [("M", task, query, "nDCG@10", value) for (task, query), value in TIREX_OURS.items()],
        columns=list(tirex.METRICS_COLUMNS),
    )
    outputs = {k: tmp_path / f"tirex.{k}" for k in ("md", "csv", "tex", "png", "tasks", "tests")}
    write_tirex_tables(
        tirex.aggregate(metrics, SELECTION),
        SELECTION,
        "judged",
        outputs,
        "TIREx",
        published=found.reset_index(),
        published_note="NOTE",
    )
    # Our group A over its three queries: (0.6 + 0.2 + 0.9) / 3 = 0.567.
    assert "| M | **0.567** ≈ 0.750 | **0.450** ≠ 0.050 |" in outputs["md"].read_text()
    csv = pd.read_csv(outputs["csv"], index_col="system", keep_default_na=False)
    assert (csv.loc["M", "reproduced A"], csv.loc["M", "reproduced B"]) == ("yes", "no")
    assert csv.loc["M", "published queries A"] == 2
    assert "- NOTE" in outputs["md"].read_text()
    assert list(pd.read_csv(outputs["tests"])["baseline"]) == ["sys-m (authors' run)"] * 2


# --------------------------------------------------------------------------- spec


def paper_spec(**published: Any) -> tuple[ReportSpec, PublishedSpec]:
    config = load_config([REPO / "configs" / "paper.yaml"], REPO / "schemas/config.schema.yaml")
    config["published"].update(published)
    exp = from_config(config)
    spec = PublishedSpec.from_config(config, exp.root, exp.published_first_stage_runs())
    return report_spec(exp, config, spec), spec


def test_the_paper_compares_every_trained_row_that_names_a_system() -> None:
    report, published = paper_spec()
    rows = {(c.row, c.label) for c in report.published}
    assert rows == {
        ("electra-base.stage1", "monoelectra-base"),
        ("electra-base.stage1.rankzephyr.ranknet", "monoelectra-base-dual-rank-distillm-colbert"),
        (
            "electra-base.stage1.rankzephyr.adr_mse",
            "monoelectra-base-dual-rank-distillm-colbert-adrmse",
        ),
        ("electra-base.rankzephyr.ranknet", "monoelectra-base-single-rank-distillm-colbert"),
        ("electra-large.stage1.rankzephyr.ranknet", "monoelectra-large"),
    }  # not the first stage, teachers, re-rankers or checkpoints; large stage 1 has none
    assert len(report.published) == 5 * 4  # BM25 and ColBERTv2 on DL19 and DL20
    main = [c for c in report.published if c.row == "electra-base.stage1.rankzephyr.ranknet"]
    assert main[0].metrics == published.metrics_file(
        "monoelectra-base-dual-rank-distillm-colbert",
        "bm25",
        "msmarco-passage/trec-dl-2019/judged",
    )
    # TIREx: the tasks the paper config runs, Cranfield with the authors' ids mapped.
    assert report.tirex is not None
    tasks = {c.split for c in report.tirex.published}
    assert len(tasks) == 11 and "cranfield" in tasks
    cranfield = next(c for c in report.tirex.published if c.split == "cranfield")
    assert cranfield.metrics.endswith("/tirex-groups/cranfield.ids-mapped/monoelectra-base.tsv")
    produced = set(published.metrics_files())
    assert {c.metrics for c in (*report.published, *report.tirex.published)} <= produced
    assert set(report.tirex.metrics_files()) <= set(report.metrics_files())


def test_without_the_archive_nothing_is_compared() -> None:
    report, _ = paper_spec(tirex=False)
    assert report.published and report.tirex is not None and not report.tirex.published
    config = load_config([REPO / "config.yaml"], REPO / "schemas/config.schema.yaml")
    demo = report_spec(from_config(config), config, None)
    assert demo.published == () and demo.tirex is not None and demo.tirex.published == ()
