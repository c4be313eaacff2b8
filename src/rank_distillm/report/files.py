"""The report stage's file-in/file-out steps: tables, plots, runtime summary, environment.

:class:`ReportSpec` says which files the report reads and writes (built from the
experiment by :func:`rank_distillm.report_plan.report_spec`), so the Snakemake rules, the
``tables`` target (which rebuilds tables and plots from existing metrics without ever
scheduling upstream jobs) and tests share one source.
"""

from __future__ import annotations

import html
import importlib.metadata
import logging
import platform
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml
from tqdm import tqdm

from rank_distillm.config.plain import plain
from rank_distillm.data import trec as trec_io
from rank_distillm.data.atomic import atomic_write_text
from rank_distillm.evaluation import measures as evaluate
from rank_distillm.evaluation import reproduction, significance
from rank_distillm.report import model_zoo as report
from rank_distillm.report import plots as report_plots

if TYPE_CHECKING:
    pass

LOGGER = logging.getLogger(__name__)
PACKAGE = "rank-distillm"


@dataclass(frozen=True)
class Cell:
    """One table cell: a row's run on one (first stage, evaluation set) pair. Also the
    authors' published run a row is compared with (``label``: their system; ``split``: a
    TIREx task's id for TIREx)."""

    row: str
    label: str
    first_stage: str
    split: str
    metrics: str


@dataclass(frozen=True)
class TirexCell:
    """A row's run of one TIREx task: its per-query metrics and the run itself (the
    intersection rule reads which queries the run contains)."""

    row: str
    label: str
    task: str
    metrics: str
    run: str


@dataclass(frozen=True)
class TirexSpec:
    """The TIREx table: its cells, task selection, query rule and files."""

    cells: tuple[TirexCell, ...]
    selection: Any  # rank_distillm.evaluation.tirex.Selection
    rule: str
    first_stage: str | None
    title: str
    outputs: Mapping[str, str]
    published: tuple[Cell, ...] = ()  # the authors' runs the rows' tasks are compared with

    def metrics_files(self) -> list[str]:
        return sorted({c.metrics for c in (*self.cells, *self.published)})


@dataclass(frozen=True)
class LossPlot:
    model: str
    label: str
    loss: str
    png: str


@dataclass(frozen=True)
class ReportSpec:
    """Everything the report stage reads and writes for one experiment."""

    root: str
    cells: tuple[Cell, ...]
    first_stages: Mapping[str, str]
    evaluation: Mapping[str, str]
    relevance_levels: Mapping[str, int]
    references: Mapping[str, Any]
    title: str
    notes: tuple[str, ...]
    measures: tuple[str, ...]
    settings: significance.Settings
    latex_label: str
    zoo: report.Outputs
    per_query: Mapping[str, str]  # row key -> scatter PNG (rows compared with the baseline)
    rows: tuple[tuple[str, str], ...] = ()  # (key, label) of every row, in order
    losses: Mapping[str, LossPlot] = field(default_factory=dict)
    tirex: TirexSpec | None = None
    published: tuple[Cell, ...] = ()  # the authors' runs the rows' cells are compared with

    def metrics_files(self) -> list[str]:
        """Every metrics file the tables read (model zoo and TIREx, the authors' runs
        compared with the rows included)."""
        tirex = self.tirex.metrics_files() if self.tirex else []
        return sorted({*(c.metrics for c in (*self.cells, *self.published)), *tirex})

    def zoo_files(self) -> dict[str, str]:
        return {kind: str(path) for kind, path in asdict(self.zoo).items()}

    def pages(self) -> dict[str, str]:
        """The report's own files: runtime summary and environment."""
        folder = f"{self.root}/report"
        return {
            "benchmarks_html": f"{folder}/benchmarks.html",
            "benchmarks_png": f"{folder}/benchmarks.png",
            "environment_html": f"{folder}/environment.html",
            "config": f"{folder}/config.yaml",
        }

    def plots(self) -> list[str]:
        return [*self.per_query.values(), *(plot.png for plot in self.losses.values())]

    def tables(self) -> list[str]:
        """The table files (model zoo, TIREx) with the model zoo's bar chart and the TIREx
        chart."""
        tirex = list(self.tirex.outputs.values()) if self.tirex else []
        return [*self.zoo_files().values(), *tirex]

    def targets(self) -> list[str]:
        """Every file of the report (what `rule all` asks for)."""
        return [*self.tables(), *self.plots(), *self.pages().values()]

    def benchmark_folders(self) -> list[str]:
        """Where jobs write benchmark files (downloads are shared by experiments)."""
        return [f"{self.root}/benchmarks", "resources/benchmarks"]

    def label(self, row: str) -> str:
        return dict(self.rows).get(row) or next((c.label for c in self.cells if c.row == row), row)


