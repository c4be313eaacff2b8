"""The report's plots: bars per system, per-query scatter against the baseline, training
loss curves and per-job runtime and memory. Each function returns a matplotlib Figure
(no pyplot state), which :func:`save_png` writes atomically."""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rank_distillm.data.atomic import atomic_output
from rank_distillm.report.table_formats import DisplayTable, fmt

LOSS_COLUMNS = ("step", "loss")


def save_png(fig: Figure, path: str | os.PathLike[str], dpi: int = 110) -> None:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")


def bar_chart(table: DisplayTable) -> Figure:
    """One group of horizontal bars per system, a bar per column, labelled with the value
    and its significance marker."""
    systems = list(table.rows)
    n_groups = len(table.columns)
    height = 0.8 / max(n_groups, 1)
    fig = Figure(figsize=(8, 1.0 + 0.3 * n_groups * len(systems) + 0.3 * len(systems)))
    ax = fig.add_subplot()
    y = np.arange(len(systems))
    for j, column in enumerate(table.headers):
        values = table.values[:, j].astype(float)
        bars = ax.barh(y + (j - (n_groups - 1) / 2) * height, values, height, label=column)
        labels = [
            "" if math.isnan(v) else fmt(v) + table.marker(i, j) for i, v in enumerate(values)
        ]
        ax.bar_label(bars, labels=labels, padding=2, fontsize=8)
    shown = table.values.astype(float)
    top = float(np.nanmax(shown)) if np.isfinite(shown).any() else 1.0
    ax.set_xlim(0, max(top, 1e-9) * 1.18)
    ax.set_yticks(y, systems)
    ax.invert_yaxis()  # first system on top, as in the table
    ax.set_xlabel(table.measure)
    ax.set_ylabel("System")
    ax.set_title(table.title)
    ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=min(n_groups, 4), frameon=False
    )
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    return fig


@dataclass(frozen=True)
class Comparison:
    """One column of a per-query scatter: the system's and the baseline's per-query values
    (indexed by query id) and the test's marker and Holm-adjusted p-value."""

    column: str
    values: pd.Series
    baseline: pd.Series
    marker: str = ""
    p_holm: float = math.nan


def per_query_scatter(
    comparisons: Sequence[Comparison], system: str, baseline: str, measure: str
) -> Figure:
    """Per column, each query as a point (baseline value, system value); points above the
    diagonal are queries the system does better on."""
    if not comparisons:
        raise ValueError(f"no column where {system!r} and {baseline!r} both have values")
    n = len(comparisons)
    fig = Figure(figsize=(3.6 * n, 4.0), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, comparison in zip(axes, comparisons, strict=True):
        x = comparison.baseline.reindex(comparison.values.index).to_numpy(dtype=float)
        y = comparison.values.to_numpy(dtype=float)
        better, worse = int((y > x).sum()), int((y < x).sum())
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--")
        ax.scatter(x, y, s=14, alpha=0.7, edgecolors="none")
        ax.set_xlim(-0.03, 1.03)
        ax.set_ylim(-0.03, 1.03)
        ax.set_aspect("equal")
        ax.set_xlabel(textwrap.fill(f"{baseline} ({measure})", 40))
        p = "" if math.isnan(comparison.p_holm) else f", p_Holm = {comparison.p_holm:.2g}"
        ax.set_title(
            f"{comparison.column}\n{fmt(float(np.mean(y)))}{comparison.marker} vs "
            f"{fmt(float(np.mean(x)))}{p}",
            fontsize=9,
        )
        ax.text(
            0.98,
            0.02,
            f"better on {better}, worse on {worse}, tied on {len(y) - better - worse}",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
        )
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(textwrap.fill(f"{system} ({measure})", 40))
    fig.suptitle(textwrap.fill(f"{system} vs {baseline}: {measure} per query", 90), fontsize=10)
    return fig


def read_loss(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A training loss CSV (columns step, epoch, loss, learning_rate, seconds; at least
    step and loss), checked."""
    frame = pd.read_csv(path)
    missing = [c for c in LOSS_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; found {list(frame.columns)}")
    if frame.empty:
        raise ValueError(f"{path}: no optimizer steps")
    for column in ("step", "loss"):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna()
        if bad.any():
            line = int(bad.to_numpy().argmax()) + 2
            value = frame[column][bad].iloc[0]
            raise ValueError(f"{path}:{line}: {column} {value!r} is not a number")
        frame[column] = values
    return frame


def loss_curve(loss: pd.DataFrame, title: str) -> Figure:
    """The loss of every optimizer step, its moving average, epoch boundaries and (on a
    second axis) the learning rate."""
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.add_subplot()
    window = max(1, len(loss) // 50)
    ax.plot(loss["step"], loss["loss"], linewidth=0.6, alpha=0.35, label="loss per step")
    smooth = loss["loss"].rolling(window, min_periods=1).mean()
    ax.plot(loss["step"], smooth, linewidth=1.6, label=f"moving mean ({window} steps)")
    if "epoch" in loss.columns and loss["epoch"].nunique() > 1:
        starts = loss.groupby("epoch")["step"].min().iloc[1:]
        for step in starts:
            ax.axvline(step, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if "learning_rate" in loss.columns:
        lr = ax.twinx()
        lr.plot(loss["step"], loss["learning_rate"], color="tab:green", linewidth=1.0)
        lr.set_ylabel("learning rate", color="tab:green")
        lr.tick_params(axis="y", colors="tab:green")
        handles.append(lr.lines[0])
        labels.append("learning rate")
    ax.legend(
        handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncols=3, frameon=False
    )
    ax.set_title(title, fontsize=10)
    return fig


def benchmark_chart(benchmarks: pd.DataFrame) -> Figure:
    """Wall-clock seconds and peak resident memory (MB) per job (``job``, ``s``,
    ``max_rss`` columns, as Snakemake's benchmark files have them)."""
    jobs = list(benchmarks["job"])
    fig = Figure(figsize=(10, 1.2 + 0.25 * len(jobs)), layout="constrained")
    time_ax, memory_ax = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(jobs))
    time_ax.barh(y, benchmarks["s"].to_numpy(dtype=float), color="tab:blue")
    time_ax.set_xlabel("wall-clock time (s)")
    time_ax.set_yticks(y, jobs, fontsize=7)
    time_ax.invert_yaxis()
    memory = pd.to_numeric(benchmarks["max_rss"], errors="coerce").to_numpy(dtype=float)
    memory_ax.barh(y, np.nan_to_num(memory), color="tab:orange")
    memory_ax.set_xlabel("peak resident memory (MB)")
    for ax in (time_ax, memory_ax):
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    fig.suptitle("Runtime and memory per job (Snakemake benchmark files)", fontsize=10)
    return fig
