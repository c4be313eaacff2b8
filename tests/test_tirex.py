"""Tests for rank_distillm.evaluation.tirex: task selection and the TIREx aggregates, on small
hand-made groups whose values are worked out by hand in the comments."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rank_distillm.evaluation import tirex

REPO = Path(__file__).resolve().parents[1]

# Group A: tasks A/t1, A/t2 used and A/t3 skipped (incomplete); group B: B/t1;
# group C: skipped altogether (left out).
CONFIG = {
    "tasks": [
        {"id": "A/t1"},
        {"id": "A/t2"},
        {"id": "A/t3", "licence": "L"},
        {"id": "B/t1", "group": "B"},
        {"id": "C/t1", "dataset": "local/C/t1", "licence": "L"},
    ],
    "skip": {"A/t3": "needs licence L", "C": "needs licence L"},
}

# nDCG@10 per query. Both A/t1 and A/t2 have a query "q1": within group A they are two
# different queries. s2's run lacks A/t1 q1 and B/t1 q2 (evaluate_run scored them 0).
VALUES = {
    "s1": {("A/t1", "q1"): 0.6, ("A/t1", "q2"): 0.2, ("A/t2", "q1"): 0.9,
           ("B/t1", "q1"): 0.5, ("B/t1", "q2"): 0.1},
    "s2": {("A/t1", "q1"): 0.0, ("A/t1", "q2"): 0.4, ("A/t2", "q1"): 0.3,
           ("B/t1", "q1"): 0.7, ("B/t1", "q2"): 0.0},
}  # fmt: skip
MISSING_FROM_RUN = {("s2", "A/t1", "q1"), ("s2", "B/t1", "q2")}


def metrics() -> pd.DataFrame:
    rows = [
        (system, task, query, "nDCG@10", value)
        for system, values in VALUES.items()
        for (task, query), value in values.items()
    ]
    return pd.DataFrame(rows, columns=list(tirex.METRICS_COLUMNS))


def run_queries() -> pd.DataFrame:
    rows = [
        (system, task, query)
        for system, values in VALUES.items()
        for task, query in values
        if (system, task, query) not in MISSING_FROM_RUN
    ]
    return pd.DataFrame(rows, columns=list(tirex.RUN_QUERY_COLUMNS))


def overall(result: dict[str, pd.DataFrame]) -> dict[tuple[str, str], float]:
    frame = result["overall"]
    return {(r.system, r.aggregate): r.value for r in frame.itertuples()}


# --------------------------------------------------------------------------- selection


def test_select_tasks_splits_the_catalogue() -> None:
    selection = tirex.select_tasks(CONFIG)
    assert [t.id for t in selection.used] == ["A/t1", "A/t2", "B/t1"]
    assert selection.skipped == {"A/t3": "needs licence L", "C/t1": "needs licence L"}
    assert [(t.group, t.dataset) for t in selection.catalogue] == [
        ("A", "A/t1"),
        ("A", "A/t2"),
        ("A", "A/t3"),
        ("B", "B/t1"),
        ("C", "local/C/t1"),
    ]
    status = selection.status()
    assert status.to_dict("records") == [
        {"group": "A", "tasks_used": 2, "tasks_total": 3, "complete": False,
         "skipped": "A/t3 (needs licence L)"},
        {"group": "B", "tasks_used": 1, "tasks_total": 1, "complete": True, "skipped": ""},
        {"group": "C", "tasks_used": 0, "tasks_total": 1, "complete": False,
         "skipped": "C/t1 (needs licence L)"},
    ]  # fmt: skip
    assert selection.note() == (
        "TIREx: 3 of 5 tasks in 2 of 3 corpus groups. "
        "Incomplete groups: A (2 of 3 tasks). Groups left out: C."
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"tasks": []}, r"tirex\.tasks: list at least one task"),
        ({"tasks": [{"id": "a"}], "extra": 1}, r"tirex: unknown keys \['extra'\]"),
        ({"tasks": [{"id": "a", "grp": "x"}]}, r"tirex\.tasks\[0\]: unknown keys \['grp'\]"),
        ({"tasks": ["a"]}, r"tirex\.tasks\[0\]: expected a mapping with an 'id'"),
        ({"tasks": [{"id": "a"}, {"id": "a"}]}, r"ids listed twice: \['a'\]"),
        ({"tasks": [{"id": "a"}], "skip": {"b": "x"}}, r"tirex\.skip: \['b'\] name no task"),
        ({"tasks": [{"id": "a/b"}], "skip": {"a": "x"}}, r"tirex\.skip: every task is skipped"),
    ],
)
def test_select_tasks_errors_name_the_key(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tirex.select_tasks(config)


# --------------------------------------------------------------------------- aggregates


def test_default_rule_counts_missing_queries_as_zero() -> None:
    result = tirex.aggregate(metrics(), tirex.select_tasks(CONFIG))
    tasks = result["tasks"].set_index(["system", "task"])
    # s1: A/t1 (0.6 + 0.2) / 2 = 0.4; A/t2 0.9; B/t1 (0.5 + 0.1) / 2 = 0.3
    # s2: A/t1 (0.0 + 0.4) / 2 = 0.2; A/t2 0.3; B/t1 (0.7 + 0.0) / 2 = 0.35
    assert tasks["value"].to_dict() == pytest.approx(
        {("s1", "A/t1"): 0.4, ("s1", "A/t2"): 0.9, ("s1", "B/t1"): 0.3,
         ("s2", "A/t1"): 0.2, ("s2", "A/t2"): 0.3, ("s2", "B/t1"): 0.35}
    )  # fmt: skip
    assert tasks.loc[("s1", "A/t1"), "group"] == "A"
    assert tasks["queries"].tolist() == [2, 1, 2, 2, 1, 2]

    groups = result["groups"].set_index(["system", "group"])
    # Group A concatenates its tasks' queries: three queries (A/t1 q1, q2 and A/t2 q1).
    # s1: (0.6 + 0.2 + 0.9) / 3 = 0.5667 (not the mean of task means, (0.4 + 0.9) / 2)
    # s2: (0.0 + 0.4 + 0.3) / 3 = 0.2333; group B as its only task.
    assert groups["value"].to_dict() == pytest.approx(
        {("s1", "A"): 1.7 / 3, ("s1", "B"): 0.3, ("s2", "A"): 0.7 / 3, ("s2", "B"): 0.35}
    )
    assert groups["queries"].tolist() == [3, 2, 3, 2]
    assert groups[["tasks_used", "tasks_total", "complete"]].loc[("s1", "A")].tolist() == [
        2,
        3,
        False,
    ]
    assert bool(groups.loc[("s1", "B"), "complete"]) is True

    values = overall(result)
    assert values == pytest.approx(
        {
            # s1 groups: (0.5667 + 0.3) / 2 = 0.4333; tasks: (0.4 + 0.9 + 0.3) / 3 = 0.5333;
            # geometric: sqrt(0.5667 * 0.3) = sqrt(0.17) = 0.4123
            ("s1", "groups_mean"): (1.7 / 3 + 0.3) / 2,
            ("s1", "tasks_mean"): 1.6 / 3,
            ("s1", "groups_geomean"): math.sqrt(0.17),
            # s2 groups: (0.2333 + 0.35) / 2 = 0.2917; tasks: (0.2 + 0.3 + 0.35) / 3 = 0.2833;
            # geometric: sqrt(0.2333 * 0.35) = 0.2858
            ("s2", "groups_mean"): (0.7 / 3 + 0.35) / 2,
            ("s2", "tasks_mean"): 0.85 / 3,
            ("s2", "groups_geomean"): math.sqrt(0.7 / 3 * 0.35),
        }
    )
    assert values[("s1", "groups_mean")] == pytest.approx(0.43333, abs=1e-5)
    frame = result["overall"]
    assert set(frame["rule"]) == {"judged"}
    assert set(frame["groups"]) == {2} and set(frame["groups_total"]) == {3}
    assert not frame["complete"].any()  # A is partial and C is left out
    label = frame.set_index("aggregate")["label"].drop_duplicates()
    assert label["groups_mean"] == "arithmetic mean over corpus groups (the paper's TIREx figure)"


def test_authors_rule_keeps_queries_every_run_contains() -> None:
    result = tirex.aggregate(
        metrics(), tirex.select_tasks(CONFIG), rule="intersection", run_queries=run_queries()
    )
    # Kept: A/t1 q2, A/t2 q1, B/t1 q1 (s2's run lacks A/t1 q1 and B/t1 q2).
    groups = result["groups"].set_index(["system", "group"])
    # s1: A (0.2 + 0.9) / 2 = 0.55, B 0.5; s2: A (0.4 + 0.3) / 2 = 0.35, B 0.7
    assert groups["value"].to_dict() == pytest.approx(
        {("s1", "A"): 0.55, ("s1", "B"): 0.5, ("s2", "A"): 0.35, ("s2", "B"): 0.7}
    )
    assert groups["queries"].tolist() == [2, 1, 2, 1]
    assert overall(result) == pytest.approx(
        {
            ("s1", "groups_mean"): 0.525,  # (0.55 + 0.5) / 2
            ("s1", "tasks_mean"): 1.6 / 3,  # (0.2 + 0.9 + 0.5) / 3
            ("s1", "groups_geomean"): math.sqrt(0.275),  # sqrt(0.55 * 0.5)
            ("s2", "groups_mean"): 0.525,  # (0.35 + 0.7) / 2
            ("s2", "tasks_mean"): 1.4 / 3,  # (0.4 + 0.3 + 0.7) / 3
            ("s2", "groups_geomean"): math.sqrt(0.245),  # sqrt(0.35 * 0.7)
        }
    )
    assert set(result["overall"]["rule"]) == {"intersection"}


def test_geometric_mean_with_a_zero_group_is_zero() -> None:
    frame = metrics()
    frame.loc[frame["task"] == "B/t1", "value"] = 0.0
    values = overall(tirex.aggregate(frame, tirex.select_tasks(CONFIG)))
    assert values[("s1", "groups_geomean")] == 0.0
    assert values[("s1", "groups_mean")] == pytest.approx(1.7 / 3 / 2)


def test_complete_selection_is_marked_complete() -> None:
    config = {"tasks": [{"id": "A/t1"}, {"id": "A/t2"}, {"id": "B/t1"}]}
    result = tirex.aggregate(metrics(), tirex.select_tasks(config))
    assert result["overall"]["complete"].all()
    assert result["groups"]["complete"].all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f[f["task"] != "B/t1"], r"no metrics for \(system, task\): \[\('s1', 'B/t1'\)"),
        (lambda f: f.replace({"task": {"B/t1": "C/t1"}}), r"metrics for tasks that are not used"),
        (lambda f: pd.concat([f, f.head(1)]), r"duplicate per-query rows"),
        (lambda f: f.drop(index=0), r"task 'A/t1', nDCG@10: the systems were evaluated on"),
    ],
)
def test_aggregate_refuses_inconsistent_metrics(change, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tirex.aggregate(change(metrics()), tirex.select_tasks(CONFIG))


def test_intersection_rule_needs_run_queries_for_every_system() -> None:
    selection = tirex.select_tasks(CONFIG)
    with pytest.raises(ValueError, match="needs the queries of every run"):
        tirex.aggregate(metrics(), selection, rule="intersection")
    partial = run_queries()
    partial = partial[~((partial["system"] == "s2") & (partial["task"] == "A/t2"))]
    with pytest.raises(ValueError, match=r"none listed for system 's2', task 'A/t2'"):
        tirex.aggregate(metrics(), selection, rule="intersection", run_queries=partial)
    with pytest.raises(ValueError, match=r"rule 'all' is not one of"):
        tirex.aggregate(metrics(), selection, rule="all")


# --------------------------------------------------------------------------- the catalogue


def paper_catalogue() -> dict:
    """The YAML snippet of docs/tirex.md that configs/paper.yaml takes over."""
    text = (REPO / "docs" / "tirex.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(tirex:\n.*?)```", text, flags=re.S)
    assert block, "docs/tirex.md has no ```yaml block starting with 'tirex:'"
    return yaml.safe_load(block.group(1))["tirex"]


def test_the_documented_catalogue_is_the_papers() -> None:
    config = paper_catalogue()
    selection = tirex.select_tasks({"tasks": config["tasks"]})
    groups = selection.groups()
    assert len(selection.catalogue) == 29
    assert {group: len(ids) for group, ids in groups.items()} == {
        "antique": 1, "argsme": 2, "clueweb09": 4, "clueweb12": 4, "cord19": 1,
        "cranfield": 1, "disks45": 3, "gov": 3, "gov2": 3, "medline": 4, "nfcorpus": 1,
        "vaswani": 1, "wapo": 1,
    }  # fmt: skip
    # Every group is the id's first component (medline/2004 and medline/2017 share one).
    assert all(task.group == tirex.default_group(task.id) for task in selection.catalogue)
    licensed = {task.group for task in selection.catalogue if task.licence}
    assert licensed == {"clueweb09", "clueweb12", "disks45", "gov", "gov2", "wapo"}
    # The documented skip list leaves out exactly the licensed groups.
    skipping = tirex.select_tasks(config)
    assert {t.group for t in skipping.used} == set(groups) - licensed


def test_one_index_per_corpus(tmp_path: Path) -> None:
    from rank_distillm.data import datasets

    docs = tmp_path / "docs.tsv"
    docs.write_text("d\tx\n", encoding="utf-8")
    (tmp_path / "q.tsv").write_text("1\tx\n", encoding="utf-8")
    entry = {"docs": str(docs), "subsets": {"a": {"queries": "q.tsv"}, "b": {"queries": "q.tsv"}}}
    datasets.register(datasets.Manifest.from_config("tx-local", entry, tmp_path, base=tmp_path))
    selection = tirex.select_tasks(
        {
            "tasks": [
                {"id": "medline/2004/trec-genomics-2004"},
                {"id": "medline/2004/trec-genomics-2005"},
                {"id": "medline/2017/trec-pm-2017"},
                {"id": "x/a", "group": "x", "dataset": "tx-local/a"},
                {"id": "x/b", "group": "x", "dataset": "tx-local/b"},
            ]
        }
    )
    found = {corpus: [t.id for t in ts] for corpus, ts in tirex.corpora(selection.used).items()}
    assert found == {
        "medline/2004": ["medline/2004/trec-genomics-2004", "medline/2004/trec-genomics-2005"],
        "medline/2017": ["medline/2017/trec-pm-2017"],
        "tx-local": ["x/a", "x/b"],
    }


# --------------------------------------------------------------------------- tables


def test_paper_figures_sit_beside_the_groups_and_means(tmp_path: Path) -> None:
    """Per-group and mean references beside the reproduced cells, with the difference; a
    system with only the paper's figures gets its own row, in the order asked for."""
    from rank_distillm.report.tirex_tables import write_tirex_tables

    selection = tirex.select_tasks(CONFIG)
    outputs = {
        kind: tmp_path / f"tirex.{kind}" for kind in ("md", "csv", "tex", "html", "png", "tasks")
    }
    references = {
        "s1": {"A": 0.5, "mean over groups": 0.4, "geometric mean over groups": 0.41},
        "paper-only": {"B": 0.6},
    }
    table = write_tirex_tables(
        tirex.aggregate(metrics(), selection),
        selection,
        "judged",
        outputs,
        "TIREx",
        references=references,
        rows=["paper-only", "s1", "s2"],
    )
    assert list(table.index) == ["paper-only", "s1", "s2"]
    assert table.loc["paper-only"].isna().all()
    csv = pd.read_csv(outputs["csv"], index_col="system")
    # s1's group A: (0.6 + 0.2 + 0.9) / 3 = 0.5667 against the paper's 0.5.
    assert csv.loc["s1", "paper A"] == 0.5
    assert csv.loc["s1", "diff A"] == pytest.approx(1.7 / 3 - 0.5, abs=1e-5)
    assert csv.loc["paper-only", "paper B"] == 0.6 and pd.isna(csv.loc["paper-only", "B"])
    assert "paper mean over tasks" not in csv.columns  # no figure for it
    markdown = outputs["md"].read_text()
    assert "| s1 | **0.567** (0.500; +0.067) |" in markdown  # bold: the column's best
    # (0.5667 + 0.3) / 2 = 0.4333 against 0.4; sqrt(0.5667 * 0.3) = 0.412 against 0.41.
    assert "**0.433** (0.400; +0.033)" in markdown and "**0.412** (0.410; +0.002)" in markdown
    assert "| paper-only | – | – (0.600) |" in markdown
    assert "In parentheses: the paper's figure" in markdown