def loss_png(root: str, model: str) -> str:
    return f"{root}/plots/loss/{model}.png"


# --------------------------------------------------------------------------- reading


def missing_metrics(spec: ReportSpec) -> list[str]:
    return [path for path in spec.metrics_files() if not Path(path).is_file()]


def read_cells(cells: Sequence[Cell], need_in_run: bool = False) -> pd.DataFrame:
    """The per-query metrics of every cell, with row, system (label), first_stage and
    dataset (split) columns; ``in_run`` where the files have it (required by
    ``need_in_run``; a file without it is named in the error)."""
    frames = []
    for cell in tqdm(cells, desc="metrics files", unit="file", disable=len(cells) < 20):
        frame = evaluate.read_per_query(cell.metrics)
        if need_in_run and evaluate.IN_RUN not in frame.columns:
            raise ValueError(
                f"{cell.metrics}: no {evaluate.IN_RUN!r} column, which the intersection query "
                "rule needs (the file predates it); delete it and re-run its evaluate job"
            )
        frames.append(
            frame.assign(
                row=cell.row, system=cell.label, first_stage=cell.first_stage, dataset=cell.split
            )
        )
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- steps


def tirex_aggregates(tirex_spec: TirexSpec) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """The TIREx aggregates (``tirex.aggregate``; systems named by row key) and the
    per-query metrics the query rule keeps (the intersection rule reads each run's
    queries), for the tests."""
    from rank_distillm.evaluation import tirex

    metrics = pd.concat(
        [
            evaluate.read_per_query(cell.metrics).assign(system=cell.row, task=cell.task)
            for cell in tirex_spec.cells
        ],
        ignore_index=True,
    )
    run_queries = None
    kept = metrics
    if tirex_spec.rule == "intersection":
        run_queries = pd.DataFrame(
            [
                (cell.row, cell.task, query_id)
                for cell in tirex_spec.cells
                for query_id in trec_io.run_query_ids(cell.run)
            ],
            columns=list(tirex.RUN_QUERY_COLUMNS),
        )
        kept = tirex.restrict_to_common_queries(metrics, run_queries)
    aggregates = tirex.aggregate(metrics, tirex_spec.selection, tirex_spec.rule, run_queries)
    return aggregates, kept


def grouped(frame: pd.DataFrame, selection: Any, task: str = "task") -> pd.DataFrame:
    """Per-query values of TIREx tasks (``task``: the column with the task id) as their
    corpus group's, as the TIREx table groups them: ``group`` added, query ids made unique
    per task (``<task>/<query id>``), so tasks sharing a query id never merge."""
    group_of = {t.id: t.group for t in selection.used}
    return frame.assign(
        group=frame[task].map(group_of), query_id=frame[task] + "/" + frame["query_id"]
    )


def tirex_group_tests(
    kept: pd.DataFrame, selection: Any, settings: significance.Settings, measure: str = "nDCG@10"
) -> pd.DataFrame:
    """Per corpus group, every system against the baseline over the group's concatenated
    queries (query ids made unique per task), Holm-corrected over the systems."""
    frame = grouped(kept[kept["measure"] == measure], selection)
    return significance.paired_tests(frame.rename(columns={"system": "row"}), settings, ("group",))


def tirex_published_tests(spec: ReportSpec) -> pd.DataFrame | None:
    """Per corpus group, each row that has the authors' runs of its system against those,
    both grouped as the TIREx table groups (``grouped``), over the judged queries both
    runs contain (``reproduction.tests``); ``system`` is our row's label. None without."""
    tirex = spec.tirex
    if tirex is None or not tirex.published:
        return None
    compared = {cell.row for cell in tirex.published}
    ours = [
        Cell(c.row, c.label, tirex.first_stage or "", c.task, c.metrics)
        for c in tirex.cells
        if c.row in compared
    ]
    ours_frame, theirs_frame = (
        grouped(read_cells(cells, need_in_run=True), tirex.selection, "dataset")
        for cells in (ours, tirex.published)
    )
    found = reproduction.tests(ours_frame, theirs_frame, ("group",), spec.settings.alpha)
    return found.assign(system=found["row"].map(spec.label))


