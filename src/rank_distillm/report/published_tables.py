"""The paper's tables regenerated from the authors' published runs, with their notebook's
evaluation rules as a preset, each beside the figures the notebook printed.

The preset: per table, only the queries that every compared run contains
(``significance.restrict_queries``, rule ``intersection``); every row tested against
``monoelectra-base-dual-rank-distillm-colbert`` with paired two-sided t-tests,
Holm-corrected over the rows per column (``significance.paired_tests``; the sub-sampling
tables have no test); TIREx per corpus group (the group's tasks concatenated without
prefixing query ids, ``published_eval``), then the arithmetic and geometric mean over the
13 groups. Written: the TREC DL table, the TIREx table, the loss table, the two
sub-sampling tables (Markdown, CSV, LaTeX), the paper's figure, and ``comparison.csv``
with every printed cell against ours.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rank_distillm.data.atomic import atomic_output, atomic_write_text
from rank_distillm.data.download import read_checksum_file
from rank_distillm.data.paper_tables import MEANS, Table
from rank_distillm.data.published import IDS_MAPPED, PublishedSpec
from rank_distillm.evaluation import measures as evaluate
from rank_distillm.evaluation import significance, tirex
from rank_distillm.report import table_formats
from rank_distillm.report.plots import save_png

LOGGER = logging.getLogger(__name__)
MEASURE = "nDCG@10"
RULE = "intersection"
MAPPED_COLUMNS = ("cranfield, ids mapped", "AM, ids mapped", "GM, ids mapped")


@dataclass
class Cells:
    """One table's figures: ``values``, ``markers`` (▲/▼ where significant), Holm ``p`` and
    ``queries`` per (row, column), rows and columns by key."""

    rows: list[str]
    columns: list[str]
    values: np.ndarray
    markers: list[list[str]]
    p: np.ndarray
    queries: np.ndarray
    notes: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls, rows: Sequence[str], columns: Sequence[str]) -> Cells:
        shape = (len(rows), len(columns))
        return cls(
            list(rows),
            list(columns),
            np.full(shape, np.nan),
            [[""] * shape[1] for _ in rows],
            np.full(shape, np.nan),
            np.zeros(shape, dtype=int),
        )

    def get(self, row: str, column: str) -> tuple[float, str]:
        i, j = self.rows.index(row), self.columns.index(column)
        return float(self.values[i, j]), self.markers[i][j]


def read_metrics(files: Mapping[tuple[str, str], str]) -> pd.DataFrame:
    """Per-query metrics of (row, column) -> file, as one frame with ``row`` and ``column``."""
    frames = [
        evaluate.read_per_query(path).assign(row=row, column=column)
        for (row, column), path in files.items()
    ]
    frame = pd.concat(frames, ignore_index=True)
    return frame[frame["measure"] == MEASURE]


def compare(metrics: pd.DataFrame, rows: Sequence[str], baseline: str | None) -> Cells:
    """Means over the queries every row's run contains, per column, and (with a baseline)
    Holm-corrected paired t-tests of every row against it."""
    columns = list(dict.fromkeys(metrics["column"]))
    kept = significance.restrict_queries(metrics, RULE, ("column",))
    cells = Cells.empty(rows, columns)
    means = kept.groupby(["row", "column"])["value"].agg(["mean", "count"])
    for (row, column), found in means.iterrows():
        i, j = cells.rows.index(row), cells.columns.index(column)
        cells.values[i, j], cells.queries[i, j] = found["mean"], found["count"]
    if baseline is not None:
        settings = significance.Settings(baseline=baseline, rule=RULE)
        tests = significance.paired_tests(kept, settings, cell=("column",))
        for test in tests.itertuples():
            i, j = cells.rows.index(test.row), cells.columns.index(test.column)
            cells.markers[i][j], cells.p[i, j] = test.marker, test.p_holm
    return cells


# --------------------------------------------------------------------------- the tables


def trec_dl_cells(spec: PublishedSpec, table: Table) -> Cells:
    """A table of TREC DL columns (``<first stage>/<set>``): the TREC DL and loss tables."""
    files = {}
    for column in table.columns:
        stage, split = column.split("/")
        dataset = spec.paper.trec_dl[split][0]
        files.update({(s, column): spec.metrics_file(s, stage, dataset) for s in table.rows})
    return compare(read_metrics(files), table.rows, spec.paper.baseline)


def tirex_cells(spec: PublishedSpec, table: Table) -> Cells:
    """Per group, then AM and GM over the groups; with the Cranfield ids mapped, three more
    columns (its group, AM and GM)."""
    rows, groups = list(table.rows), list(spec.groups())
    files = {(s, g): spec.group_metrics_file(s, g) for g in groups for s in rows}
    cells = compare(read_metrics(files), rows, spec.paper.baseline)
    _add_means(cells, groups, "")
    if spec.cranfield_mapped():
        mapped = _mapped_cranfield(spec, rows)
        cells = _joined(cells, mapped, MAPPED_COLUMNS[0])
        swapped = [MAPPED_COLUMNS[0] if g == "cranfield" else g for g in groups]
        _add_means(cells, swapped, ", ids mapped")
    return cells


def _mapped_cranfield(spec: PublishedSpec, rows: Sequence[str]) -> Cells:
    files = {(s, "cranfield"): spec.group_metrics_file(s, "cranfield", IDS_MAPPED) for s in rows}
    metrics = read_metrics(files)
    if metrics.empty or metrics.groupby("row").size().size < len(rows):
        cells = Cells.empty(rows, ["cranfield"])
        cells.notes.append("The Cranfield runs' query ids are no cran.qry .I numbers: no mapping.")
        return cells
    return compare(metrics, rows, spec.paper.baseline)


def _joined(cells: Cells, other: Cells, label: str) -> Cells:
    """``cells`` with ``other``'s one column appended under ``label``."""
    return Cells(
        cells.rows,
        [*cells.columns, label],
        np.hstack([cells.values, other.values]),
        [a + b for a, b in zip(cells.markers, other.markers, strict=True)],
        np.hstack([cells.p, other.p]),
        np.hstack([cells.queries, other.queries]),
        cells.notes + other.notes,
    )


