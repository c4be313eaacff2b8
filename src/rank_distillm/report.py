"""The model-zoo table (Markdown + CSV) and bar chart, with the paper's figures beside.

A table cell is one system's run of one first stage's candidates on one evaluation set:
the columns are (first stage, evaluation set) pairs, plus the mean over each first
stage's evaluation sets (the paper's "TREC DL 19/20" figure).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rank_distillm.evaluate import DEFAULT_MEASURES, display_name
from rank_distillm.io import atomic_output, require_columns

logger = logging.getLogger(__name__)

METRICS_COLUMNS = ("row", "system", "first_stage", "dataset", "query_id", "measure", "value")
MEAN = "mean"
#: The TIREx column's "set" (its references key) and label.
TIREX = "tirex"
TIREX_LABEL = "TIREx"
PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Column:
    """A (first stage, evaluation set) cell column, or a first stage's mean (dataset "mean")."""

    first_stage: str
    dataset: str
    label: str


def columns_of(
    metrics: pd.DataFrame, first_stages: Mapping[str, str], evaluation: Mapping[str, str]
) -> list[Column]:
    """Columns in config order; a first stage gets a mean column when it has several sets.

    Labels name the first stage only when there are several (the demo's single BM25 stage
    gives ``DL19 (demo)``, the paper's ``BM25 DL19``).
    """
    present = set(zip(metrics["first_stage"], metrics["dataset"], strict=True))
    several = len({stage for stage, _ in present}) > 1
    columns = []
    for stage, stage_label in first_stages.items():
        sets = [split for split in evaluation if (stage, split) in present]
        prefix = f"{stage_label} " if several else ""
        columns += [Column(stage, split, prefix + evaluation[split]) for split in sets]
        if len(sets) > 1:
            columns.append(Column(stage, MEAN, prefix + MEAN))
    return columns


