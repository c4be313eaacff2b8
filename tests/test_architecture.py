"""The house's rules (docs/architecture.md), checked on the source: imports point down
the stages, and no definition is too long to hold in one's head."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "rank_distillm"
#: Lower wings may be imported by higher ones; training and teachers stand side by side.
LEVEL = {
    "config": 0,
    "data": 1,
    "model": 2,
    "training": 3,
    "teachers": 3,
    "evaluation": 4,
    "report": 5,
}
TOP = 6  # experiment, report_plan, steps, cli, pyterrier, retrieve, logs
MAX_FUNCTION_LINES, MAX_CLASS_LINES = 80, 150


def wing(module: str) -> str:
    """``rank_distillm.data.trec`` -> ``data``; a top-level module is its own wing."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def level(name: str) -> int:
    return LEVEL.get(name, TOP)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST) -> list[str]:
    """Every rank_distillm module a file imports (``from rank_distillm import data`` ->
    ``rank_distillm.data``), lazy imports inside functions included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("rank_distillm")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rank_distillm"):
            if node.module == "rank_distillm":
                found += [f"rank_distillm.{alias.name}" for alias in node.names]
            else:
                found.append(node.module)
    return found


def upward_imports(source: str, code: str) -> list[str]:
    """The imports of module ``source`` (its ``code``) that point up or sideways."""
    here = wing(source)
    if level(here) == TOP:
        return []
    wrong = []
    for target in imported_modules(ast.parse(code)):
        there = wing(target)
        sideways = there != here and level(there) == level(here)
        if there != here and (level(there) > level(here) or sideways):
            wrong.append(f"{source} imports {target}")
    return wrong


def test_the_check_sees_upward_and_sideways_imports() -> None:
    code = (
        "from rank_distillm.report import model_zoo\n"
        "import rank_distillm.data.trec\n"
        "def f():\n    from rank_distillm import experiment\n"
    )
    assert upward_imports("rank_distillm.evaluation.rerank", code) == [
        "rank_distillm.evaluation.rerank imports rank_distillm.report",
        "rank_distillm.evaluation.rerank imports rank_distillm.experiment",
    ]
    sideways = "from rank_distillm.training.tables import read_table"
    assert upward_imports("rank_distillm.teachers.simulated", sideways) == [
        "rank_distillm.teachers.simulated imports rank_distillm.training.tables"
    ]
    assert upward_imports("rank_distillm.steps", code) == []  # the top may import anything


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: module_name(p))
def test_imports_point_down_the_stages(path: Path) -> None:
    assert upward_imports(module_name(path), path.read_text()) == []


def long_definitions(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            lines = node.end_lineno - node.lineno + 1
            limit = MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES
            if lines > limit:
                found.append(f"{module_name(path)}.{node.name}: {lines} lines (limit {limit})")
    return found


def test_no_definition_is_over_the_limits() -> None:
    found = [line for path in sorted(PACKAGE.rglob("*.py")) for line in long_definitions(path)]
    assert found == []