def _add_means(cells: Cells, groups: Sequence[str], suffix: str) -> None:
    """Append the arithmetic and geometric mean over ``groups`` (as the notebook: over the
    groups' means; no test)."""
    index = [cells.columns.index(g) for g in groups]
    part = cells.values[:, index]
    means = [
        np.array([row.mean() for row in part]),
        np.array([tirex.geometric_mean(row) for row in part]),
    ]
    for name, values in zip(MEANS, means, strict=True):
        cells.columns.append(name + suffix)
        cells.values = np.hstack([cells.values, values[:, None]])
        cells.p = np.hstack([cells.p, np.full((len(cells.rows), 1), np.nan)])
        cells.queries = np.hstack([cells.queries, np.zeros((len(cells.rows), 1), dtype=int)])
        for markers in cells.markers:
            markers.append("")


def subsampling_cells(spec: PublishedSpec) -> dict[str, Cells]:
    """The two sub-sampling tables: first stages x points, each the mean of its system's
    DL19 and DL20 nDCG@10 over the queries all seven systems' runs contain (no test)."""
    systems = spec.paper.subsampling_systems()
    files = {}
    for stage, dataset in spec.trec_dl_pairs():
        column = f"{stage}/{dataset}"
        files.update({(s, column): spec.metrics_file(s, stage, dataset) for s in systems})
    per_pair = compare(read_metrics(files), systems, None)
    found = {}
    for name in ("queries", "depth"):
        table = spec.paper.tables[name]
        stages = list(table.rows)
        cells = Cells.empty(stages, list(table.columns))
        for i, stage in enumerate(stages):
            for j, column in enumerate(table.columns):
                system = table.systems_by_column[column]
                pairs = [c for c in per_pair.columns if c.startswith(f"{stage}/")]
                cells.values[i, j] = np.mean([per_pair.get(system, c)[0] for c in pairs])
        found[name] = cells
    return found


# --------------------------------------------------------------------------- comparison


def comparison(
    name: str, table: Table, cells: Cells, row_labels: Mapping[str, str]
) -> pd.DataFrame:
    """Every printed cell of ``table`` beside ours: the value as printed (NumPy-rounded to
    the printed decimals), the star (a significant test) and whether both agree."""
    lines = []
    for row in table.rows:
        for column in table.columns:
            printed = table.cell(row, column)
            value, marker = cells.get(row, column)
            digits = printed.digits
            shown = "" if math.isnan(value) else f"{np.round(value, digits):.{digits}f}"
            star = bool(marker)
            tested = name not in ("queries", "depth") and column not in MEANS
            lines.append(
                {
                    "table": name,
                    "row": row,
                    "label": row_labels.get(row, row),
                    "column": column,
                    "printed": printed.text,
                    "ours": shown + ("*" if star else ""),
                    "value": value,
                    "value_equal": printed.shows(value),
                    "star_equal": printed.star == star if tested else True,
                }
            )
    frame = pd.DataFrame(lines)
    frame["equal"] = frame["value_equal"] & frame["star_equal"]
    return frame


