"""The notebook's printed tables (rank_distillm.data.paper_tables): parsed as printed, and
consistent with themselves wherever two tables or a mean print the same figure."""

from __future__ import annotations

import math

import pytest

from rank_distillm.data import paper_tables
from rank_distillm.data.paper_tables import Printed

DL19, DL20 = "msmarco-passage/trec-dl-2019/judged", "msmarco-passage/trec-dl-2020/judged"
MAIN = "monoelectra-base-dual-rank-distillm-colbert"
PAPER = paper_tables.load()


def test_every_table_has_the_papers_shape() -> None:
    tables = PAPER.tables
    assert list(tables) == ["trec_dl", "tirex", "loss", "queries", "depth"]
    shapes = {name: (len(t.rows), len(t.columns)) for name, t in tables.items()}
    assert shapes == {
        "trec_dl": (15, 4),
        "tirex": (8, 15),
        "loss": (2, 4),
        "queries": (2, 4),
        "depth": (2, 4),
    }
    assert PAPER.baseline == MAIN
    assert list(tables["tirex"].columns[:13]) == [
        "antique", "argsme", "clueweb09", "clueweb12", "cord19", "cranfield", "disks45",
        "gov", "gov2", "medline", "nfcorpus", "vaswani", "wapo",
    ]  # fmt: skip


def test_cells_keep_the_printed_text_and_star() -> None:
    tables = PAPER.tables
    assert tables["trec_dl"].cell("first_stage", "bm25/dl19") == Printed("0.480*", 0.48, True, 3)
    assert tables["trec_dl"].cell("first_stage", "colbert/dl19") == Printed(
        "0.732", 0.732, False, 3
    )
    assert tables["tirex"].cell("first_stage", "AM") == Printed("0.361", 0.361, False, 3)
    assert tables["tirex"].cell("monoelectra-base", "AM").text == "0.355"
    assert tables["queries"].cell("colbert", "1000") == Printed("0.651966", 0.651966, False, 6)
    with pytest.raises(ValueError, match="here: expected a printed cell .* got '0.7x'"):
        Printed.parse("0.7x", "here")


def test_tables_that_print_the_same_figure_agree() -> None:
    tables = PAPER.tables
    assert tables["loss"].printed[MAIN] == tables["trec_dl"].printed[MAIN]
    queries, depth = tables["queries"], tables["depth"]
    for stage in ("bm25", "colbert"):
        # 10k queries at depth 100 is the main model, in both sub-sampling tables ...
        assert queries.cell(stage, "10000") == depth.cell(stage, "100")
        # ... and its mean is the mean of its two printed TREC DL cells (up to rounding).
        cells = [tables["trec_dl"].cell(MAIN, f"{stage}/dl{y}").value for y in (19, 20)]
        assert queries.cell(stage, "10000").value == pytest.approx(sum(cells) / 2, abs=0.001)


@pytest.mark.parametrize("system", list(PAPER.tables["tirex"].rows))
def test_tirex_means_are_the_means_of_the_printed_groups(system: str) -> None:
    cells = PAPER.tables["tirex"].printed[system]
    groups = [cell.value for cell in cells[:13]]
    assert cells[13].value == pytest.approx(sum(groups) / 13, abs=0.001)
    geometric = math.exp(sum(math.log(value) for value in groups) / 13)
    assert cells[14].value == pytest.approx(geometric, abs=0.002)


def test_figures_of_a_system_from_every_table() -> None:
    found = PAPER.figures(MAIN)
    assert found[("bm25", DL19)] == 0.720 and found[("colbert", DL20)] == 0.770
    assert found[("bm25", "mean")] == 0.715229 and found[("colbert", "mean")] == 0.769099
    assert found[("tirex", "cranfield")] == 0.010
    assert (found[("tirex", "AM")], found[("tirex", "GM")]) == (0.401, 0.309)
    assert len(found) == 4 + 2 + 15
    assert PAPER.figures("monoelectra-base-dual-rank-distillm-colbert-10k-10") == {
        ("bm25", "mean"): 0.680843,
        ("colbert", "mean"): 0.733180,
    }
    assert PAPER.figures("no-such-system") == {}
    assert "monoelectra-base-dual-rank-distillm-colbert-adrmse" in PAPER.systems
