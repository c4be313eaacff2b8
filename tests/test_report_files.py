"""The report stage's steps: which files it reads and writes (from the experiment), the
tables target's rebuild and its errors, the runtime summary and the environment page."""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any

import matplotlib.image
import pandas as pd
import pytest
import yaml

from rank_distillm.evaluation.measures import write_per_query
from rank_distillm.experiment import from_config
from rank_distillm.report.files import (
    MissingMetricsError,
    ReportSpec,
    matches_pin,
    package_versions,
    read_cells,
    rebuild_tables,
    tirex_references,
    write_benchmark_summary,
    write_environment,
)
from rank_distillm.report_plan import report_spec
from tests.helpers import load_config
from tests.workflow_runner import REPO

SCHEMA = REPO / "schemas" / "config.schema.yaml"
STAGE1 = "tiny-electra.stage1"
DISTILLED = "tiny-electra.stage1.stage2-ranknet"


@pytest.fixture(scope="module")
def demo_config() -> dict[str, Any]:
    return load_config([REPO / "config.yaml"], SCHEMA)


def spec_for(config: dict[str, Any]) -> ReportSpec:
    return report_spec(from_config(config), config)


def test_spec_of_the_demo(demo_config) -> None:
    spec = spec_for(demo_config)
    assert spec.settings.baseline == "first-stage"
    assert (spec.settings.alpha, spec.settings.rule) == (0.05, "judged")
    assert len(spec.cells) == 4 * 2  # four rows, one first stage, two sets
    assert spec.cells[0].metrics == "results/demo/metrics/dl19/bm25/bm25.tsv"
    assert list(spec.per_query) == ["simulated-teacher", STAGE1, DISTILLED]
    assert spec.per_query[DISTILLED] == f"results/demo/plots/per-query/{DISTILLED}.png"
    assert {name: plot.loss for name, plot in spec.losses.items()} == {
        STAGE1: f"results/demo/models/{STAGE1}/loss.csv",
        DISTILLED: f"results/demo/models/{DISTILLED}/loss.csv",
    }
    assert spec.zoo_files() == {
        "md": "results/demo/model-zoo.md",
        "csv": "results/demo/model-zoo.csv",
        "tex": "results/demo/model-zoo.tex",
        "html": "results/demo/model-zoo.html",
        "png": "results/demo/model-zoo.png",
        "tests": "results/demo/model-zoo-tests.csv",
    }
    assert len(spec.targets()) == 6 + 7 + 3 + 2 + 4  # zoo, TIREx, per-query, loss, pages
    # TIREx: the demo's three tasks for every row but the teacher's.
    assert spec.tirex is not None and spec.tirex.rule == "judged"
    assert len(spec.tirex.cells) == 3 * 3
    assert {cell.row for cell in spec.tirex.cells} == {"first-stage", STAGE1, DISTILLED}
    assert spec.tirex.outputs["tex"] == "results/demo/tirex.tex"
    assert len(spec.metrics_files()) == 8 + 9
    assert spec.label("first-stage") == "BM25"


def test_paper_tirex_references_by_row_label_and_table_column() -> None:
    """The paper config's TIREx figures reach the TIREx table's columns: 13 groups (those
    skipped here too) and the two means over groups, per row label."""
    config = load_config([REPO / "configs" / "paper.yaml"], SCHEMA)
    found = tirex_references(spec_for(config))
    assert list(found) == [
        "First stage",
        "RankZephyr (teacher)",
        "monoELECTRA-base, stage 1 only (InfoNCE)",
        "monoELECTRA-base, stage 1 + distillation (RankNet)",
        "monoELECTRA-large, stage 1 + distillation (RankNet)",
    ]
    first = found["First stage"]
    assert len(first) == 13 + 2
    assert (first["mean over groups"], first["geometric mean over groups"]) == (0.361, 0.286)
    assert (first["antique"], first["clueweb09"], first["cranfield"]) == (0.516, 0.177, 0.012)
    assert found["monoELECTRA-base, stage 1 only (InfoNCE)"]["mean over groups"] == 0.355


