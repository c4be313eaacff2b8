from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest

from rank_distillm.report import model_zoo_table, write_model_zoo

DL19, DL20 = "DL19 (demo)", "DL20 (demo)"
NDCG = {
    # system -> dataset -> per-query nDCG@10. Not alphabetical, to check first-appearance order.
    "Simulated teacher": {DL19: [0.9, 0.7], DL20: [0.6, 0.8, 0.7, 0.9]},
    "BM25": {DL19: [0.4, 0.6], DL20: [0.2, 0.3, 0.4, 0.5]},
    "monoELECTRA": {DL19: [0.7, 0.8]},  # lacks DL20
}
NOTE = "Simulated teacher: a noisy oracle derived from the qrels, not an LLM"


def make_metrics() -> pd.DataFrame:
    """RR@10 is 1.0 everywhere, AP@100 is half the nDCG@10."""
    rows = []
    for system, per_dataset in NDCG.items():
        for dataset, values in per_dataset.items():
            for i, v in enumerate(values):
                qid = f"{dataset[:4]}-{i}"
                rows.append((system, dataset, qid, "nDCG@10", v))
                rows.append((system, dataset, qid, "RR@10", 1.0))
                rows.append((system, dataset, qid, "AP@100", v / 2))
    return pd.DataFrame(rows, columns=["system", "dataset", "query_id", "measure", "value"])


def test_model_zoo_table_means() -> None:
    metrics = make_metrics()
    table = model_zoo_table(metrics)
    assert list(table.index) == ["Simulated teacher", "BM25", "monoELECTRA"]
    assert list(table.columns) == [
        f"nDCG@10 {DL19}",
        f"nDCG@10 {DL20}",
        "nDCG@10 mean",
        f"RR@10 {DL19}",
        f"RR@10 {DL20}",
        "RR@10 mean",
        f"MAP@100 {DL19}",
        f"MAP@100 {DL20}",
        "MAP@100 mean",
        f"queries {DL19}",
        f"queries {DL20}",
    ]
    bm25 = table.loc["BM25"]
    assert bm25[f"nDCG@10 {DL19}"] == pytest.approx((0.4 + 0.6) / 2)  # 0.5
    assert bm25[f"nDCG@10 {DL20}"] == pytest.approx((0.2 + 0.3 + 0.4 + 0.5) / 4)  # 0.35
    # Mean of the per-dataset means (0.425), not the pooled mean over 6 queries (0.4).
    assert bm25["nDCG@10 mean"] == pytest.approx((0.5 + 0.35) / 2)
    pooled = metrics.query("system == 'BM25' and measure == 'nDCG@10'")["value"].mean()
    assert pooled == pytest.approx((0.4 + 0.6 + 0.2 + 0.3 + 0.4 + 0.5) / 6)  # 0.4
    assert bm25["nDCG@10 mean"] != pytest.approx(pooled)
    assert bm25["MAP@100 mean"] == pytest.approx(0.425 / 2)
    assert bm25["RR@10 mean"] == pytest.approx(1.0)
    assert table.loc["Simulated teacher", "nDCG@10 mean"] == pytest.approx((0.8 + 0.75) / 2)
    assert (bm25[f"queries {DL19}"], bm25[f"queries {DL20}"]) == (2, 4)
    # Missing dataset: NaN cell and NaN mean, no average over fewer datasets.
    electra = table.loc["monoELECTRA"]
    assert electra[f"nDCG@10 {DL19}"] == pytest.approx(0.75)
    assert math.isnan(electra[f"nDCG@10 {DL20}"])
    assert math.isnan(electra["nDCG@10 mean"])
    assert electra[f"queries {DL20}"] == 0


def test_model_zoo_table_rejects_unknown_measure() -> None:
    with pytest.raises(ValueError, match="not in metrics"):
        model_zoo_table(make_metrics(), measures=["nDCG@10", "P@5"])


def test_write_model_zoo(tmp_path: Path) -> None:
    out = tmp_path / "report" / "zoo"
    md, csv, png = out / "zoo.md", out / "zoo.csv", out / "zoo.png"
    write_model_zoo(make_metrics(), md, csv, png, title="Model zoo (demo)", notes=[NOTE])
    assert sorted(os.listdir(out)) == ["zoo.csv", "zoo.md", "zoo.png"]  # no temp files left

    lines = md.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# Model zoo (demo)"
    assert f"| System | nDCG@10 {DL19} | nDCG@10 {DL20} | nDCG@10 mean |" in lines
    assert "| Simulated teacher | **0.800** | **0.750** | **0.775** |" in lines
    assert "| BM25 | 0.500 | 0.350 | 0.425 |" in lines
    assert "| monoELECTRA | 0.750 | – | – |" in lines
    assert f"- {NOTE}" in lines
    assert any("RR@10" in line and "MAP@100" in line and "zoo.csv" in line for line in lines)

    table = pd.read_csv(csv, index_col=0)
    assert table.index.name == "system"
    assert list(table.index) == ["Simulated teacher", "BM25", "monoELECTRA"]
    assert table.loc["BM25", "nDCG@10 mean"] == pytest.approx(0.425)
    assert table.loc["BM25", f"MAP@100 {DL19}"] == pytest.approx(0.25)
    assert table.loc["Simulated teacher", f"queries {DL20}"] == 4
    assert math.isnan(table.loc["monoELECTRA", "nDCG@10 mean"])

    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = matplotlib.image.imread(png).shape[:2]
    assert 400 <= width <= 3000
    assert 200 <= height <= 3000
