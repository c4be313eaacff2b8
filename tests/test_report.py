"""The model-zoo table: per-set means, per-first-stage means, the paper's figures beside,
significance markers; written as Markdown, CSV, LaTeX, HTML and PNG."""

from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest
from scipy import stats

from rank_distillm.evaluation.significance import Settings
from rank_distillm.report.model_zoo import Outputs, model_zoo_table, write_model_zoo

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


def outputs_in(folder: Path) -> Outputs:
    return Outputs(
        **{kind: folder / f"zoo.{kind}" for kind in ("md", "csv", "tex", "html", "png")},
        tests=folder / "zoo-tests.csv",
    )


def write_demo_zoo(folder: Path, references=None, settings=None):
    outputs = outputs_in(folder)
    write_model_zoo(
        make_metrics(),
        outputs,
        FIRST_STAGES,
        EVALUATION,
        title="Model zoo (demo)",
        notes=[NOTE],
        references=references,
        settings=settings,
    )
    return outputs


# By hand: DL20, teacher - BM25 per query: 0.4, 0.5, 0.3, 0.4 (mean 0.4, sd 0.0816, t = 9.80,
# df 3); only the teacher is compared there (monoELECTRA lacks DL20), so Holm changes nothing.
TEACHER_DL20_P = 0.00225
# DL19: teacher - BM25 = 0.5, 0.1 (t = 1.5, df 1); monoELECTRA - BM25 = 0.3, 0.2 (t = 5).
TEACHER_DL19_P = 1 - 2 / math.pi * math.atan(1.5)
ELECTRA_DL19_P = 1 - 2 / math.pi * math.atan(5)


def test_significance_columns_hand_computed() -> None:
    metrics = make_metrics()
    from rank_distillm.report.model_zoo import significance_tests

    tests = significance_tests(metrics, Settings("bm25"))
    table = model_zoo_table(metrics, FIRST_STAGES, EVALUATION, tests=tests)
    teacher = table.loc["Simulated teacher"]
    assert teacher[f"p nDCG@10 {DL20}"] == pytest.approx(TEACHER_DL20_P, abs=5e-5)
    assert teacher[f"p nDCG@10 {DL20}"] == pytest.approx(
        stats.ttest_rel([0.6, 0.8, 0.7, 0.9], [0.2, 0.3, 0.4, 0.5]).pvalue
    )
    assert teacher[f"sig nDCG@10 {DL20}"] == "▲"
    # DL19: Holm over two systems: sorted p (0.1257, 0.3743) -> (0.2513, 0.3743).
    assert table.loc["monoELECTRA", f"p nDCG@10 {DL19}"] == pytest.approx(2 * ELECTRA_DL19_P)
    assert teacher[f"p nDCG@10 {DL19}"] == pytest.approx(TEACHER_DL19_P)
    assert teacher[f"sig nDCG@10 {DL19}"] == ""
    # RR@10 is 1.0 everywhere: no difference, p = 1, no marker.
    assert teacher[f"p RR@10 {DL20}"] == 1.0 and teacher[f"sig RR@10 {DL20}"] == ""
    # The baseline row and cells without a run have no test.
    assert math.isnan(table.loc["BM25", f"p nDCG@10 {DL19}"])
    assert math.isnan(table.loc["monoELECTRA", f"p nDCG@10 {DL20}"])
    assert "sig nDCG@10 mean" not in table.columns  # means are not tested


