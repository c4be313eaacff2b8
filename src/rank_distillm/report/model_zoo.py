"""The model-zoo table (Markdown, CSV, LaTeX, HTML) and bar chart, with significance
markers and the paper's figures beside.

A table cell is one system's run of one first stage's candidates on one evaluation set:
the columns are (first stage, evaluation set) pairs, plus the mean over each first
stage's evaluation sets (the paper's "TREC DL 19/20" figure). Each row is tested against
a baseline row per evaluation set (``rank_distillm.evaluation.significance``).
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

from rank_distillm.data.atomic import atomic_output, atomic_write_text
from rank_distillm.data.trec import require_columns
from rank_distillm.evaluation import reproduction, significance
from rank_distillm.evaluation.measures import DEFAULT_MEASURES, display_name
from rank_distillm.report import table_formats
from rank_distillm.report.plots import bar_chart, save_png

LOGGER = logging.getLogger(__name__)

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
    tests: pd.DataFrame | None = None,
    published: pd.DataFrame | None = None,
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
    are ``references[row][tirex_stage]["tirex"]``. ``tests`` (from
    :func:`significance_tests`) add ``sig <measure> <column>`` (the marker) and
    ``p <measure> <column>`` (the Holm-adjusted p-value) per evaluation-set column.
    ``published`` (``reproduction.tests`` per first stage and dataset) adds the rows'
    comparison with the authors' runs (``reproduction.csv_columns``).
    """
    measures = [primary, *(m for m in measures if m != primary)]
    _check_metrics(metrics, measures)
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
    _add_counts(table, rows, columns, counts)
    if tests is not None:
        _add_tests(table, rows, columns, tests, measures)
    if published is not None:
        _add_published(table, rows, columns, published, display_name(primary))
    if references:
        if tirex is not None:
            columns = [*columns, Column(tirex_stage or "", TIREX, TIREX_LABEL)]
        _add_references(table, rows, columns, references, display_name(primary))
    return table


def _check_metrics(metrics: pd.DataFrame, measures: Sequence[str]) -> None:
    """The columns, every measure, and one value per (row, cell, query, measure)."""
    require_columns(metrics, METRICS_COLUMNS, "metrics frame")
    absent = [m for m in measures if m not in set(metrics["measure"])]
    if absent:
        raise ValueError(f"measures {absent} not in metrics ({sorted(set(metrics['measure']))})")
    keys = ["row", "first_stage", "dataset", "query_id", "measure"]
    duplicated = metrics.duplicated(keys, keep=False)
    if duplicated.any():
        raise ValueError(
            f"duplicate per-query rows: {metrics[duplicated].head(3).to_dict('records')}"
        )


def _add_counts(
    table: pd.DataFrame, rows: list[tuple[str, str]], columns: list[Column], counts: pd.Series
) -> None:
    """``queries <column>`` per evaluation-set column (a warning where rows differ)."""
    for column in (c for c in columns if c.dataset != MEAN):
        cells = [int(counts.get((row, column.first_stage, column.dataset), 0)) for row, _ in rows]
        table[f"queries {column.label}"] = cells
        present = {n for n in cells if n > 0}
        if len(present) > 1:
            LOGGER.warning(
                "rows were evaluated on different query counts for %s: %s", column.label, present
            )


def _add_tests(
    table: pd.DataFrame,
    rows: list[tuple[str, str]],
    columns: list[Column],
    tests: pd.DataFrame,
    measures: Sequence[str],
) -> None:
    by_cell = tests.set_index(["row", "first_stage", "dataset", "measure"])
    for measure in measures:
        name = display_name(measure)
        for column in (c for c in columns if c.dataset != MEAN):
            keys = [(row, column.first_stage, column.dataset, measure) for row, _ in rows]
            found = [by_cell.loc[key] if key in by_cell.index else None for key in keys]
            table[f"sig {name} {column.label}"] = [
                "" if test is None else test["marker"] for test in found
            ]
            table[f"p {name} {column.label}"] = [
                math.nan if test is None else test["p_holm"] for test in found
            ]


def _add_published(
    table: pd.DataFrame,
    rows: list[tuple[str, str]],
    columns: list[Column],
    published: pd.DataFrame,
    name: str,
) -> None:
    """The rows' tests against the authors' runs, per evaluation-set column."""
    found = reproduction.by_key(published, ("first_stage", "dataset"))
    labelled = {
        f"{name} {c.label}": (c.first_stage, c.dataset) for c in columns if c.dataset != MEAN
    }
    for column, values in reproduction.csv_columns(found, [r for r, _ in rows], labelled).items():
        table[column] = values


def significance_tests(metrics: pd.DataFrame, settings: significance.Settings) -> pd.DataFrame:
    """Every row against the baseline row, per (first stage, evaluation set) and measure
    (see ``significance.paired_tests``); ``metrics`` as restricted by the query rule."""
    require_columns(metrics, METRICS_COLUMNS, "metrics frame")
    return significance.paired_tests(metrics, settings, cell=("first_stage", "dataset"))


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


@dataclass(frozen=True)
class Outputs:
    """Where :func:`write_model_zoo` writes: ``md``, ``csv``, ``tex``, ``html``, ``png`` and
    ``tests`` (every test, one per line)."""

    md: PathLike
    csv: PathLike
    tex: PathLike
    html: PathLike
    png: PathLike
    tests: PathLike


