"""The demo run's `snakemake --report`, looked at in a real headless Chromium, and the
tables target run against the demo's files.

Chromium is Debian's package (installed here if missing, as root); Playwright drives it
through ``executable_path`` and never downloads a browser of its own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.ci import skip_or_fail_in_ci
from tests.workflow_runner import snakemake

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RESULTS = Path("results") / "demo"


def find_or_install_chromium() -> str:
    """Debian's chromium; installed with apt-get when missing and we are root. Missing
    elsewhere it skips, except in CI, where it fails."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "chromium"]
        for command in (["apt-get", "update", "-q"], install):
            subprocess.run(command, check=True, env=env, capture_output=True, timeout=900)
        found = shutil.which("chromium")
        if found:
            return found
    skip_or_fail_in_ci("chromium is missing: apt-get install chromium")


@pytest.fixture(scope="module")
def report(demo: Path) -> Path:
    """`snakemake --report` of the demo run (it reads the run's files, changes none)."""
    target = demo / RESULTS / "report.html"
    result = snakemake(demo, "--report", str(target.relative_to(demo)))
    assert result.returncode == 0, result.stderr[-5000:]
    assert "Report created" in result.stderr
    return target


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    executable = find_or_install_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def open_item(
    page, category: str, item: str, subcategory: str | None = None, choice: str | None = None
) -> None:
    """Click through the report's menu to one result's eye (view) button: the category,
    the subcategory, the label value that varies (a toggle above the list), the row."""
    page.get_by_text("Results", exact=True).first.click()
    page.get_by_text(category, exact=True).click()
    if subcategory:
        page.get_by_text(subcategory, exact=True).click()
    if choice:
        page.get_by_text(choice, exact=True).click()
    page.locator("tr", has_text=item).first.locator("a").first.click()


def image_is_shown(page) -> dict:
    shown = page.locator("img").last
    shown.wait_for(state="visible")
    box = shown.bounding_box()
    decoded = shown.evaluate("img => img.complete && img.naturalWidth > 0")
    return {"width": box["width"], "height": box["height"], "decoded": decoded}


def test_report_shows_tables_and_plots(demo: Path, report: Path, browser, tmp_path) -> None:
    zoo = pd.read_csv(demo / RESULTS / "model-zoo.csv", index_col="system")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(report.as_uri())
    assert page.title() == "Snakemake Report"
    for category in ("1. Tables", "2. Plots", "3. Runtime and memory"):
        assert page.get_by_text(category, exact=True).is_visible()

    # The table, in the report's HTML view: the run's numbers, markers and notes.
    open_item(page, "1. Tables", "table (HTML)", "Model zoo")
    table = page.frame_locator("iframe").locator("table.results")
    table.wait_for(state="visible")
    assert table.bounding_box()["height"] > 100
    rows = table.locator("tbody tr")
    assert rows.count() == len(zoo)
    distilled = "monoELECTRA-tiny, stage 1 + distillation (RankNet)"
    text = rows.filter(has_text=distilled).inner_text()
    value = zoo.loc[distilled, "nDCG@10 DL19 (demo)"]
    marker = zoo.loc[distilled, "sig nDCG@10 DL19 (demo)"]
    assert f"{value:.3f}{marker}" in text
    notes = page.frame_locator("iframe").locator("ul.notes").inner_text()
    assert "paired two-sided t-test" in notes and "Holm" in notes
    page.screenshot(path=tmp_path / "table.png")
    if os.environ.get("REPORT_SCREENSHOT"):  # how docs/report-screenshot.png is made
        page.screenshot(path=os.environ["REPORT_SCREENSHOT"])

    # The TIREx table (the demo has TIREx tasks), likewise.
    tirex = pd.read_csv(demo / RESULTS / "tirex.csv", index_col="system")
    open_item(page, "1. Tables", "table (HTML)", "TIREx")
    groups = page.frame_locator("iframe").locator("table.results")
    groups.wait_for(state="visible")
    assert groups.locator("tbody tr").count() == len(tirex)
    assert "mean over groups" in groups.locator("thead").inner_text()

    # Every plot decodes and shows at a readable size.
    for subcategory, item, choice in (
        ("Model zoo", "bar chart per system", None),
        ("TIREx", "nDCG@10 per corpus group", None),
        ("Per query against the baseline", "per-query scatter", distilled),
        ("Training loss", "training loss", "monoELECTRA-tiny, stage 1 (InfoNCE)"),
    ):
        open_item(page, "2. Plots", item, subcategory, choice)
        shown = image_is_shown(page)
        assert shown["decoded"], item
        assert shown["width"] > 300 and shown["height"] > 150, (item, shown)
    page.screenshot(path=tmp_path / "plot.png")

    open_item(page, "3. Runtime and memory", "table")
    runtimes = page.frame_locator("iframe").locator("table")
    runtimes.wait_for(state="visible")
    assert "train/tiny-electra.stage1" in runtimes.inner_text()

    open_item(page, "4. Configuration and software", "config and package versions")
    environment = page.frame_locator("iframe").locator("body").inner_text()
    assert "statsmodels" in environment and "experiment: demo" in environment
    assert (tmp_path / "table.png").stat().st_size > 20_000
    page.close()


@pytest.fixture
def demo_copy(demo: Path, tmp_path: Path) -> Path:
    """A copy of the demo run to change (the shared one must stay as it is)."""
    copy = tmp_path / "demo"
    shutil.copytree(demo, copy, symlinks=True, ignore=shutil.ignore_patterns(".cache"))
    return copy


def test_tables_target_rebuilds_tables_and_plots_only(demo_copy: Path) -> None:
    results = demo_copy / RESULTS
    before = (results / "model-zoo.md").read_text()
    for name in ("model-zoo.md", "model-zoo.tex", "model-zoo.png"):
        (results / name).unlink()
    # An upstream input newer than its outputs: the full workflow would retrain.
    table = next((results / "training" / "teachers").glob("*.parquet"))
    os.utime(table)
    result = snakemake(demo_copy, "tables", "--cores", "1")
    assert result.returncode == 0, result.stderr[-5000:]
    assert "1 of 1 steps (100%) done" in result.stderr
    assert "train_model" not in result.stderr
    assert (results / "model-zoo.md").read_text() == before  # the same numbers
    assert (results / "model-zoo.tex").read_text().startswith("% Generated by rank_distillm")
    assert (results / "model-zoo.png").stat().st_size > 10_000


def test_tables_target_names_a_missing_metrics_file(demo_copy: Path) -> None:
    results = demo_copy / RESULTS
    missing = results / "metrics" / "dl20" / "bm25" / "tiny-electra.stage1.tsv"
    missing.unlink()
    checkpoint = results / "models" / "tiny-electra.stage1" / "checkpoint"
    stamp = checkpoint.stat().st_mtime
    result = snakemake(demo_copy, "tables", "--cores", "1")
    assert result.returncode != 0
    assert re.search(r"\b1 of \d+ metrics files the tables need are missing", result.stderr)
    assert str(missing.relative_to(demo_copy)) in result.stderr
    assert "train_model" not in result.stderr and "rule evaluate" not in result.stderr
    assert not missing.exists() and checkpoint.stat().st_mtime == stamp