def tirex_references(spec: ReportSpec) -> dict[str, dict[str, float]]:
    """The paper's TIREx figures per row label and TIREx table column (a corpus group,
    the mean over groups, the geometric mean): ``tirex:<group>``, ``tirex`` and
    ``tirex:geomean`` references of the TIREx first stage."""
    from rank_distillm.report import references
    from rank_distillm.report import tirex_tables as tirex_report

    assert spec.tirex is not None
    columns = {
        **references.tirex_keys(spec.tirex.selection.groups()),
        references.TIREX: tirex_report.AGGREGATE_COLUMNS["groups_mean"],
        references.TIREX_GEOMEAN: tirex_report.AGGREGATE_COLUMNS["groups_geomean"],
    }
    found = {}
    for row, label in spec.rows:
        given = spec.references.get(row, {}).get(spec.tirex.first_stage or "", {})
        figures = {columns[key]: value for key, value in given.items() if key in columns}
        if figures:
            found[label] = figures
    return found


TIREX_PUBLISHED_PER = (
    "corpus group, grouped as this table groups: our tasks' queries and the authors' runs "
    "of the same tasks, query ids prefixed by the task, not their notebook's unprefixed "
    "concatenation; Cranfield's authors' run with its query ids mapped to ir_datasets' "
    "where `published.map_cranfield_ids`"
)


def write_tirex_files(spec: ReportSpec) -> pd.DataFrame:
    """The TIREx tables (md, csv, tex, html; per task; the tests) and the per-group chart;
    rows labelled as in the model zoo, groups tested against the baseline."""
    from rank_distillm.report import tirex_tables as tirex_report

    assert spec.tirex is not None
    aggregates, kept = tirex_aggregates(spec.tirex)
    tests = tirex_group_tests(kept, spec.tirex.selection, spec.settings)
    labels = {cell.row: cell.label for cell in spec.tirex.cells}
    for frame in aggregates.values():
        frame["system"] = frame["system"].map(labels)
    tests.insert(tests.columns.get_loc("row"), "system", tests["row"].map(labels))
    baseline = spec.label(spec.settings.baseline)
    published = tirex_published_tests(spec)
    return tirex_report.write_tirex_tables(
        aggregates,
        spec.tirex.selection,
        spec.tirex.rule,
        spec.tirex.outputs,
        spec.tirex.title,
        references=tirex_references(spec),
        rows=[label for _, label in spec.rows],
        tests=tests,
        tests_note=significance.describe(
            spec.settings,
            baseline,
            list(tests.groupby("group").size()),
            "nDCG@10",
            per="corpus group (its tasks' queries together)",
            untested="the aggregates over groups are",
        ),
        published=published,
        published_note=None
        if published is None or published.empty
        else reproduction.note(published, ("group",), TIREX_PUBLISHED_PER, spec.settings.alpha),
    )


def write_model_zoo_files(spec: ReportSpec) -> pd.DataFrame:
    """The model zoo, with the TIREx column (the mean over corpus groups) where the
    experiment has TIREx tasks."""
    from rank_distillm.report import tirex_tables as tirex_report

    notes = list(spec.notes)
    tirex = None
    if spec.tirex is not None:
        aggregates, _ = tirex_aggregates(spec.tirex)
        tirex = tirex_report.overall_figure(aggregates)
        notes.append(
            "TIREx column: nDCG@10, the arithmetic mean over corpus groups (per group, with "
            f"tests: tirex.md; not tested here); "
            f"{spec.tirex.selection.note().removeprefix('TIREx: ')}"
        )
    metrics = read_cells(spec.cells, need_in_run=spec.settings.rule == "intersection")
    published = None
    if spec.published:
        cell = ("first_stage", "dataset")
        theirs = read_cells(spec.published, need_in_run=True)
        published = reproduction.tests(metrics, theirs, cell, spec.settings.alpha)
    return report.write_model_zoo(
        metrics,
        spec.zoo,
        first_stages=spec.first_stages,
        evaluation=spec.evaluation,
        title=spec.title,
        notes=[*notes, *evaluate.relevance_notes(list(spec.measures), spec.relevance_levels)],
        references=spec.references,
        tirex=tirex,
        tirex_stage=spec.tirex.first_stage if spec.tirex else None,
        rows=list(spec.rows) or None,
        measures=list(spec.measures),
        settings=spec.settings,
        latex_label=spec.latex_label,
        published=published,
    )