def agreement_note(found: pd.DataFrame) -> str:
    """One sentence: how many printed cells ours equals, and which it does not."""
    differ = found[~found["equal"]]
    text = (
        f"{len(found) - len(differ)} of {len(found)} cells equal the figures the authors' "
        "notebook printed (rounded as printed, significance marks included)"
    )
    if differ.empty:
        return text + "."
    listed = "; ".join(
        f"{r.label} {r.column}: {r.ours or '–'} (printed {r.printed})"
        for r in differ.head(8).itertuples()
    )
    more = f" and {len(differ) - 8} more" if len(differ) > 8 else ""
    return f"{text}; they differ in {listed}{more} (all in comparison.csv)."


# --------------------------------------------------------------------------- writing


def source_note(spec: PublishedSpec) -> str:
    """Where the runs come from and how the archive is checked."""
    record = f"Zenodo record {spec.record}" if spec.record else "the authors' archive"
    if spec.md5:
        check = f"MD5 {spec.md5} as published"
    else:
        recorded = read_checksum_file(spec.checksum_file)
        check = (
            f"no MD5 is published: checksum recorded on first download ({recorded}, "
            f"`{spec.checksum_file}`) and checked on every use since"
        )
    return (
        f"Runs: the authors' published evaluation runs (`{spec.archive}`, {record}; {check}), "
        "scored with their notebook's rules: nDCG@10 by the runs' scores (ties as "
        "pytrec_eval breaks them), re-rankers of BM25 cut to the first stage's top 100."
    )


