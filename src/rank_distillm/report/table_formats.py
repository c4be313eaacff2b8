"""One results table in three formats: Markdown, LaTeX (booktabs) and HTML.

A :class:`DisplayTable` holds what a reader sees: a value per (row, column), the best
value per column in bold, a significance marker per cell, optionally the paper's figure
per cell (shown with the difference), and the notes under the table. The model zoo and
any later table (the TIREx groups) build one and share these writers.
"""

from __future__ import annotations

import html
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

DIGITS = 3
_CODE = re.compile(r"`([^`]*)`")
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
# Characters of the notes and labels that need math mode or a macro in LaTeX.
_LATEX_SYMBOLS = {
    "▲": r"$^{\blacktriangle}$",
    "▼": r"$^{\blacktriangledown}$",
    "α": r"$\alpha$",
    "σ": r"$\sigma$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "×": r"$\times$",
    "−": r"$-$",
    "–": "--",
    "—": "---",
    "Δ": r"$\Delta$",
    "≈": r"$\approx$",
    "≠": r"$\neq$",
}


@dataclass(frozen=True)
class DisplayTable:
    """``values[i][j]``: row ``i``, column ``j`` (NaN: no value); ``markers``,
    ``references`` (the paper's figures, NaN where it has none) and ``compared`` (text
    shown after the cell, e.g. the authors' run's figure with a test's symbol; the LaTeX
    table gives it a row labelled ``compared_label``) have the same shape."""

    title: str
    rows: Sequence[str]
    columns: Sequence[str]
    values: np.ndarray
    markers: Sequence[Sequence[str]] | None = None
    references: np.ndarray | None = None
    notes: Sequence[str] = field(default_factory=tuple)
    measure: str = ""
    groups: Sequence[str] | None = None  # a spanning header per column (first stages)
    compared: Sequence[Sequence[str]] | None = None
    compared_label: str = ""

    def __post_init__(self) -> None:
        shape = (len(self.rows), len(self.columns))
        if self.values.shape != shape:
            raise ValueError(f"values have shape {self.values.shape}, expected {shape}")
        if self.references is not None and self.references.shape != shape:
            raise ValueError(f"references have shape {self.references.shape}, expected {shape}")
        for name in ("markers", "compared"):
            given = getattr(self, name)
            if given is not None and [len(m) for m in given] != [shape[1]] * shape[0]:
                raise ValueError(f"{name} must have shape {shape}")
        if self.groups is not None and len(self.groups) != shape[1]:
            raise ValueError(f"{len(self.groups)} groups for {shape[1]} columns")

    @property
    def headers(self) -> list[str]:
        """Column labels with their group in front (one header row)."""
        if self.groups is None:
            return list(self.columns)
        return [f"{g} {c}".strip() for g, c in zip(self.groups, self.columns, strict=True)]

    def marker(self, i: int, j: int) -> str:
        return self.markers[i][j] if self.markers is not None else ""

    def beside(self, i: int, j: int) -> str:
        """The ``compared`` text of a cell ("" without)."""
        return self.compared[i][j] if self.compared is not None else ""

    def reference(self, i: int, j: int) -> float:
        return float(self.references[i, j]) if self.references is not None else math.nan

    def best(self, i: int, j: int) -> bool:
        """The cell holds its column's highest value (as shown, rounded; ties all best)."""
        column = np.round(self.values[:, j].astype(float), DIGITS)
        value = column[i]
        return not math.isnan(value) and value == np.nanmax(column)

    def has_references(self) -> bool:
        return self.references is not None and bool(np.isfinite(self.references).any())


MD_REFERENCES = (
    "In parentheses: the paper's figure and the difference (reproduced − paper); "
    "– marks a cell this run did not produce."
)
LATEX_REFERENCES = (
    "paper: the paper's figures; Δ: reproduced − paper; -- marks a cell this run did not produce."
)


def _notes(table: DisplayTable, references: str) -> list[str]:
    """The table's notes, with the sentence on the paper's figures where it has them."""
    return [references, *table.notes] if table.has_references() else list(table.notes)


def fmt(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.{DIGITS}f}"


def signed(value: float) -> str:
    return f"{value:+.{DIGITS}f}".replace("-", "−")


def difference(value: float, reference: float) -> float:
    """Shown value minus the paper's figure (both as shown, rounded)."""
    return round(value, DIGITS) - reference


# --------------------------------------------------------------------------- Markdown


def markdown(table: DisplayTable, footer: Sequence[str] = ()) -> str:
    """A Markdown page: title, table, notes as a list, then ``footer`` paragraphs."""
    lines = [f"# {table.title}", ""]
    lines.append("| System | " + " | ".join(_md_escape(c) for c in table.headers) + " |")
    lines.append("|---|" + "---:|" * len(table.columns))
    for i, row in enumerate(table.rows):
        cells = []
        for j in range(len(table.columns)):
            value = float(table.values[i, j])
            text = fmt(value)
            if table.best(i, j):
                text = f"**{text}**"
            text += table.marker(i, j)
            paper = table.reference(i, j)
            if not math.isnan(paper):
                diff = "" if math.isnan(value) else f"; {signed(difference(value, paper))}"
                text = f"{text} ({paper:.{DIGITS}f}{diff})"
            beside = table.beside(i, j)
            cells.append(f"{text} {beside}" if beside else text)
        lines.append(f"| {_md_escape(row)} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {note}" for note in _notes(table, MD_REFERENCES)]
    for paragraph in footer:
        lines += ["", paragraph]
    return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


# --------------------------------------------------------------------------- LaTeX


