"""The TIREx tables and plot: nDCG@10 per corpus group and the paper's aggregates.

``tirex.aggregate`` computes the figures; this module lays them out: a table in
Markdown, LaTeX and HTML (``table_formats``; rows = systems; columns = corpus groups,
then the mean over groups (the paper's figure), the mean over tasks and the geometric
mean over groups) with significance markers per group, a CSV of the same, a per-task
CSV, and a bar chart of per-group nDCG@10 by system. The notes say which tasks
were used, which were left out and why, which groups are incomplete, and which query
rule the figures follow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rank_distillm import table_formats, tirex
from rank_distillm.io import atomic_output, atomic_write_text

PathLike = str | os.PathLike[str]
AGGREGATE_COLUMNS = {
    "groups_mean": "mean over groups",
    "tasks_mean": "mean over tasks",
    "groups_geomean": "geometric mean over groups",
}


def tirex_table(aggregates: Mapping[str, pd.DataFrame], measure: str = "nDCG@10") -> pd.DataFrame:
    """Rows = systems (first-seen order); columns = groups, then the three aggregates."""
    groups = aggregates["groups"][aggregates["groups"]["measure"] == measure]
    table = groups.pivot(index="system", columns="group", values="value")
    systems = list(dict.fromkeys(groups["system"]))
    table = table.loc[systems, list(dict.fromkeys(groups["group"]))]
    overall = aggregates["overall"][aggregates["overall"]["measure"] == measure]
    for name, label in AGGREGATE_COLUMNS.items():
        values = overall[overall["aggregate"] == name].set_index("system")["value"]
        table[label] = values.reindex(systems).to_numpy()
    table.index.name = "system"
    table.columns.name = None
    return table


def overall_figure(aggregates: Mapping[str, pd.DataFrame], measure: str = "nDCG@10") -> dict:
    """The paper's TIREx figure (mean over groups) per system."""
    overall = aggregates["overall"]
    chosen = overall[(overall["measure"] == measure) & (overall["aggregate"] == "groups_mean")]
    return dict(zip(chosen["system"], chosen["value"], strict=True))


def notes(
    selection: tirex.Selection, rule: str, aggregates: Mapping[str, pd.DataFrame]
) -> list[str]:
    status = aggregates["groups"].drop_duplicates("group")
    lines = [selection.note()]
    lines.append(f"Queries: {tirex.RULES[rule]} (rule `{rule}`).")
    lines.append(
        "A group's value is the mean over its tasks' queries (topics and qrels concatenated, "
        "query ids made unique per task); the TIREx figure is the arithmetic mean over groups."
    )
    incomplete = status[~status["complete"]]["group"].tolist()
    if incomplete or selection.skipped:
        lines.append(
            "Not the whole benchmark: the aggregates cover only the groups listed; "
            "a mean over a partial selection is not the paper's figure."
        )
    return lines


def _chart(table: pd.DataFrame, groups: list[str], title: str, measure: str) -> Figure:
    systems = list(table.index)
    fig = Figure(figsize=(max(6.0, 1.2 * len(groups) + 2), 4.5))
    ax = fig.add_subplot()
    x = np.arange(len(groups))
    width = 0.8 / max(len(systems), 1)
    for i, system in enumerate(systems):
        values = table.loc[system, groups].to_numpy(dtype=float)
        ax.bar(x + (i - (len(systems) - 1) / 2) * width, values, width, label=str(system))
    ax.set_xticks(x, groups, rotation=30, ha="right")
    ax.set_ylabel(measure)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncols=2, frameon=False, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return fig


def write_tirex_tables(
    aggregates: Mapping[str, pd.DataFrame],
    selection: tirex.Selection,
    rule: str,
    outputs: Mapping[str, PathLike],
    title: str,
    measure: str = "nDCG@10",
    tests: pd.DataFrame | None = None,
    tests_note: str | None = None,
    latex_label: str = "tab:tirex",
) -> pd.DataFrame:
    """``outputs``: ``md``, ``csv``, ``tex`` and ``html`` (per group and aggregates),
    ``tasks`` (per task), ``tests`` (one line per test), ``png`` (per-group chart).
    ``tests`` (``significance.paired_tests`` per ``group``, with a ``system`` label column)
    put markers on the group columns; ``tests_note`` says what they mean. Each file is
    written atomically."""
    table = tirex_table(aggregates, measure)
    lines = notes(selection, rule, aggregates)
    if tests_note:
        lines.insert(0, tests_note)
    groups = [c for c in table.columns if c not in AGGREGATE_COLUMNS.values()]
    found = {} if tests is None else tests.set_index(["system", "group"])
    markers = [
        [
            str(found.loc[(system, column), "marker"]) if (system, column) in found.index else ""
            for column in table.columns
        ]
        if tests is not None
        else [""] * len(table.columns)
        for system in table.index
    ]
    shown = table_formats.DisplayTable(
        title=title,
        rows=[str(system) for system in table.index],
        columns=list(table.columns),
        values=table.to_numpy(dtype=float).reshape(table.shape),
        markers=markers,
        notes=[f"Cells: {measure} per corpus group, then aggregated.", *lines],
        measure=measure,
    )
    csv = table.copy()
    for j, group in enumerate(groups):
        csv[f"sig {group}"] = [row[j] for row in markers]
    with atomic_output(outputs["csv"]) as tmp:
        csv.to_csv(tmp, float_format="%.6g")
    tasks = aggregates["tasks"]
    with atomic_output(outputs["tasks"]) as tmp:
        tasks[tasks["measure"] == measure].to_csv(tmp, index=False, float_format="%.6g")
    if "tests" in outputs:
        frame = tests if tests is not None else pd.DataFrame()
        with atomic_output(outputs["tests"]) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.6g")
    atomic_write_text(outputs["md"], table_formats.markdown(shown))
    if "tex" in outputs:
        atomic_write_text(outputs["tex"], table_formats.latex(shown, latex_label))
    if "html" in outputs:
        atomic_write_text(outputs["html"], table_formats.html_page(shown))
    fig = _chart(table, groups, title, measure)
    with atomic_output(outputs["png"]) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return table
