"""The "model zoo" table (Markdown + CSV) and bar chart of all systems' effectiveness."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rank_distillm.evaluate import DEFAULT_MEASURES, display_name
from rank_distillm.io import atomic_output

logger = logging.getLogger(__name__)

METRICS_COLUMNS = ("system", "dataset", "query_id", "measure", "value")


def _first_seen(values: pd.Series) -> list[str]:
    return list(dict.fromkeys(values))


def _ordered_measures(primary: str, measures: Sequence[str]) -> list[str]:
    return [primary, *(m for m in measures if m != primary)]


def model_zoo_table(
    metrics: pd.DataFrame, primary: str = "nDCG@10", measures: Sequence[str] = DEFAULT_MEASURES
) -> pd.DataFrame:
    """One row per system (index ``system``, first-appearance order) with mean values.

    Columns: ``<measure> <dataset>`` per measure (primary first) and dataset, ``<measure> mean``
    (the mean of the per-dataset means, as in the paper's "TREC DL 19/20" column; NaN if any
    dataset is missing) and ``queries <dataset>`` (queries evaluated for the primary measure).
    Measures are labelled with their display names (AP@100 -> MAP@100).
    """
    missing_cols = [c for c in METRICS_COLUMNS if c not in metrics.columns]
    if missing_cols:
        raise ValueError(f"metrics frame lacks columns {missing_cols}")
    measures = _ordered_measures(primary, measures)
    absent = [m for m in measures if m not in set(metrics["measure"])]
    if absent:
        raise ValueError(f"measures {absent} not in metrics ({sorted(set(metrics['measure']))})")
    dup = metrics.duplicated(["system", "dataset", "query_id", "measure"], keep=False)
    if dup.any():
        raise ValueError(f"duplicate per-query rows: {metrics.loc[dup].head(3).to_dict('records')}")

    systems = _first_seen(metrics["system"])
    datasets = _first_seen(metrics["dataset"])
    selected = metrics[metrics["measure"].isin(measures)]
    means = selected.groupby(["system", "dataset", "measure"])["value"].mean()
    counts = (
        metrics[metrics["measure"] == primary].groupby(["system", "dataset"])["query_id"].nunique()
    )

    table = pd.DataFrame(index=pd.Index(systems, name="system"))
    for measure in measures:
        name = display_name(measure)
        cols = [f"{name} {d}" for d in datasets]
        for col, d in zip(cols, datasets, strict=True):
            table[col] = [float(means.get((s, d, measure), np.nan)) for s in systems]
        table[f"{name} mean"] = table[cols].mean(axis=1, skipna=False)
    for d in datasets:
        table[f"queries {d}"] = [int(counts.get((s, d), 0)) for s in systems]
        present = {n for n in table[f"queries {d}"] if n > 0}
        if len(present) > 1:
            logger.warning(
                "systems were evaluated on different query counts for %s: %s", d, present
            )
    return table


def _fmt(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


def _markdown(
    table: pd.DataFrame,
    columns: list[str],
    title: str,
    notes: Sequence[str],
    csv_name: str,
    measures: list[str],
) -> str:
    lines = [f"# {title}", ""]
    lines.append("| System | " + " | ".join(columns) + " |")
    lines.append("|---|" + "---:|" * len(columns))
    best = {}
    for col in columns:
        rounded = table[col].round(3)
        best[col] = rounded.max() if rounded.notna().any() else math.nan
    for system, row in table.iterrows():
        cells = []
        for col in columns:
            text = _fmt(row[col])
            if not math.isnan(row[col]) and round(row[col], 3) == best[col]:
                text = f"**{text}**"
            cells.append(text)
        name = str(system).replace("|", "\\|")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    mean_note = "mean: arithmetic mean of the per-dataset means (not pooled over queries)."
    for note in [*notes, mean_note]:
        lines.append(f"- {note}")
    lines.append("")
    names = ", ".join(display_name(m) for m in measures)
    lines.append(
        f"All measures ({names}) per dataset, their means and the query counts are in `{csv_name}`."
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
    md_path: str | os.PathLike[str],
    csv_path: str | os.PathLike[str],
    png_path: str | os.PathLike[str],
    title: str,
    notes: Sequence[str] = (),
    *,
    primary: str = "nDCG@10",
    measures: Sequence[str] = DEFAULT_MEASURES,
) -> pd.DataFrame:
    """Write the model zoo as CSV (all measures), Markdown and PNG (primary measure only).

    Returns the full table. Each file is written atomically.
    """
    table = model_zoo_table(metrics, primary=primary, measures=measures)
    name = display_name(primary)
    datasets = _first_seen(metrics["dataset"])
    columns = [f"{name} {d}" for d in datasets] + [f"{name} mean"]
    ordered = _ordered_measures(primary, measures)

    with atomic_output(csv_path) as tmp:
        table.to_csv(tmp, float_format="%.4f")
    with atomic_output(md_path) as tmp:
        text = _markdown(table, columns, title, notes, Path(csv_path).name, ordered)
        tmp.write_text(text, encoding="utf-8")
    fig = _bar_chart(table, columns, title, name)
    with atomic_output(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return table
