"""The model-zoo table: per-set means, per-first-stage means, the paper's figures beside."""

from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest

from rank_distillm.report import model_zoo_table, write_model_zoo

FIRST_STAGES = {"bm25": "BM25"}
EVALUATION = {"dl19": "DL19 (demo)", "dl20": "DL20 (demo)"}
DL19, DL20 = EVALUATION["dl19"], EVALUATION["dl20"]
NDCG = {
    # row -> set -> per-query nDCG@10. Not alphabetical, to check first-appearance order.
    "Simulated teacher": {"dl19": [0.9, 0.7], "dl20": [0.6, 0.8, 0.7, 0.9]},
    "BM25": {"dl19": [0.4, 0.6], "dl20": [0.2, 0.3, 0.4, 0.5]},
    "monoELECTRA": {"dl19": [0.7, 0.8]},  # lacks DL20
}
NOTE = "Simulated teacher: a noisy oracle derived from the qrels, not an LLM"


def make_metrics(ndcg=NDCG, first_stage: str = "bm25") -> pd.DataFrame:
    """RR@10 is 1.0 everywhere, AP@100 is half the nDCG@10."""
    rows = []
    for system, per_set in ndcg.items():
        for split, values in per_set.items():
            for i, v in enumerate(values):
                qid = f"{split}-{i}"
                key = system.lower().replace(" ", "-")
                for measure, value in (("nDCG@10", v), ("RR@10", 1.0), ("AP@100", v / 2)):
                    rows.append((key, system, first_stage, split, qid, measure, value))
    columns = ["row", "system", "first_stage", "dataset", "query_id", "measure", "value"]
    return pd.DataFrame(rows, columns=columns)


def test_model_zoo_table_means() -> None:
    metrics = make_metrics()
    table = model_zoo_table(metrics, FIRST_STAGES, EVALUATION)
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
    # Mean of the per-set means (0.425), not the pooled mean over 6 queries (0.4).
    assert bm25["nDCG@10 mean"] == pytest.approx((0.5 + 0.35) / 2)
    pooled = metrics.query("system == 'BM25' and measure == 'nDCG@10'")["value"].mean()
    assert pooled == pytest.approx((0.4 + 0.6 + 0.2 + 0.3 + 0.4 + 0.5) / 6)  # 0.4
    assert bm25["nDCG@10 mean"] != pytest.approx(pooled)
    assert bm25["MAP@100 mean"] == pytest.approx(0.425 / 2)
    assert bm25["RR@10 mean"] == pytest.approx(1.0)
    assert table.loc["Simulated teacher", "nDCG@10 mean"] == pytest.approx((0.8 + 0.75) / 2)
    assert (bm25[f"queries {DL19}"], bm25[f"queries {DL20}"]) == (2, 4)
    # Missing set: NaN cell and NaN mean, no average over fewer sets.
    electra = table.loc["monoELECTRA"]
    assert electra[f"nDCG@10 {DL19}"] == pytest.approx(0.75)
    assert math.isnan(electra[f"nDCG@10 {DL20}"])
    assert math.isnan(electra["nDCG@10 mean"])
    assert electra[f"queries {DL20}"] == 0


def test_two_first_stages_get_their_own_columns_and_means() -> None:
    colbert = {
        name: {split: [min(v + 0.1, 1.0) for v in values] for split, values in sets.items()}
        for name, sets in NDCG.items()
        if name != "monoELECTRA"
    }
    metrics = pd.concat([make_metrics(), make_metrics(colbert, "colbert")], ignore_index=True)
    stages = {"bm25": "BM25", "colbert": "ColBERTv2"}
    table = model_zoo_table(metrics, stages, EVALUATION, measures=["nDCG@10"])
    assert list(table.columns)[:6] == [
        f"nDCG@10 BM25 {DL19}",
        f"nDCG@10 BM25 {DL20}",
        "nDCG@10 BM25 mean",
        f"nDCG@10 ColBERTv2 {DL19}",
        f"nDCG@10 ColBERTv2 {DL20}",
        "nDCG@10 ColBERTv2 mean",
    ]
    assert table.loc["BM25", "nDCG@10 ColBERTv2 mean"] == pytest.approx((0.6 + 0.45) / 2)
    assert math.isnan(table.loc["monoELECTRA", f"nDCG@10 ColBERTv2 {DL19}"])


