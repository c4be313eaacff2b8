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
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rank_distillm.data.atomic import atomic_output, atomic_write_text
from rank_distillm.evaluation import reproduction, tirex
from rank_distillm.report import table_formats
from rank_distillm.report.plots import save_png

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


def with_references(
    table: pd.DataFrame, references: Mapping[str, Mapping[str, float]], rows: Sequence[str]
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The table with its rows in ``rows`` order, a system with references but no runs
    added as a row of NaN (its paper figures shown alone), and the references aligned to
    the cells (None when there are none). ``references``: system -> column -> figure."""
    order = [row for row in rows if row in table.index or row in references]
    order += [row for row in table.index if row not in order]
    table = table.reindex(order)
    given = [references.get(row, {}) for row in order]
    found = np.array(
        [[figures.get(column, np.nan) for column in table.columns] for figures in given],
        dtype=float,
    ).reshape(table.shape)
    return table, found if np.isfinite(found).any() else None


def _csv(
    table: pd.DataFrame,
    markers: list[list[str]],
    papers: np.ndarray | None,
    published: Mapping[tuple, pd.Series],
) -> pd.DataFrame:
    """The CSV: figures, then a marker column per group, then ``paper``/``diff`` columns
    for the columns with a paper figure (diff: reproduced - paper), then the comparison
    with the authors' runs per group (``reproduction.csv_columns``)."""
    csv = table.copy()
    groups = [c for c in table.columns if c not in AGGREGATE_COLUMNS.values()]
    for group in groups:
        j = list(table.columns).index(group)
        csv[f"sig {group}"] = [row[j] for row in markers]
    if papers is not None:
        for j, column in enumerate(table.columns):
            if np.isfinite(papers[:, j]).any():
                csv[f"paper {column}"] = papers[:, j]
                csv[f"diff {column}"] = table[column].to_numpy(dtype=float) - papers[:, j]
    columns = {group: (group,) for group in groups}
    for name, values in reproduction.csv_columns(published, list(table.index), columns).items():
        csv[name] = values
    return csv


def _tests(tests: pd.DataFrame | None, published: pd.DataFrame | None) -> pd.DataFrame:
    """The tests file: the tests against the baseline, then those against the authors'
    runs (``baseline`` names the authors' run)."""
    if published is None or published.empty:
        return pd.DataFrame() if tests is None else tests
    if tests is None:
        return published
    return pd.concat([tests, published[list(tests.columns)]], ignore_index=True)


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
    """Bars per group and system, each labelled with its value (upright while a group
    has room for the labels side by side), under a title wrapped to the figure."""
    systems = list(table.index)
    fig = Figure(figsize=(max(6.0, 1.2 * len(groups) + 2), 4.5))
    ax = fig.add_subplot()
    x = np.arange(len(groups))
    width = 0.8 / max(len(systems), 1)
    rotation = 0 if len(systems) <= 4 else 90
    for i, system in enumerate(systems):
        values = table.loc[system, groups].to_numpy(dtype=float)
        bars = ax.bar(x + (i - (len(systems) - 1) / 2) * width, values, width, label=str(system))
        labels = ["" if np.isnan(v) else table_formats.fmt(v) for v in values]
        ax.bar_label(bars, labels=labels, padding=2, fontsize=7, rotation=rotation)
    ax.set_xticks(x, groups, rotation=30, ha="right")
    ax.set_ylabel(measure)
    ax.set_ylim(0, 1)
    ax.set_title(textwrap.fill(title, 60), fontsize=10)
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
    references: Mapping[str, Mapping[str, float]] | None = None,
    rows: Sequence[str] = (),
    published: pd.DataFrame | None = None,
    published_note: str | None = None,
) -> pd.DataFrame:
    """``outputs``: ``md``, ``csv``, ``tex`` and ``html`` (per group and aggregates),
    ``tasks`` (per task), ``tests`` (one line per test), ``png`` (per-group chart).
    ``tests`` (``significance.paired_tests`` per ``group``, with a ``system`` label column)
    put markers on the group columns; ``tests_note`` says what they mean. ``references``
    (system -> group or aggregate column -> the paper's figure) sit beside the cells, and
    a system with references but no runs gets a row of its own; ``rows`` orders the
    systems. ``published`` (``reproduction.tests`` per ``group``, ``system`` our label):
    rows against the authors' runs, shown after the cells, in the CSV and the tests file,
    explained by ``published_note``. Each file is written atomically."""
    table, papers = with_references(tirex_table(aggregates, measure), references or {}, rows)
    lines = notes(selection, rule, aggregates)
    lines[:0] = [note for note in (tests_note, published_note) if note]
    found, theirs = (
        {} if frame is None else reproduction.by_key(frame, ("group",), "system")
        for frame in (tests, published)
    )
    cells = [[(system, column) for column in table.columns] for system in table.index]
    markers = [[str(found[c]["marker"]) if c in found else "" for c in row] for row in cells]
    compared = [
        [
            reproduction.text(theirs[c]["reproduced"], theirs[c]["baseline_mean"])
            if c in theirs
            else ""
            for c in row
        ]
        for row in cells
    ]
    shown = table_formats.DisplayTable(
        title=title,
        rows=[str(system) for system in table.index],
        columns=list(table.columns),
        values=table.to_numpy(dtype=float).reshape(table.shape),
        markers=markers,
        references=papers,
        notes=[f"Cells: {measure} per corpus group, then aggregated.", *lines],
        measure=measure,
        compared=compared if theirs else None,
        compared_label="authors' run",
    )
    with atomic_output(outputs["csv"]) as tmp:
        _csv(table, markers, papers, theirs).to_csv(tmp, float_format="%.6g")
    tasks = aggregates["tasks"]
    with atomic_output(outputs["tasks"]) as tmp:
        tasks[tasks["measure"] == measure].to_csv(tmp, index=False, float_format="%.6g")
    if "tests" in outputs:
        with atomic_output(outputs["tests"]) as tmp:
            _tests(tests, published).to_csv(tmp, index=False, float_format="%.6g")
    atomic_write_text(outputs["md"], table_formats.markdown(shown))
    if "tex" in outputs:
        atomic_write_text(outputs["tex"], table_formats.latex(shown, latex_label))
    if "html" in outputs:
        atomic_write_text(outputs["html"], table_formats.html_page(shown))
    groups = [c for c in table.columns if c not in AGGREGATE_COLUMNS.values()]
    save_png(_chart(table.dropna(how="all"), groups, title, measure), outputs["png"], dpi=120)
    return table
