"""Ours against theirs, per query: is a trained model reproduced?

A table row that config ``paper_systems`` maps to one of the authors' systems is tested,
per table column (an evaluation set of a first stage in the model zoo, a corpus group in
the TIREx table), against that system's published run: a paired two-sided t-test over
the judged queries both runs contain, Holm-corrected over the rows compared in that
column (``significance.paired_tests`` with each row against its own run). "Reproduced"
means no significant difference. Our runs are scored in rank order, the authors' by
their scores, as their notebook scores them (``published_eval``).

The tables show the authors' run's figure (over the paired queries) after ``≈``
(reproduced) or ``≠`` (a significant difference); the CSVs hold it as ``published
<column>`` with ``published queries``, ``p published`` (Holm) and ``reproduced`` (yes/no,
empty where untested).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from rank_distillm.evaluation import significance

MEASURE = "nDCG@10"
REPRODUCED, DIFFERENT = "≈", "≠"
_THEIRS = "published:"  # the row key of a row's published run inside the compared frame
Key = tuple  # (row, *the column's cell values)


def tests(
    ours: pd.DataFrame,
    theirs: pd.DataFrame,
    cell: Sequence[str],
    alpha: float = 0.05,
    measure: str = MEASURE,
) -> pd.DataFrame:
    """Each row of ``ours`` against the authors' run of its system (``theirs``), per ``cell``.

    ``ours``: per-query metrics (``row``, ``query_id``, ``measure``, ``value``, ``in_run``
    and the ``cell`` columns); ``theirs``: the same for the published run each row is
    compared with (``row``: our row; ``system``: the authors' system). Returns
    ``paired_tests``' lines (``mean``: ours, ``baseline_mean``: theirs, both over the
    queries both runs contain) with ``system`` and ``reproduced``; ``baseline`` names the
    authors' run. A pair whose runs share no judged query is an error naming it."""
    theirs = theirs[theirs["measure"] == measure]
    ours = ours[(ours["measure"] == measure) & ours["row"].isin(set(theirs["row"]))]
    frame = pd.concat(
        [
            ours.assign(pair=ours["row"]),
            theirs.assign(pair=theirs["row"], row=_THEIRS + theirs["row"]),
        ],
        ignore_index=True,
    )
    columns = [*cell, *significance.TEST_COLUMNS, "system", "reproduced"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    kept = significance.restrict_queries(frame, "intersection", (*cell, "pair"))
    against = {row: _THEIRS + row for row in dict.fromkeys(theirs["row"])}
    settings = significance.Settings(baseline=_THEIRS, alpha=alpha, rule="intersection")
    found = significance.paired_tests(kept, settings, cell, against=against)
    systems = theirs.drop_duplicates("row").set_index("row")["system"]
    found["system"] = found["row"].map(systems)
    found["baseline"] = found["system"] + " (authors' run)"
    found["reproduced"] = [
        "" if math.isnan(p) else ("no" if significant else "yes")
        for p, significant in zip(found["p_holm"], found["significant"], strict=True)
    ]
    return found


def by_key(found: pd.DataFrame, cell: Sequence[str], row: str = "row") -> dict[Key, pd.Series]:
    """The tests by (``row`` column's value, *``cell`` values)."""
    return {(line[row], *(line[c] for c in cell)): line for _, line in found.iterrows()}


def text(reproduced: str, figure: float) -> str:
    """What a table shows beside our figure: ``≈ 0.718`` or ``≠ 0.650`` (untested: the
    authors' figure alone); nothing without a published run (``figure`` NaN)."""
    if not isinstance(figure, float | int) or math.isnan(figure):
        return ""
    symbol = {"yes": REPRODUCED, "no": DIFFERENT}.get(reproduced, "")
    return f"{symbol} {figure:.3f}".strip()


def csv_columns(
    found: Mapping[Key, pd.Series], rows: Sequence[str], columns: Mapping[str, tuple]
) -> dict[str, list]:
    """CSV columns per table column with a test (``columns``: its label -> its cell
    values): ``published``, ``published queries``, ``p published`` and ``reproduced``."""
    out: dict[str, list] = {}
    for label, cell in columns.items():
        lines = [found.get((row, *cell)) for row in rows]
        if all(line is None for line in lines):
            continue
        for name, field, empty in (
            ("published", "baseline_mean", math.nan),
            ("published queries", "queries", 0),
            ("p published", "p_holm", math.nan),
            ("reproduced", "reproduced", ""),
        ):
            out[f"{name} {label}"] = [empty if line is None else line[field] for line in lines]
    return out


def note(
    found: pd.DataFrame, cell: Sequence[str], per: str, alpha: float, measure: str = MEASURE
) -> str:
    """The sentence under a table with these tests (``per``: what a column is)."""
    tested = found[found["reproduced"] != ""]
    sizes = sorted(set(tested.groupby(list(cell)).size())) or [0]
    family = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
    return (
        f"{REPRODUCED}/{DIFFERENT} and the figure after it: our run against the authors' "
        f"published run of the same system (config `paper_systems`), {measure} over the "
        f"judged queries both runs contain; {REPRODUCED} reproduced (no significant "
        f"difference), {DIFFERENT} a significant one (paired two-sided t-test per {per}, "
        f"Holm-corrected over the {family} rows compared per column, α = {alpha:g}); "
        f"{(tested['reproduced'] == 'yes').sum()} of {len(tested)} tested cells reproduced. "
        "Our runs are scored in rank order, the authors' by score as their notebook does. "
        "CSV: `published`, `published queries`, `p published`, `reproduced` per column."
    )