def display_table(
    table: pd.DataFrame,
    columns: Sequence[Column],
    first_stages: Mapping[str, str],
    name: str,
    title: str,
    notes: Sequence[str],
) -> table_formats.DisplayTable:
    """The primary measure's cells of ``table`` (from :func:`model_zoo_table`) as shown;
    with several first stages, each column is grouped under its first stage (the TIREx
    column stands alone)."""
    keys = [f"{name} {column.label}" for column in columns]
    grouped = len({c.first_stage for c in columns if c.dataset != TIREX}) > 1
    groups = labels = None
    if grouped:
        groups = ["" if c.dataset == TIREX else first_stages[c.first_stage] for c in columns]
        labels = [
            c.label.removeprefix(f"{group} ") for c, group in zip(columns, groups, strict=True)
        ]
    else:
        labels = [c.label for c in columns]
    markers = [
        [str(row.get(f"sig {key}", "") or "") for key in keys] for _, row in table.iterrows()
    ]
    references = np.array(
        [[row.get(f"paper {key}", math.nan) for key in keys] for _, row in table.iterrows()],
        dtype=float,
    ).reshape(len(table), len(keys))
    compared = [
        [
            reproduction.text(row.get(f"reproduced {key}", ""), row.get(f"published {key}"))
            for key in keys
        ]
        for _, row in table.iterrows()
    ]
    return table_formats.DisplayTable(
        title=title,
        rows=[str(label) for label in table.index],
        columns=labels,
        groups=groups,
        values=table[keys].to_numpy(dtype=float).reshape(len(table), len(keys)),
        markers=markers,
        references=references if np.isfinite(references).any() else None,
        notes=list(notes),
        measure=name,
        compared=compared if any(any(texts) for texts in compared) else None,
        compared_label="authors' run",
    )


def _table_notes(
    tests: pd.DataFrame | None,
    settings: significance.Settings | None,
    baseline_label: str,
    name: str,
    notes: Sequence[str],
) -> list[str]:
    found = [f"Cells: {name}; the best value per column in bold."]
    if tests is not None and settings is not None:
        compared = sorted(set(tests.groupby(["first_stage", "dataset", "measure"]).size()))
        found.append(significance.describe(settings, baseline_label, compared, name))
        found.append(significance.describe_rule(settings.rule))
    found.append(
        "mean: arithmetic mean of the per-set means of one first stage (not pooled over queries)."
    )
    return [*found, *notes]


def write_model_zoo(
    metrics: pd.DataFrame,
    outputs: Outputs,
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
    settings: significance.Settings | None = None,
    latex_label: str = "tab:model-zoo",
    published: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Write the model zoo: CSV (all measures, markers and Holm-adjusted p-values), the
    tests (one per line), and Markdown, LaTeX, HTML and PNG (primary measure). With
    ``settings``, the query rule restricts the queries of means and tests, and every row
    is tested against ``settings.baseline``. ``published`` (``reproduction.tests``): rows
    against the authors' runs of their systems, beside the cells and in the tests file.
    Each file is written atomically."""
    ordered = [primary, *(m for m in measures if m != primary)]
    tests = None
    baseline_label = ""
    if settings is not None:
        metrics = significance.restrict_queries(metrics, settings.rule, ("first_stage", "dataset"))
        tests = significance_tests(metrics, settings)
        labels = dict(zip(metrics["row"], metrics["system"], strict=True))
        labels.update(dict(rows or []))
        baseline_label = str(labels.get(settings.baseline, settings.baseline))
    table = model_zoo_table(
        metrics,
        first_stages,
        evaluation,
        primary,
        ordered,
        references,
        tirex=tirex,
        tirex_stage=tirex_stage,
        rows=rows,
        tests=tests,
        published=published,
    )
    name = display_name(primary)
    columns = columns_of(metrics, first_stages, evaluation)
    if tirex is not None:
        columns.append(Column(tirex_stage or "", TIREX, TIREX_LABEL))
    if published is not None and not published.empty:
        alpha = settings.alpha if settings is not None else 0.05
        cell = ("first_stage", "dataset")
        notes = [*notes, reproduction.note(published, cell, "evaluation set", alpha, primary)]
    notes = _table_notes(tests, settings, baseline_label, name, notes)
    shown = display_table(table, columns, first_stages, name, title, notes)
    footer = [
        f"All measures ({', '.join(display_name(m) for m in ordered)}) per column and the "
        f"query counts are in `{Path(outputs.csv).name}`"
        + (
            ", with the markers and Holm-adjusted p-values (`p ...`); every test (t, p, "
            f"queries) is in `{Path(outputs.tests).name}`."
            if tests is not None
            else "."
        )
    ]
    with atomic_output(outputs.csv) as tmp:
        table.to_csv(tmp, float_format="%.6g")
    with atomic_output(outputs.tests) as tmp:
        _tests_frame(tests, metrics, published).to_csv(tmp, index=False, float_format="%.6g")
    atomic_write_text(outputs.md, table_formats.markdown(shown, footer))
    atomic_write_text(outputs.tex, table_formats.latex(shown, latex_label))
    atomic_write_text(outputs.html, table_formats.html_page(shown, footer))
    save_png(bar_chart(shown), outputs.png)
    return table


def _tests_frame(
    tests: pd.DataFrame | None, metrics: pd.DataFrame, published: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The tests with the rows' labels, for the tests file (empty without settings), then
    the rows' tests against the authors' runs (``baseline`` names the authors' run)."""
    measure, *rest = significance.TEST_COLUMNS
    columns = ["first_stage", "dataset", measure, "system", *rest]
    found = [t for t in (tests, published) if t is not None and not t.empty]
    if not found:
        return pd.DataFrame(columns=columns)
    labels = metrics.drop_duplicates("row").set_index("row")["system"]
    return pd.concat([t.assign(system=t["row"].map(labels))[columns] for t in found])