def write_per_query_plots(spec: ReportSpec, primary: str = "nDCG@10") -> None:
    """A scatter of each compared row against the baseline, one panel per evaluation set,
    over the queries the query rule keeps; markers and p-values from the tests file."""
    if not spec.per_query:
        return
    needed = {spec.settings.baseline, *spec.per_query}
    metrics = read_cells(
        [c for c in spec.cells if c.row in needed],
        need_in_run=spec.settings.rule == "intersection",
    )
    metrics = significance.restrict_queries(
        metrics[metrics["measure"] == primary], spec.settings.rule, ("first_stage", "dataset")
    )
    tests = pd.read_csv(spec.zoo.tests, dtype={"row": str, "marker": str}, keep_default_na=False)
    tests = tests[(tests["measure"] == primary) & (tests["baseline"] == spec.settings.baseline)]
    tests = tests.set_index(["row", "first_stage", "dataset"])
    baseline = spec.settings.baseline
    several = len(spec.first_stages) > 1
    for row, png in tqdm(spec.per_query.items(), desc="per-query plots", unit="plot"):
        comparisons = []
        for stage, stage_label in spec.first_stages.items():
            for split, split_label in spec.evaluation.items():
                cell = metrics[(metrics["first_stage"] == stage) & (metrics["dataset"] == split)]
                values = cell[cell["row"] == row].set_index("query_id")["value"]
                base = cell[cell["row"] == baseline].set_index("query_id")["value"]
                if values.empty or base.empty:
                    continue
                key = (row, stage, split)
                test = tests.loc[key] if key in tests.index else None
                comparisons.append(
                    report_plots.Comparison(
                        column=f"{stage_label} {split_label}" if several else split_label,
                        values=values,
                        baseline=base,
                        marker="" if test is None else str(test["marker"]),
                        p_holm=float("nan") if test is None else float(test["p_holm"] or "nan"),
                    )
                )
        figure = report_plots.per_query_scatter(
            comparisons, spec.label(row), spec.label(baseline), evaluate.display_name(primary)
        )
        report_plots.save_png(figure, png)


def write_loss_plot(loss_csv: str | Path, png: str | Path, label: str) -> None:
    loss = report_plots.read_loss(loss_csv)
    report_plots.save_png(report_plots.loss_curve(loss, f"Training loss: {label}"), png)


def read_benchmarks(folders: Sequence[str | Path]) -> pd.DataFrame:
    """Every Snakemake benchmark file below ``folders`` (one line per file; the mean when
    a job was benchmarked several times), with ``job`` = its path below the folder."""
    rows = []
    for folder in folders:
        for path in sorted(Path(folder).rglob("*.tsv")):
            frame = pd.read_csv(path, sep="\t")
            if "s" not in frame.columns or frame.empty:
                raise ValueError(f"{path}: not a Snakemake benchmark file (no 's' column)")
            numeric = frame.drop(columns=["h:m:s"], errors="ignore").apply(
                pd.to_numeric, errors="coerce"
            )
            rows.append(
                {"job": str(path.relative_to(folder).with_suffix("")), **numeric.mean().to_dict()}
            )
    return pd.DataFrame(rows)


def write_benchmark_summary(
    folders: Sequence[str | Path], html_path: str | Path, png: str | Path
) -> pd.DataFrame:
    """A table (HTML) and chart (PNG) of each job's runtime and peak memory."""
    table = read_benchmarks(folders)
    if table.empty:
        raise ValueError(f"no benchmark files below {', '.join(map(str, folders))}")
    LOGGER.info("%d benchmark files", len(table))
    columns = [c for c in ("job", "s", "max_rss", "max_uss", "cpu_time", "mean_load") if c in table]
    shown = table[columns].rename(
        columns={
            "s": "wall-clock s",
            "max_rss": "peak RSS (MB)",
            "max_uss": "peak USS (MB)",
            "cpu_time": "CPU s",
            "mean_load": "mean CPU load (%)",
        }
    )
    body = shown.to_html(index=False, float_format=lambda v: f"{v:,.1f}", na_rep="–")
    total = float(table["s"].sum())
    atomic_write_text(
        html_path,
        _page(
            "Runtime and memory per job",
            f"<p>{len(table)} jobs, {total:,.0f} s of wall-clock time in all (jobs may have "
            "run in parallel). From Snakemake's <code>benchmark:</code> files; memory is "
            "the peak of the job's processes.</p>" + body,
        ),
    )
    report_plots.save_png(report_plots.benchmark_chart(table), png)
    return table


