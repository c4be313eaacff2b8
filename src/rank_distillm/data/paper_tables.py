"""The paper's tables as the authors' notebook prints them, and what they evaluate.

``data/paper_tables.yaml`` holds every printed cell (value and significance star), the
systems of the authors' archive of evaluation runs (Zenodo record 15150456), the TREC DL
sets and the notebook's 29 TIREx tasks. This module reads it into typed records; the
published tables compare their cells with it, and it gives every printed figure of a
system (:meth:`PaperTables.figures`) for the model zoo rows that config ``paper_systems``
maps to it (``rank_distillm.report.references``).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

SUBSAMPLING_TABLES = ("queries", "depth")
MEANS = ("AM", "GM")
#: A figure's place (:meth:`PaperTables.figures`): (first stage, dataset id or ``MEAN``)
#: for TREC DL, (``TIREX``, corpus group or one of ``MEANS``) for TIREx.
Place = tuple[str, str]
MEAN = "mean"
TIREX = "tirex"
_CELL = re.compile(r"(\d+\.\d+)(\*?)")


@dataclass(frozen=True)
class Printed:
    """One printed cell: its value, whether it has a star, and its decimals."""

    text: str
    value: float
    star: bool
    digits: int

    @classmethod
    def parse(cls, text: str, where: str) -> Printed:
        match = _CELL.fullmatch(str(text))
        if match is None:
            raise ValueError(f"{where}: expected a printed cell like 0.480 or 0.480*, got {text!r}")
        number = match[1]
        return cls(str(text), float(number), match[2] == "*", len(number.split(".")[1]))

    def shows(self, value: float) -> bool:
        """Whether ``value`` prints as this cell: rounded as the notebook rounds (NumPy's
        ``round``, then a fixed-point format)."""
        import numpy as np

        if math.isnan(value):
            return False
        return f"{np.round(value, self.digits):.{self.digits}f}" == self.text.rstrip("*")


@dataclass(frozen=True)
class Table:
    """A printed table: ``columns`` (``<first stage>/<set>``, groups and means, or for the
    sub-sampling tables a point such as ``1000``), ``rows`` in the printed order, and for
    the sub-sampling tables the system behind each column."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[str, ...]
    printed: Mapping[str, tuple[Printed, ...]]
    systems_by_column: Mapping[str, str] | None = None

    def cell(self, row: str, column: str) -> Printed:
        return self.printed[row][self.columns.index(column)]


@dataclass(frozen=True)
class PaperTables:
    record: int
    archive: str
    baseline: str
    first_stages: Mapping[str, str]  # archive first stage -> label
    trec_dl: Mapping[str, tuple[str, str]]  # set name -> (ir_datasets id, label)
    tirex_tasks: tuple[str, ...]
    systems: Mapping[str, str]  # archive folder (system) -> label
    tables: Mapping[str, Table]

    def trec_dl_pairs(self) -> list[tuple[str, str]]:
        """(first stage, dataset id) of the TREC DL columns, in the printed order."""
        return [
            (stage, self.trec_dl[name][0])
            for stage, name in (c.split("/") for c in self.tables["trec_dl"].columns)
        ]

    def archive_pairs(self) -> list[tuple[str, str]]:
        """Every (first stage, dataset id) the notebook evaluates: TREC DL with both first
        stages, the TIREx tasks with BM25."""
        return [*self.trec_dl_pairs(), *(("bm25", task) for task in self.tirex_tasks)]

    def subsampling_systems(self) -> list[str]:
        """The systems the two sub-sampling tables compare (one query intersection)."""
        found: dict[str, None] = {}
        for name in SUBSAMPLING_TABLES:
            found.update(dict.fromkeys(self.tables[name].systems_by_column.values()))
        return list(found)

    def trec_dl_systems(self) -> list[str]:
        """Every system evaluated on TREC DL (the TREC DL, loss and sub-sampling tables)."""
        found = dict.fromkeys(self.tables["trec_dl"].rows)
        found.update(dict.fromkeys(self.tables["loss"].rows))
        found.update(dict.fromkeys(self.subsampling_systems()))
        return list(found)

    def tirex_systems(self) -> list[str]:
        return list(self.tables["tirex"].rows)

    def figures(self, system: str) -> dict[Place, float]:
        """Every printed figure of ``system``: TREC DL cells by (first stage, dataset id),
        the sub-sampling tables' means by (first stage, ``MEAN``), TIREx cells by
        (``TIREX``, group or ``AM``/``GM``). Tables that print the same cell agree (a test
        checks it); an unknown system has none."""
        found: dict[Place, float] = {}
        for table in self.tables.values():
            if table.systems_by_column is not None:  # sub-sampling: rows are first stages
                for column, shown in table.systems_by_column.items():
                    if shown == system:
                        for stage in table.rows:
                            found.setdefault((stage, MEAN), table.cell(stage, column).value)
                continue
            for column, cell in zip(table.columns, table.printed.get(system, ()), strict=False):
                if table.name == "tirex":
                    place = (TIREX, column)
                else:
                    stage, split = column.split("/")
                    place = (stage, self.trec_dl[split][0])
                found.setdefault(place, cell.value)
        return found


def _table(name: str, spec: Mapping[str, Any], systems: Mapping[str, str]) -> Table:
    where = f"paper_tables.yaml tables.{name}"
    columns = spec["columns"]
    by_column = dict(columns) if isinstance(columns, Mapping) else None
    names = tuple(str(c) for c in columns)
    printed = {}
    for row, cells in spec["printed"].items():
        if len(cells) != len(names):
            raise ValueError(f"{where}.printed.{row}: {len(cells)} cells for {len(names)} columns")
        if by_column is None and row not in systems:
            raise ValueError(f"{where}.printed.{row}: not a system of the archive")
        printed[row] = tuple(Printed.parse(c, f"{where}.printed.{row}") for c in cells)
    return Table(
        name=name,
        title=spec["title"],
        columns=names,
        rows=tuple(printed),
        printed=printed,
        systems_by_column={str(k): v for k, v in by_column.items()} if by_column else None,
    )


@functools.cache
def load() -> PaperTables:
    """The paper's tables (``data/paper_tables.yaml``), read once."""
    text = resources.files("rank_distillm").joinpath("data/paper_tables.yaml").read_text()
    data = yaml.safe_load(text)
    systems = dict(data["systems"])
    return PaperTables(
        record=int(data["record"]),
        archive=data["archive"],
        baseline=data["baseline"],
        first_stages=dict(data["first_stages"]),
        trec_dl={name: (s["dataset"], s["label"]) for name, s in data["trec_dl"].items()},
        tirex_tasks=tuple(data["tirex_tasks"]),
        systems=systems,
        tables={name: _table(name, spec, systems) for name, spec in data["tables"].items()},
    )