def test_references_sit_beside_the_reproduced_values() -> None:
    references = {
        "bm25": {"bm25": {"dl19": 0.48, "dl20": 0.30}},  # mean from the two: 0.39
        "monoelectra": {"bm25": {"mean": 0.70}},  # a stated mean only
    }
    table = model_zoo_table(make_metrics(), FIRST_STAGES, EVALUATION, references=references)
    assert table.loc["BM25", f"paper nDCG@10 {DL19}"] == pytest.approx(0.48)
    assert table.loc["BM25", f"diff nDCG@10 {DL19}"] == pytest.approx(0.5 - 0.48)
    assert table.loc["BM25", "paper nDCG@10 mean"] == pytest.approx((0.48 + 0.30) / 2)
    assert table.loc["BM25", "diff nDCG@10 mean"] == pytest.approx(0.425 - 0.39)
    assert table.loc["monoELECTRA", "paper nDCG@10 mean"] == pytest.approx(0.70)
    assert math.isnan(table.loc["monoELECTRA", "diff nDCG@10 mean"])  # no DL20 run
    assert math.isnan(table.loc["Simulated teacher", f"paper nDCG@10 {DL19}"])


def test_model_zoo_table_rejects_unknown_measure() -> None:
    with pytest.raises(ValueError, match="not in metrics"):
        model_zoo_table(make_metrics(), FIRST_STAGES, EVALUATION, measures=["nDCG@10", "P@5"])


def test_write_model_zoo(tmp_path: Path) -> None:
    out = tmp_path / "report" / "zoo"
    outputs = {"md": out / "zoo.md", "csv": out / "zoo.csv", "png": out / "zoo.png"}
    references = {"bm25": {"bm25": {"dl19": 0.48}}}
    write_model_zoo(
        make_metrics(),
        outputs,
        FIRST_STAGES,
        EVALUATION,
        title="Model zoo (demo)",
        notes=[NOTE],
        references=references,
    )
    assert sorted(os.listdir(out)) == ["zoo.csv", "zoo.md", "zoo.png"]  # no temp files left

    lines = outputs["md"].read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# Model zoo (demo)"
    assert f"| System | {DL19} | {DL20} | mean |" in lines
    assert "| Simulated teacher | **0.800** | **0.750** | **0.775** |" in lines
    assert "| BM25 | 0.500 (0.480; +0.020) | 0.350 | 0.425 |" in lines
    assert "| monoELECTRA | 0.750 | – | – |" in lines
    assert f"- {NOTE}" in lines
    assert any("paper's figure" in line for line in lines)
    assert any("RR@10" in line and "MAP@100" in line and "zoo.csv" in line for line in lines)

    table = pd.read_csv(outputs["csv"], index_col=0)
    assert table.index.name == "system"
    assert list(table.index) == ["Simulated teacher", "BM25", "monoELECTRA"]
    assert table.loc["BM25", "nDCG@10 mean"] == pytest.approx(0.425)
    assert table.loc["BM25", f"MAP@100 {DL19}"] == pytest.approx(0.25)
    assert table.loc["BM25", f"paper nDCG@10 {DL19}"] == pytest.approx(0.48)
    assert table.loc["Simulated teacher", f"queries {DL20}"] == 4
    assert math.isnan(table.loc["monoELECTRA", "nDCG@10 mean"])

    data = outputs["png"].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = matplotlib.image.imread(outputs["png"]).shape[:2]
    assert 400 <= width <= 3000
    assert 200 <= height <= 3000