def display(
    title: str,
    cells: Cells,
    row_labels: Sequence[str],
    printed: np.ndarray | None,
    notes: Sequence[str],
    groups: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> table_formats.DisplayTable:
    """A DisplayTable of ``cells`` (NumPy-rounded to 3 decimals, as the notebook prints),
    the printed figures as its references."""
    return table_formats.DisplayTable(
        title=title,
        rows=list(row_labels),
        columns=list(columns or cells.columns),
        groups=list(groups) if groups else None,
        values=np.round(cells.values, table_formats.DIGITS),
        markers=cells.markers,
        references=printed,
        notes=list(notes),
        measure=MEASURE,
    )


def printed_matrix(table: Table, cells: Cells) -> np.ndarray:
    """The printed values laid out like ``cells`` (NaN where the paper has none)."""
    found = np.full(cells.values.shape, np.nan)
    for i, row in enumerate(cells.rows):
        for j, column in enumerate(cells.columns):
            if row in table.printed and column in table.columns:
                found[i, j] = table.cell(row, column).value
    return found


def write_table(
    shown: table_formats.DisplayTable, cells: Cells, outputs: Mapping[str, str], label: str
) -> None:
    """Markdown and LaTeX of ``shown``; the CSV of ``cells`` with markers, Holm p-values,
    query counts and the printed figures."""
    csv = pd.DataFrame(index=pd.Index(shown.rows, name="system"))
    csv.insert(0, "key", cells.rows)
    for j, column in enumerate(cells.columns):
        csv[f"{MEASURE} {column}"] = cells.values[:, j]
        csv[f"sig {column}"] = [m[j] for m in cells.markers]
        csv[f"p {column}"] = cells.p[:, j]
        csv[f"queries {column}"] = cells.queries[:, j]
        if shown.references is not None:
            csv[f"paper {column}"] = shown.references[:, j]
    with atomic_output(outputs["csv"]) as tmp:
        csv.to_csv(tmp, float_format="%.12g")
    atomic_write_text(outputs["md"], table_formats.markdown(shown))
    atomic_write_text(outputs["tex"], table_formats.latex(shown, label))


def figure(queries: Cells, depth: Cells, labels: Mapping[str, str]) -> Figure:
    """The paper's figure: nDCG@10 against teacher depth and against teacher queries, one
    line per first stage, two panels sharing the y axis."""
    fig = Figure(figsize=(8 * 0.7, 3 * 0.7 + 0.4))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, cells, xlabel in ((axes[0], depth, "Depth"), (axes[1], queries, "Number of Samples")):
        x = [int(c) for c in cells.columns]
        for i, (stage, marker) in enumerate(zip(cells.rows, "oX", strict=False)):
            ax.plot(x, cells.values[i], label=labels[stage], linewidth=2, marker=marker)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel(MEASURE)
    fig.tight_layout()
    return fig


def _outputs(spec: PublishedSpec, key: str) -> dict[str, str]:
    files = spec.table_files()
    return {ext: files[f"{key}.{ext}"] for ext in ("md", "csv", "tex")}


def _test_note(spec: PublishedSpec, cells: Cells, tirex: bool) -> str:
    settings = significance.Settings(baseline=spec.paper.baseline, rule=RULE)
    tested = [c for c in cells.columns if not c.startswith(MEANS)]
    family = [sum(1 for r in cells.rows if r != settings.baseline)] * len(tested)
    return significance.describe(
        settings,
        spec.paper.systems[settings.baseline],
        family,
        MEASURE,
        per="corpus group (its tasks' queries together)" if tirex else "evaluation set",
        untested="AM and GM are" if tirex else "the sub-sampling tables are",
    )


def _write_system_table(
    spec: PublishedSpec, name: str, key: str, cells: Cells, notes: Sequence[str]
) -> pd.DataFrame:
    """Write one table whose rows are systems; returns its comparison with the printed."""
    table = spec.paper.tables[name]
    labels = spec.paper.systems
    found = comparison(name, table, cells, labels)
    groups = columns = None
    if name != "tirex":
        stages, sets = zip(*(c.split("/") for c in cells.columns), strict=True)
        groups = [spec.paper.first_stages[s] for s in stages]
        columns = [spec.paper.trec_dl[s][1] for s in sets]
    notes = [
        agreement_note(found),
        _test_note(spec, cells, name == "tirex"),
        significance.describe_rule(RULE),
        *notes,
        *cells.notes,
        source_note(spec),
    ]
    _show(spec, key, table, cells, [labels[r] for r in cells.rows], notes, groups, columns)
    return found


def _show(
    spec: PublishedSpec,
    key: str,
    table: Table,
    cells: Cells,
    row_labels: Sequence[str],
    notes: Sequence[str],
    groups: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> None:
    """Write ``cells`` as table ``key`` (Markdown, CSV, LaTeX), the printed figures beside."""
    printed = printed_matrix(table, cells)
    shown = display(table.title, cells, row_labels, printed, notes, groups, columns)
    write_table(shown, cells, _outputs(spec, key), f"tab:published-{key}")


TIREX_NOTES = (
    "A group's value: its tasks' topics, qrels and runs concatenated without prefixing "
    "query ids (the notebook's rule; tasks sharing a query id merge into one query); AM "
    "and GM: arithmetic and geometric mean over the 13 groups.",
    "Cranfield: the notebook prints about 0.01 for every system because the archive's "
    "Cranfield runs number queries by cran.qry's `.I` field (1, 2, 4, 8, ..., 365) while "
    "ir_datasets' qrels number them 1 to 225 in file order, so most queries meet another "
    "query's judgements. The columns marked 'ids mapped' map the runs' ids to ir_datasets' "
    "(`published.map_cranfield_ids`); docs/paper-deviations.md has the details.",
)


def _write_subsampling(spec: PublishedSpec, found: Mapping[str, Cells]) -> list[pd.DataFrame]:
    stages = spec.paper.first_stages
    comparisons = []
    for name, key in (("queries", "subsampling-queries"), ("depth", "subsampling-depth")):
        table, cells = spec.paper.tables[name], found[name]
        compared = comparison(name, table, cells, stages)
        comparisons.append(compared)
        notes = [
            agreement_note(compared),
            "Cells: the mean of DL19 and DL20 nDCG@10 (each over the queries all seven "
            "sub-sampling systems' runs contain); no significance test, as in the paper.",
            source_note(spec),
        ]
        _show(spec, key, table, cells, [stages[s] for s in cells.rows], notes)
    return comparisons


def write_published_tables(spec: PublishedSpec) -> pd.DataFrame:
    """Every table of ``spec.table_files()``, the figure and the comparison; returns the
    comparison (one line per printed cell)."""
    paper = spec.paper
    found = [
        _write_system_table(spec, name, key, trec_dl_cells(spec, paper.tables[name]), [])
        for name, key in (("trec_dl", "trec-dl"), ("loss", "loss"))
    ]
    if spec.tirex:
        cells = tirex_cells(spec, paper.tables["tirex"])
        found.append(_write_system_table(spec, "tirex", "tirex", cells, TIREX_NOTES))
    subsampling = subsampling_cells(spec)
    found += _write_subsampling(spec, subsampling)
    files = spec.table_files()
    plot = figure(subsampling["queries"], subsampling["depth"], paper.first_stages)
    save_png(plot, files["figure"])
    compared = pd.concat(found, ignore_index=True)
    with atomic_output(files["comparison"]) as tmp:
        compared.to_csv(tmp, index=False, float_format="%.6g")
    LOGGER.info(agreement_note(compared))
    return compared