def test_baseline_and_query_rule_come_from_config(demo_config) -> None:
    config = copy.deepcopy(demo_config)
    config["report"]["significance"] = {"baseline": STAGE1, "alpha": 0.01}
    config["report"]["query_rule"] = "intersection"
    spec = spec_for(config)
    assert (spec.settings.baseline, spec.settings.alpha) == (STAGE1, 0.01)
    assert spec.settings.rule == "intersection"
    assert list(spec.per_query) == ["first-stage", "simulated-teacher", DISTILLED]


def test_unknown_baseline_names_the_key(demo_config) -> None:
    config = copy.deepcopy(demo_config)
    config["report"]["significance"] = {"baseline": "tiny-electra.stage"}
    with pytest.raises(ValueError, match="report.significance.baseline") as error:
        spec_for(config)
    assert "did you mean 'tiny-electra.stage1'" in str(error.value)


def write_metrics(spec: ReportSpec, skip: set[str] = frozenset()) -> None:
    """Per-query metrics for every cell (model zoo and TIREx): row i scores 0.2 + 0.2 i
    plus a per-query wiggle that averages to 0."""
    rows = [key for key, _ in spec.rows]
    for cell in [*spec.cells, *spec.tirex.cells]:
        if cell.metrics in skip:
            continue
        level = 0.2 + 0.2 * rows.index(cell.row)
        records = [
            (f"q{q}", measure, level + 0.01 * (q % 4 - 1.5), 1)
            for measure in ("nDCG@10", "RR@10", "AP@100")
            for q in range(12)
        ]
        frame = pd.DataFrame(records, columns=["query_id", "measure", "value", "in_run"])
        write_per_query(frame, cell.metrics)