def test_write_model_zoo(tmp_path: Path) -> None:
    out = tmp_path / "report" / "zoo"
    references = {"bm25": {"bm25": {"dl19": 0.48}}}
    outputs = write_demo_zoo(out, references, Settings("bm25"))
    names = ["zoo-tests.csv", "zoo.csv", "zoo.html", "zoo.md", "zoo.png", "zoo.tex"]
    assert sorted(os.listdir(out)) == names  # no temp files left

    lines = Path(outputs.md).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# Model zoo (demo)"
    assert f"| System | {DL19} | {DL20} | mean |" in lines
    assert "| Simulated teacher | **0.800** | **0.750**▲ | **0.775** |" in lines
    assert "| BM25 | 0.500 (0.480; +0.020) | 0.350 | 0.425 |" in lines
    assert "| monoELECTRA | 0.750 | – | – |" in lines
    assert f"- {NOTE}" in lines
    test_line = next(line for line in lines if "paired two-sided t-test" in line)
    assert "better/worse than BM25 in nDCG@10" in test_line
    assert "Holm-corrected over the systems compared per column (1–2)" in test_line
    assert "α = 0.05" in test_line
    assert "- Queries: all judged queries; a judged query missing from a run scores 0." in lines
    assert any("paper's figure" in line for line in lines)
    assert any("RR@10" in line and "MAP@100" in line and "zoo.csv" in line for line in lines)

    table = pd.read_csv(outputs.csv, index_col=0, keep_default_na=False, na_values=[""])
    assert table.index.name == "system"
    assert list(table.index) == ["Simulated teacher", "BM25", "monoELECTRA"]
    assert table.loc["BM25", "nDCG@10 mean"] == pytest.approx(0.425)
    assert table.loc["BM25", f"MAP@100 {DL19}"] == pytest.approx(0.25)
    assert table.loc["BM25", f"paper nDCG@10 {DL19}"] == pytest.approx(0.48)
    assert table.loc["Simulated teacher", f"queries {DL20}"] == 4
    assert table.loc["Simulated teacher", f"sig nDCG@10 {DL20}"] == "▲"
    assert table.loc["Simulated teacher", f"p nDCG@10 {DL20}"] == pytest.approx(
        TEACHER_DL20_P, abs=5e-5
    )
    assert math.isnan(table.loc["monoELECTRA", "nDCG@10 mean"])

    tests = pd.read_csv(outputs.tests)
    assert list(tests.columns[:5]) == ["first_stage", "dataset", "measure", "system", "row"]
    ndcg = tests[tests["measure"] == "nDCG@10"]
    assert len(ndcg) == 3  # DL19: teacher, monoELECTRA; DL20: teacher
    row = ndcg[(ndcg["dataset"] == "dl20")].iloc[0]
    assert (row["system"], row["baseline"], row["queries"]) == ("Simulated teacher", "bm25", 4)
    assert row["statistic"] == pytest.approx(0.4 / (math.sqrt(2 / 300) / 2), rel=1e-4)

    data = Path(outputs.png).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = matplotlib.image.imread(outputs.png).shape[:2]
    assert 400 <= width <= 3000
    assert 200 <= height <= 3000


def test_latex_is_booktabs_with_bold_markers_and_paper_rows(tmp_path: Path) -> None:
    references = {"bm25": {"bm25": {"dl19": 0.48}}}
    tex = Path(write_demo_zoo(tmp_path, references, Settings("bm25")).tex).read_text()
    lines = tex.splitlines()
    assert r"\begin{tabular}{lrrr}" in lines
    assert r"\toprule" in lines and r"\midrule" in lines and r"\bottomrule" in lines
    assert r"System & DL19 (demo) & DL20 (demo) & mean \\" in lines
    assert (
        r"Simulated teacher & \textbf{0.800} & \textbf{0.750}$^{\blacktriangle}$ & "
        r"\textbf{0.775} \\"
    ) in lines
    # The paper's figures in an italic row below the system's, then the differences.
    bm25 = lines.index(r"BM25 & 0.500 & 0.350 & 0.425 \\")
    assert lines[bm25 + 1] == r"\quad\textit{paper} & \textit{0.480} &  &  \\"
    assert lines[bm25 + 2] == r"\quad$\Delta$ & $+0.020$ &  &  \\"
    assert r"monoELECTRA & 0.750 & -- & -- \\" in lines
    caption = next(line for line in lines if line.startswith(r"\caption{"))
    assert r"$^{\blacktriangle}$/$^{\blacktriangledown}$: significantly better/worse" in caption
    assert r"$\alpha$ = 0.05" in caption
    assert r"paper: the paper's figures; $\Delta$: reproduced $-$ paper" in caption
    assert r"\label{tab:model-zoo}" in lines