def test_without_paper_figures_the_tirex_table_is_unchanged(tmp_path: Path) -> None:
    from rank_distillm.report.tirex_tables import write_tirex_tables

    selection = tirex.select_tasks(CONFIG)
    outputs = {kind: tmp_path / f"tirex.{kind}" for kind in ("md", "csv", "png", "tasks")}
    write_tirex_tables(tirex.aggregate(metrics(), selection), selection, "judged", outputs, "T")
    csv = pd.read_csv(outputs["csv"], index_col="system")
    assert list(csv.index) == ["s1", "s2"]
    assert list(csv.columns) == [
        "A",
        "B",
        "mean over groups",
        "mean over tasks",
        "geometric mean over groups",
        "sig A",
        "sig B",
    ]
    assert "In parentheses" not in outputs["md"].read_text()


def test_tirex_chart_labels_each_bar_and_wraps_its_title() -> None:
    from rank_distillm.report.tirex_tables import _chart

    table = pd.DataFrame({"A": [0.5, 0.25], "B": [float("nan"), 0.875]}, index=["s1", "s2"])
    title = "TIREx: " + "a model zoo with a long title " * 4
    ax = _chart(table, ["A", "B"], title, "nDCG@10").axes[0]
    labels = [text.get_text() for text in ax.texts]
    assert labels == ["0.500", "", "0.250", "0.875"]  # s1's bars, then s2's; NaN unlabelled
    assert ax.get_title().count("\n") == 2 and max(map(len, ax.get_title().split("\n"))) <= 60