def write_loss(path: str, steps: int = 40) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(
        {
            "step": range(1, steps + 1),
            "epoch": [s // 10 for s in range(steps)],
            "loss": [2.0 / (1 + s) for s in range(steps)],
            "learning_rate": [1e-3] * steps,
            "seconds": [0.1 * s for s in range(steps)],
        }
    )
    frame.to_csv(path, index=False)


def test_rebuild_names_every_missing_metrics_file(demo_config, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = spec_for(demo_config)
    absent = {spec.cells[1].metrics, spec.cells[6].metrics}
    write_metrics(spec, skip=absent)
    with pytest.raises(MissingMetricsError) as error:
        rebuild_tables(spec)
    message = str(error.value)
    assert message.startswith("2 of 17 metrics files the tables need are missing")
    assert all(path in message for path in absent)
    assert "never trains" in message
    assert not Path(spec.zoo.md).exists()  # nothing half-written


def test_rebuild_writes_tables_and_plots(demo_config, tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.chdir(tmp_path)
    spec = spec_for(demo_config)
    write_metrics(spec)
    write_loss(spec.losses[STAGE1].loss)  # the distilled model's loss file is missing
    with caplog.at_level(logging.INFO, logger="rank_distillm"):
        rebuild_tables(spec)
    for path in spec.zoo_files().values():
        assert Path(path).stat().st_size > 0, path
    markdown = Path(spec.zoo.md).read_text()
    # Each model beats BM25 by 0.2 per step on every query: significant everywhere.
    assert "| BM25 | 0.200 | 0.200 | 0.200 |" in markdown
    assert "| monoELECTRA-tiny, stage 1 (InfoNCE) | 0.600▲ | 0.600▲ | 0.600 |" in markdown
    for png in spec.per_query.values():
        assert matplotlib.image.imread(png).shape[1] > 300
    # TIREx: every model beats BM25 on every query of every group.
    tirex_md = Path(spec.tirex.outputs["md"]).read_text()
    assert "| monoELECTRA-tiny, stage 1 (InfoNCE) | 0.600▲ | 0.600▲ | 0.600 |" in tirex_md
    assert "paired two-sided t-test per corpus group" in tirex_md
    tests = pd.read_csv(spec.tirex.outputs["tests"])
    assert set(tests["group"]) == {"demo-news", "demo-args"}
    assert (tests[tests["group"] == "demo-news"]["queries"] == 24).all()  # 2 tasks x 12
    assert Path(spec.tirex.outputs["tex"]).read_text().count(r"$^{\blacktriangle}$") >= 4
    assert Path(spec.losses[STAGE1].png).is_file()
    assert not Path(spec.losses[DISTILLED].png).exists()
    assert "1 loss curves skipped" in caplog.text
    assert spec.losses[DISTILLED].loss in caplog.text
    assert "plots written: 3 per-query, 1 loss curves" in caplog.text


def test_intersection_rule_needs_files_that_say_which_queries_ran(tmp_path) -> None:
    from rank_distillm.report.files import Cell

    path = tmp_path / "old.tsv"
    path.write_text("query_id\tmeasure\tvalue\nq1\tnDCG@10\t0.5\n")
    cells = [Cell("bm25", "BM25", "bm25", "dl19", str(path))]
    assert read_cells(cells)["value"].tolist() == [0.5]
    with pytest.raises(ValueError, match="old.tsv: no 'in_run' column"):
        read_cells(cells, need_in_run=True)


BENCHMARK_HEADER = (
    "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"
)


def test_benchmark_summary(tmp_path) -> None:
    folder = tmp_path / "benchmarks"
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "model-a.tsv").write_text(
        BENCHMARK_HEADER + "\n120.5\t0:02:00\t812.3\t900\t700\t750\t1\t2\t95.0\t110.2\n"
    )
    (folder / "evaluate.tsv").write_text(
        BENCHMARK_HEADER + "\n2.0\t0:00:02\t150.0\t200\t100\t120\t0\t0\t50\t1.0\n"
        "4.0\t0:00:04\t170.0\t200\t100\t120\t0\t0\t50\t3.0\n"  # a repeated benchmark: mean
    )
    html, png = tmp_path / "out" / "benchmarks.html", tmp_path / "out" / "benchmarks.png"
    table = write_benchmark_summary([folder, tmp_path / "absent"], html, png)
    assert table.set_index("job")["s"].to_dict() == {"evaluate": 3.0, "train/model-a": 120.5}
    assert table.set_index("job")["max_rss"].to_dict() == {
        "evaluate": 160.0,
        "train/model-a": 812.3,
    }
    page = html.read_text()
    assert "2 jobs, 124 s of wall-clock time" in page
    assert "<td>train/model-a</td>" in page and "812.3" in page
    assert png.read_bytes()[:4] == b"\x89PNG"
    (folder / "bad.tsv").write_text("x\ty\n1\t2\n")
    with pytest.raises(ValueError, match="bad.tsv: not a Snakemake benchmark file"):
        write_benchmark_summary([folder], html, png)


def test_environment_page(demo_config, tmp_path) -> None:
    html, config_path = tmp_path / "environment.html", tmp_path / "config.yaml"
    write_environment(demo_config, html, config_path)
    assert yaml.safe_load(config_path.read_text()) == demo_config
    page = html.read_text()
    assert "<h2>Package versions</h2>" in page and "statsmodels" in page
    assert "experiment: demo" in page
    assert sorted(os.listdir(tmp_path)) == ["config.yaml", "environment.html"]  # no temp files


def test_package_versions_compare_pins() -> None:
    versions = package_versions().set_index("package")
    assert versions.loc["snakemake", "pinned"] == "9.27.1"
    assert versions.loc["snakemake", "installed"] == "9.27.1"
    assert versions.loc["snakemake", "matches pin"] == "yes"
    assert versions.loc["statsmodels", "matches pin"] == "yes"
    assert versions.loc["numpy", "pinned"] == "2.4.6"  # declared, as the package imports it
    assert versions.loc["numpy", "matches pin"] == "yes"


def test_a_local_version_label_matches_its_pin() -> None:
    assert matches_pin("2.13.0+cpu", "2.13.0")  # pip's CPU wheel of torch==2.13.0
    assert matches_pin("2.13.0+cpu", "2.13.0+cpu")
    assert not matches_pin("2.13.0+cu128", "2.13.0+cpu")
    assert not matches_pin("2.13.1+cpu", "2.13.0")
    assert not matches_pin("2.13.0", "2.13")