def latex_text(text: str) -> str:
    """Plain text (with Markdown `code` spans) as LaTeX: specials escaped, code spans in
    \\texttt, symbols such as ▲ and α in math mode."""
    parts = []
    last = 0
    for match in _CODE.finditer(text):
        parts.append(_latex_plain(text[last : match.start()]))
        parts.append(r"\texttt{" + _latex_plain(match.group(1)) + "}")
        last = match.end()
    parts.append(_latex_plain(text[last:]))
    return "".join(parts)


def _latex_plain(text: str) -> str:
    escaped = "".join(_LATEX_SPECIAL.get(char, char) for char in text)
    return "".join(_LATEX_SYMBOLS.get(char, char) for char in escaped)


def latex(table: DisplayTable, label: str = "tab:model-zoo") -> str:
    """A booktabs ``table`` environment; needs ``\\usepackage{booktabs,amssymb}``.

    Grouped columns (first stages) get a spanning header with a rule below it. A row with
    the paper's figures is followed by an italic *paper* row with them and a Δ row with
    the differences (reproduced - paper), which keeps the table as narrow as the data.
    The title and notes form the caption."""
    out = [
        "% Generated by rank_distillm; needs \\usepackage{booktabs} and \\usepackage{amssymb}.",
        r"\begin{table}",
        r"\centering",
        r"\caption{"
        + latex_text(table.title)
        + ". "
        + " ".join(latex_text(n) for n in _notes(table, LATEX_REFERENCES))
        + "}",
        r"\label{" + label + "}",
        r"\begin{tabular}{l" + "r" * len(table.columns) + "}",
        r"\toprule",
    ]
    if table.groups is not None:
        head, rules, start = [""], [], 2
        for group, members in itertools.groupby(table.groups):
            width = len(list(members))
            head.append(rf"\multicolumn{{{width}}}{{c}}{{{latex_text(group)}}}")
            rules.append(rf"\cmidrule(lr){{{start}-{start + width - 1}}}")
            start += width
        out += [" & ".join(head) + r" \\", "".join(rules)]
    out.append(" & ".join(["System", *(latex_text(c) for c in table.columns)]) + r" \\")
    out.append(r"\midrule")
    for i, row in enumerate(table.rows):
        cells = [latex_text(row)]
        for j in range(len(table.columns)):
            value = float(table.values[i, j])
            text = "--" if math.isnan(value) else fmt(value)
            if table.best(i, j):
                text = r"\textbf{" + text + "}"
            cells.append(text + latex_text(table.marker(i, j)))
        out.append(" & ".join(cells) + r" \\")
        papers = [table.reference(i, j) for j in range(len(table.columns))]
        if any(not math.isnan(p) for p in papers):
            values = [float(v) for v in table.values[i]]
            shown = [r"\textit{" + fmt(p) + "}" if not math.isnan(p) else "" for p in papers]
            diffs = [
                "" if math.isnan(p) or math.isnan(v) else f"${difference(v, p):+.{DIGITS}f}$"
                for v, p in zip(values, papers, strict=True)
            ]
            out.append(" & ".join([r"\quad\textit{paper}", *shown]) + r" \\")
            out.append(" & ".join([r"\quad$\Delta$", *diffs]) + r" \\")
        beside = [table.beside(i, j) for j in range(len(table.columns))]
        if any(beside):
            label = r"\quad\textit{" + latex_text(table.compared_label) + "}"
            out.append(" & ".join([label, *(latex_text(t) for t in beside)]) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- HTML

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.3em 0.8em; border-bottom: 1px solid #ccc; }
thead th { border-bottom: 2px solid #222; }
tbody th { text-align: left; font-weight: normal; }
td.value { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.ref { color: #666; font-size: 0.85em; }
.marker { color: #1a7f37; }
.marker.worse { color: #b42318; }
li { margin: 0.2em 0; }
"""


def _html_text(text: str) -> str:
    return _CODE.sub(r"<code>\1</code>", html.escape(str(text)))


def html_page(table: DisplayTable, footer: Sequence[str] = ()) -> str:
    """A self-contained HTML page (inline CSS) with the table and its notes."""
    head = "".join(f"<th>{_html_text(c)}</th>" for c in table.headers)
    body = []
    for i, row in enumerate(table.rows):
        cells = []
        for j in range(len(table.columns)):
            value = float(table.values[i, j])
            text = html.escape(fmt(value))
            if table.best(i, j):
                text = f"<strong>{text}</strong>"
            marker = table.marker(i, j)
            if marker:
                kind = "marker worse" if marker == "▼" else "marker"
                text += f'<span class="{kind}">{html.escape(marker)}</span>'
            paper = table.reference(i, j)
            if not math.isnan(paper):
                diff = "" if math.isnan(value) else f"; {signed(difference(value, paper))}"
                text += f' <span class="ref">({paper:.{DIGITS}f}{html.escape(diff)})</span>'
            if table.beside(i, j):
                text += f' <span class="ref">{html.escape(table.beside(i, j))}</span>'
            cells.append(f'<td class="value">{text}</td>')
        body.append(f'<tr><th scope="row">{_html_text(row)}</th>{"".join(cells)}</tr>')
    notes = "".join(f"<li>{_html_text(note)}</li>" for note in _notes(table, MD_REFERENCES))
    extra = "".join(f"<p>{_html_text(p)}</p>" for p in footer)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(table.title)}</title><style>{_STYLE}</style></head><body>\n"
        f"<h1>{html.escape(table.title)}</h1>\n"
        f'<table class="results"><thead><tr><th>System</th>{head}</tr></thead>\n'
        f"<tbody>\n{chr(10).join(body)}\n</tbody></table>\n"
        f'<ul class="notes">{notes}</ul>\n{extra}\n</body></html>\n'
    )