def test_several_first_stages_are_grouped(tmp_path: Path) -> None:
    colbert = {
        name: {split: [min(v + 0.1, 1.0) for v in values] for split, values in sets.items()}
        for name, sets in NDCG.items()
        if name != "monoELECTRA"
    }
    metrics = pd.concat([make_metrics(), make_metrics(colbert, "colbert")], ignore_index=True)
    outputs = outputs_in(tmp_path)
    stages = {"bm25": "BM25", "colbert": "ColBERTv2"}
    write_model_zoo(metrics, outputs, stages, EVALUATION, "t", settings=Settings("bm25"))
    lines = Path(outputs.tex).read_text().splitlines()
    assert r" & \multicolumn{3}{c}{BM25} & \multicolumn{3}{c}{ColBERTv2} \\" in lines
    assert r"\cmidrule(lr){2-4}\cmidrule(lr){5-7}" in lines
    header = r"System & DL19 (demo) & DL20 (demo) & mean & DL19 (demo) & DL20 (demo) & mean \\"
    assert header in lines
    markdown = Path(outputs.md).read_text()
    assert "| System | BM25 DL19 (demo) | BM25 DL20 (demo) | BM25 mean | ColBERTv2 DL19" in markdown
    # The baseline row is BM25's first-stage run; ColBERTv2's teacher is tested against it.
    assert "| Simulated teacher | **0.800** | **0.750**▲ | **0.775** | **0.900** | " in markdown


def test_latex_escapes_labels_and_notes() -> None:
    from rank_distillm.report.table_formats import latex_text

    assert latex_text("R&D_1 100% #2 {x} ~ ^") == (
        r"R\&D\_1 100\% \#2 \{x\} \textasciitilde{} \textasciicircum{}"
    )
    assert latex_text("run `__bm25__dl19.run` (σ = 1, ≥ 2)") == (
        r"run \texttt{\_\_bm25\_\_dl19.run} ($\sigma$ = 1, $\geq$ 2)"
    )


def test_html_table_has_markers_and_notes(tmp_path: Path) -> None:
    page = Path(write_demo_zoo(tmp_path, settings=Settings("bm25")).html).read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<h1>Model zoo (demo)</h1>" in page
    assert '<strong>0.750</strong><span class="marker">▲</span>' in page
    assert '<th scope="row">monoELECTRA</th>' in page
    assert "paired two-sided t-test" in page


def test_intersection_rule_changes_means_and_counts(tmp_path: Path) -> None:
    metrics = make_metrics().assign(in_run=True)
    # monoELECTRA's run lacked dl19-1 (its 0.8 would then be a fill-in 0).
    lacking = (metrics["row"] == "monoelectra") & (metrics["query_id"] == "dl19-1")
    metrics.loc[lacking, ["in_run", "value"]] = [False, 0.0]
    outputs = outputs_in(tmp_path)
    judged = write_model_zoo(
        metrics, outputs, FIRST_STAGES, EVALUATION, "t", settings=Settings("bm25")
    )
    assert judged.loc["monoELECTRA", f"nDCG@10 {DL19}"] == pytest.approx(0.35)
    assert judged.loc["BM25", f"queries {DL19}"] == 2
    common = write_model_zoo(
        metrics,
        outputs,
        FIRST_STAGES,
        EVALUATION,
        "t",
        settings=Settings("bm25", rule="intersection"),
    )
    # Only dl19-0 is in every run: every row's DL19 mean is its dl19-0 value.
    assert common.loc["monoELECTRA", f"nDCG@10 {DL19}"] == pytest.approx(0.7)
    assert common.loc["BM25", f"nDCG@10 {DL19}"] == pytest.approx(0.4)
    assert common.loc["BM25", f"queries {DL19}"] == 1
    assert common.loc["BM25", f"queries {DL20}"] == 4  # DL20 runs lack nothing
    markdown = Path(outputs.md).read_text()
    assert "only the judged queries that every run of the column contains" in markdown