def matches_pin(installed: str, pinned: str) -> bool:
    """Whether ``installed`` satisfies ``==pinned``: as in PEP 440, a local version label
    (torch's ``2.13.0+cpu``) is ignored where the pin has none."""
    return installed == pinned or ("+" not in pinned and installed.split("+")[0] == pinned)


def package_versions(package: str = PACKAGE) -> pd.DataFrame:
    """The pinned dependencies of ``package`` with the version installed, flagging any
    that differ from the pin."""
    rows = []
    requirements = importlib.metadata.requires(package) or []
    pins = {}
    for requirement in requirements:
        if "extra ==" in requirement:
            continue
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:==\s*([^;\s]+))?", requirement)
        if match:
            pins[match.group(1)] = match.group(2) or ""
    for name, pinned in pins.items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = "not installed"
        matches = "yes" if matches_pin(installed, pinned) else "NO"
        rows.append(
            {
                "package": name,
                "pinned": pinned or "–",
                "installed": installed,
                "matches pin": matches if pinned else "",
            }
        )
    return pd.DataFrame(rows)


def write_environment(
    config: Mapping[str, Any], html_path: str | Path, config_path: str | Path
) -> None:
    """The config as the workflow used it (defaults filled in, overrides applied) as YAML,
    and an HTML page with it and the package versions."""
    text = yaml.safe_dump(plain(config), sort_keys=False, allow_unicode=True)
    atomic_write_text(config_path, text)
    versions = package_versions()
    mismatched = versions[versions["matches pin"] == "NO"]["package"].tolist()
    if mismatched:
        LOGGER.warning("installed versions differ from the pins: %s", ", ".join(mismatched))
    system = (
        f"<p>Python {html.escape(sys.version.split()[0])} on "
        f"{html.escape(platform.platform())}.</p>"
    )
    atomic_write_text(
        html_path,
        _page(
            "Configuration and software",
            "<h2>Package versions</h2>"
            + system
            + versions.to_html(index=False)
            + "<h2>Configuration used</h2><p>Schema defaults filled in, command-line "
            "overrides applied.</p><pre>" + html.escape(text) + "</pre>",
        ),
    )


def _page(title: str, body: str) -> str:
    style = (
        "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
        "table{border-collapse:collapse}th,td{padding:.25em .7em;border-bottom:1px solid #ccc;"
        "text-align:right}th:first-child,td:first-child{text-align:left}"
        "pre{background:#f6f6f6;padding:1em;overflow:auto}"
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>'
        f"{html.escape(title)}</title><style>{style}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


# --------------------------------------------------------------------------- tables target


class MissingMetricsError(FileNotFoundError):
    """A metrics file that the tables need does not exist (the tables target never runs
    upstream jobs)."""


def rebuild_tables(spec: ReportSpec) -> None:
    """Rebuild the tables and plots from the per-query metrics on disk, never anything
    upstream. Every missing metrics file is named; a missing loss file skips (and logs)
    that model's loss curve."""
    missing = missing_metrics(spec)
    if missing:
        listed = "\n  ".join(missing)
        raise MissingMetricsError(
            f"{len(missing)} of {len(spec.metrics_files())} metrics files the "
            f"tables need are missing (the tables target never trains, re-ranks or "
            f"evaluates):\n  {listed}\nMake them with `snakemake --cores all` (everything) or "
            f"`snakemake --cores all <file>` (one cell), then run the tables target again."
        )
    write_model_zoo_files(spec)
    if spec.tirex is not None:
        write_tirex_files(spec)
    LOGGER.info("tables written: %s", ", ".join(spec.tables()))
    write_per_query_plots(spec)
    skipped = []
    for plot in spec.losses.values():
        if not Path(plot.loss).is_file():
            skipped.append(plot.loss)
            continue
        write_loss_plot(plot.loss, plot.png, plot.label)
    if skipped:
        LOGGER.warning(
            "%d loss curves skipped, their loss files are missing: %s",
            len(skipped),
            ", ".join(skipped),
        )
    LOGGER.info(
        "plots written: %d per-query, %d loss curves",
        len(spec.per_query),
        len(spec.losses) - len(skipped),
    )
