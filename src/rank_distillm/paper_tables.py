"""The paper's tables as the authors' notebook prints them (``data/paper_tables.yaml``).

One source for every printed figure: the paper config's references (a table row names
the authors' system it reproduces, ``paper_systems``; :func:`figures` gives that system's
printed cells) and the tests that regenerate the tables from the authors' published runs
(:func:`load`: each cell's printed text and significance star).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

#: The data file inside the package.
DATA_FILE = "data/paper_tables.yaml"
#: The tables, in the order of the notebook.
TABLES = ("trec_dl", "tirex", "loss", "queries", "depth")
#: Tables whose rows are first stages and whose columns name the system (mean of DL19/DL20).
SUBSAMPLING_TABLES = ("queries", "depth")
#: A TIREx aggregate column: the arithmetic and the geometric mean over corpus groups.
AM, GM = "am", "gm"


@dataclass(frozen=True)
class Cell:
    """A printed cell: ``text`` as printed (without the marker), its value, and whether it
    carries the significance star."""

    text: str
    value: float
    significant: bool

    @classmethod
    def parse(cls, printed: str, where: str) -> Cell:
        text = printed.removesuffix("*")
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{where}: {printed!r} is not a printed figure") from None
        return cls(text=text, value=value, significant=printed.endswith("*"))


@dataclass(frozen=True)
class PrintedTable:
    """One table: ``columns`` (mappings with ``label`` and the keys that place the column,
    see the data file) and ``rows`` (name -> one cell per column), in printed order."""

    name: str
    title: str
    columns: tuple[Mapping[str, Any], ...]
    rows: Mapping[str, tuple[Cell, ...]]
    baseline: str | None = None
    first_stage: str | None = None  # TIREx: the first stage every column re-ranks

    def cell(self, row: str, label: str) -> Cell:
        """The cell of ``row`` under the column labelled ``label``."""
        labels = [column["label"] for column in self.columns]
        return self.rows[row][labels.index(label)]


def _table(name: str, spec: Mapping[str, Any]) -> PrintedTable:
    columns = tuple(spec["columns"])
    rows = {}
    for row, printed in spec["rows"].items():
        where = f"{DATA_FILE}: {name}.rows.{row}"
        if len(printed) != len(columns):
            raise ValueError(f"{where}: {len(printed)} cells for {len(columns)} columns")
        rows[str(row)] = tuple(Cell.parse(str(text), where) for text in printed)
    return PrintedTable(
        name=name,
        title=spec["title"],
        columns=columns,
        rows=rows,
        baseline=spec.get("baseline"),
        first_stage=spec.get("first_stage"),
    )


@functools.cache
def load() -> dict[str, PrintedTable]:
    """Every printed table by name (``TABLES``)."""
    text = resources.files("rank_distillm").joinpath(DATA_FILE).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return {name: _table(name, data[name]) for name in TABLES}


def systems() -> list[str]:
    """Every system some table prints a figure of, in order of first appearance."""
    found: dict[str, None] = {}
    for table in load().values():
        if table.name in SUBSAMPLING_TABLES:
            found.update(dict.fromkeys(column["system"] for column in table.columns))
        else:
            found.update(dict.fromkeys(table.rows))
    return list(found)


#: A figure's place: (first stage, dataset id or "mean") for TREC DL, ("tirex", group or
#: ``AM``/``GM``) for TIREx.
Place = tuple[str, str]


def figures(system: str) -> dict[Place, float]:
    """Every printed figure of ``system``: TREC DL cells by (first stage, dataset id), the
    sub-sampling tables' means by (first stage, "mean"), TIREx cells by ("tirex", group or
    ``AM``/``GM``). Tables that print the same cell agree (a test checks it)."""
    found: dict[Place, float] = {}
    for table in load().values():
        if table.name in SUBSAMPLING_TABLES:
            for j, column in enumerate(table.columns):
                if column["system"] == system:
                    for stage, cells in table.rows.items():
                        found.setdefault((stage, "mean"), cells[j].value)
            continue
        for column, cell in zip(table.columns, table.rows.get(system, ()), strict=False):
            if table.name == "tirex":
                place = ("tirex", column.get("group") or column["aggregate"])
            else:
                place = (column["first_stage"], column["dataset"])
            found.setdefault(place, cell.value)
    return found