def model_zoo_table(
    metrics: pd.DataFrame,
    first_stages: Mapping[str, str],
    evaluation: Mapping[str, str],
    primary: str = "nDCG@10",
    measures: Sequence[str] = DEFAULT_MEASURES,
    references: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    tirex: Mapping[str, float] | None = None,
    tirex_stage: str | None = None,
    rows: Sequence[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """One row per table row (index: its label) with mean values: ``rows`` (key, label)
    in order, also those without any cell (e.g. a teacher with only the paper's figures),
    or the rows of ``metrics`` in first-appearance order.

    Columns: ``<measure> <column>`` per measure (primary first) and column, where a mean
    column is the mean of the per-set means (NaN if a set is missing); ``queries <column>``
    (queries evaluated, primary measure); and, where ``references`` (row key -> first
    stage -> set or "mean" -> value) has the primary measure, ``paper <column>`` and
    ``diff <column>`` (reproduced - paper). ``tirex`` (row key -> the TIREx figure, the
    mean over corpus groups) adds the primary measure's ``TIREx`` column; its references
    are ``references[row][tirex_stage]["tirex"]``.
    """
    require_columns(metrics, METRICS_COLUMNS, "metrics frame")
    measures = [primary, *(m for m in measures if m != primary)]
    absent = [m for m in measures if m not in set(metrics["measure"])]
    if absent:
        raise ValueError(f"measures {absent} not in metrics ({sorted(set(metrics['measure']))})")
    keys = ["row", "first_stage", "dataset", "query_id", "measure"]
    duplicated = metrics.duplicated(keys, keep=False)
    if duplicated.any():
        raise ValueError(
            f"duplicate per-query rows: {metrics[duplicated].head(3).to_dict('records')}"
        )
    if rows is None:
        rows = list(dict.fromkeys(zip(metrics["row"], metrics["system"], strict=True)))
    rows = [tuple(row) for row in rows]
    labels = [label for _, label in rows]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two table rows share a label: {labels}")
    columns = columns_of(metrics, first_stages, evaluation)
    means = metrics.groupby(["row", "first_stage", "dataset", "measure"])["value"].mean()
    counts = (
        metrics[metrics["measure"] == primary]
        .groupby(["row", "first_stage", "dataset"])["query_id"]
        .nunique()
    )

    table = pd.DataFrame(index=pd.Index(labels, name="system"))
    for measure in measures:
        name = display_name(measure)
        for column in columns:
            if column.dataset == MEAN:
                parts = [
                    f"{name} {c.label}"
                    for c in columns
                    if c.first_stage == column.first_stage and c.dataset != MEAN
                ]
                table[f"{name} {column.label}"] = table[parts].mean(axis=1, skipna=False)
                continue
            key = (column.first_stage, column.dataset, measure)
            table[f"{name} {column.label}"] = [
                float(means.get((row, *key), np.nan)) for row, _ in rows
            ]
        if tirex is not None and measure == primary:
            table[f"{name} {TIREX_LABEL}"] = [tirex.get(row, np.nan) for row, _ in rows]
    for column in (c for c in columns if c.dataset != MEAN):
        cells = [int(counts.get((row, column.first_stage, column.dataset), 0)) for row, _ in rows]
        table[f"queries {column.label}"] = cells
        present = {n for n in cells if n > 0}
        if len(present) > 1:
            logger.warning(
                "rows were evaluated on different query counts for %s: %s", column.label, present
            )
    if references:
        if tirex is not None:
            columns = [*columns, Column(tirex_stage or "", TIREX, TIREX_LABEL)]
        _add_references(table, rows, columns, references, display_name(primary))
    return table


def _reference(
    references: Mapping[str, Mapping[str, Mapping[str, float]]],
    row: str,
    column: Column,
    columns: list[Column],
) -> float:
    """The paper's figure for a cell; a mean the paper does not state is the mean of its
    sets' figures when it has them all."""
    given = references.get(row, {}).get(column.first_stage, {})
    if column.dataset in given:
        return float(given[column.dataset])
    if column.dataset != MEAN:
        return math.nan
    parts = [
        c.dataset
        for c in columns
        if c.first_stage == column.first_stage and c.dataset not in (MEAN, TIREX)
    ]
    if parts and all(part in given for part in parts):
        return float(np.mean([given[part] for part in parts]))
    return math.nan


def _add_references(
    table: pd.DataFrame,
    rows: list[tuple[str, str]],
    columns: list[Column],
    references: Mapping[str, Mapping[str, Mapping[str, float]]],
    name: str,
) -> None:
    for column in columns:
        values = np.array([_reference(references, row, column, columns) for row, _ in rows])
        if np.isnan(values).all():
            continue
        reproduced = table[f"{name} {column.label}"]
        table[f"paper {name} {column.label}"] = values
        table[f"diff {name} {column.label}"] = reproduced.to_numpy() - values


def _fmt(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


def _signed(value: float) -> str:
    return f"{value:+.3f}".replace("-", "−")


def _markdown(
    table: pd.DataFrame,
    columns: list[str],
    name: str,
    title: str,
    notes: Sequence[str],
    csv_name: str,
    measures: Sequence[str],
) -> str:
    lines = [f"# {title}", ""]
    lines.append("| System | " + " | ".join(c.removeprefix(f"{name} ") for c in columns) + " |")
    lines.append("|---|" + "---:|" * len(columns))
    best = {}
    for col in columns:
        rounded = table[col].round(3)
        best[col] = rounded.max() if rounded.notna().any() else math.nan
    has_reference = False
    for system, row in table.iterrows():
        cells = []
        for col in columns:
            value = row[col]
            text = _fmt(value)
            if not math.isnan(value) and round(value, 3) == best[col]:
                text = f"**{text}**"
            paper = row.get(f"paper {col}", math.nan)
            if not math.isnan(paper):
                has_reference = True
                diff = "" if math.isnan(value) else f"; {_signed(round(value, 3) - paper)}"
                text = f"{text} ({paper:.3f}{diff})"
            cells.append(text)
        label = str(system).replace("|", "\\|")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    extra = [f"Cells: {name}; the best value per column in bold."]
    if has_reference:
        extra.append(
            "In parentheses: the paper's figure and the difference (reproduced − paper); "
            "– marks a cell this run did not produce."
        )
    extra.append(
        "mean: arithmetic mean of the per-set means of one first stage (not pooled over queries)."
    )
    lines += [f"- {note}" for note in [*extra, *notes]]
    lines.append("")
    names = ", ".join(display_name(m) for m in measures)
    lines.append(
        f"All measures ({names}) per column, the query counts and the paper's figures "
        f"are in `{csv_name}`."
    )
    return "\n".join(lines) + "\n"


def _bar_chart(table: pd.DataFrame, columns: list[str], title: str, xlabel: str) -> Figure:
    systems = list(table.index)
    n_groups = len(columns)
    height = 0.8 / n_groups
    fig = Figure(figsize=(8, 1.0 + 0.3 * n_groups * len(systems) + 0.3 * len(systems)))
    ax = fig.add_subplot()
    y = np.arange(len(systems))
    for i, col in enumerate(columns):
        values = table[col].to_numpy(dtype=float)
        bars = ax.barh(
            y + (i - (n_groups - 1) / 2) * height,
            values,
            height,
            label=col.removeprefix(f"{xlabel} "),
        )
        labels = ["" if math.isnan(v) else _fmt(v) for v in values]
        ax.bar_label(bars, labels=labels, padding=2, fontsize=8)
    shown = table[columns].to_numpy(dtype=float)
    top = float(np.nanmax(shown)) if np.isfinite(shown).any() else 1.0
    ax.set_xlim(0, max(top, 1e-9) * 1.15)
    ax.set_yticks(y, [str(s) for s in systems])
    ax.invert_yaxis()  # first system on top, as in the table
    ax.set_xlabel(xlabel)
    ax.set_ylabel("System")
    ax.set_title(title)
    ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=min(n_groups, 4), frameon=False
    )
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    return fig


def write_model_zoo(
    metrics: pd.DataFrame,
    outputs: Mapping[str, PathLike],
    first_stages: Mapping[str, str],
    evaluation: Mapping[str, str],
    title: str,
    notes: Sequence[str] = (),
    *,
    references: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    tirex: Mapping[str, float] | None = None,
    tirex_stage: str | None = None,
    rows: Sequence[tuple[str, str]] | None = None,
    primary: str = "nDCG@10",
    measures: Sequence[str] = DEFAULT_MEASURES,
) -> pd.DataFrame:
    """Write the model zoo as CSV (all measures), Markdown and PNG (primary measure);
    ``outputs`` maps ``md``, ``csv`` and ``png`` to paths. Each file is written atomically."""
    table = model_zoo_table(
        metrics, first_stages, evaluation, primary, measures, references, tirex, tirex_stage, rows
    )
    name = display_name(primary)
    columns = [f"{name} {c.label}" for c in columns_of(metrics, first_stages, evaluation)]
    if tirex is not None:
        columns.append(f"{name} {TIREX_LABEL}")
    ordered = [primary, *(m for m in measures if m != primary)]
    with atomic_output(outputs["csv"]) as tmp:
        table.to_csv(tmp, float_format="%.4f")
    with atomic_output(outputs["md"]) as tmp:
        text = _markdown(table, columns, name, title, notes, Path(outputs["csv"]).name, ordered)
        tmp.write_text(text, encoding="utf-8")
    fig = _bar_chart(table, columns, title, name)
    with atomic_output(outputs["png"]) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return table
