"""The whole demo workflow, run for real in a temporary folder (about 3 minutes; the
`demo` fixture in conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rank_distillm.data import trec as trec_io
from rank_distillm.evaluation import measures as evaluate
from tests.workflow_runner import copy_workflow, snakemake

DATASETS = ("DL19 (demo)", "DL20 (demo)")
BM25 = "BM25"
STAGE1 = "monoELECTRA-tiny, stage 1 (InfoNCE)"
DISTILLED = "monoELECTRA-tiny, stage 1 + distillation (RankNet)"


@pytest.fixture(scope="module")
def zoo(demo: Path) -> pd.DataFrame:
    return pd.read_csv(demo / "results" / "demo" / "model-zoo.csv", index_col="system")


def test_model_zoo_has_every_system_and_measure(demo: Path, zoo: pd.DataFrame) -> None:
    assert list(zoo.index) == [BM25, "Simulated teacher (qrels + noise)", STAGE1, DISTILLED]
    for measure in ("nDCG@10", "RR@10", "MAP@100"):
        for dataset in DATASETS:
            values = zoo[f"{measure} {dataset}"]
            assert values.between(0, 1).all(), (measure, dataset)
    assert list(zoo["queries DL19 (demo)"]) == [43] * 4
    assert list(zoo["queries DL20 (demo)"]) == [54] * 4
    markdown = (demo / "results" / "demo" / "model-zoo.md").read_text()
    assert f"| {DISTILLED} |" in markdown
    png = (demo / "results" / "demo" / "model-zoo.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_tirex_column_and_tables_are_computed_by_the_demo(demo: Path, zoo: pd.DataFrame) -> None:
    """The demo's TIREx part: two generated corpora, three tasks, two groups."""
    root = demo / "results" / "demo"
    table = pd.read_csv(root / "tirex.csv", index_col="system")
    assert list(table.index) == [BM25, STAGE1, DISTILLED]  # the teacher is not on TIREx
    figures = [
        "demo-news",
        "demo-args",
        "mean over groups",
        "mean over tasks",
        "geometric mean over groups",
    ]
    assert list(table.columns) == [*figures, "sig demo-news", "sig demo-args"]  # markers
    assert table.loc[BM25, figures].between(0.3, 0.7).all()  # far from the ceiling here
    groups_mean = table[["demo-news", "demo-args"]].mean(axis=1)
    assert table["mean over groups"].to_numpy() == pytest.approx(groups_mean.to_numpy(), abs=1e-4)
    # The model zoo's TIREx column is the mean over groups; the teacher has none.
    assert zoo.loc[DISTILLED, "nDCG@10 TIREx"] == pytest.approx(
        table.loc[DISTILLED, "mean over groups"], abs=1e-4
    )
    assert pd.isna(zoo.loc["Simulated teacher (qrels + noise)", "nDCG@10 TIREx"])
    tasks = pd.read_csv(root / "tirex-tasks.csv")
    assert set(tasks["task"]) == {"demo-news/2019", "demo-news/2020", "demo-args/test"}
    markdown = (root / "tirex.md").read_text()
    assert "TIREx: 3 of 3 tasks in 2 of 2 corpus groups." in markdown
    assert (root / "tirex.png").read_bytes().startswith(b"\x89PNG")


def test_distilled_model_beats_bm25_on_both_sets(zoo: pd.DataFrame) -> None:
    for dataset in DATASETS:
        column = f"nDCG@10 {dataset}"
        assert zoo.loc[DISTILLED, column] > zoo.loc[BM25, column], column


def test_the_ordering_that_holds_over_seeds_and_thread_counts(zoo: pd.DataFrame) -> None:
    """The figures move with the seed, and without portable numerics with the CPU and
    the thread count (README: the spread); BM25 < stage 1 < stage 1 + distillation on
    the DL mean held in every run measured."""
    mean = zoo["nDCG@10 mean"]
    assert mean[BM25] < mean[STAGE1] < mean[DISTILLED]


def markdown_tables(text: str) -> list[list[str]]:
    """Every Markdown table in ``text``, as its lines (header, rule, rows)."""
    tables: list[list[str]] = []
    current: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line.rstrip())
        elif current:
            tables.append(current)
            current = []
    return tables


def test_readme_shows_the_demo_table_a_fresh_clone_makes(demo: Path) -> None:
    """README's demo table is this run's model-zoo.md table, cell for cell (portable
    numerics make it the same on every x86-64 CPU with AVX2)."""
    from tests.workflow_runner import REPO

    (zoo,) = markdown_tables((demo / "results" / "demo" / "model-zoo.md").read_text())
    readme = REPO.joinpath("README.md").read_text()
    section = readme[readme.index("## What the demo does") : readme.index("## What lands in")]
    shown = [table for table in markdown_tables(section) if table[0] == zoo[0]]
    assert len(shown) == 1, f"README's demo section needs one table headed {zoo[0]!r}"
    assert shown[0] == zoo


def test_table_numbers_are_computed_from_the_runs(demo: Path, zoo: pd.DataFrame) -> None:
    """Recompute two cells from the run files and qrels the workflow wrote."""
    data = demo / "results" / "demo" / "data" / "rank-distillm-demo"
    qrels = trec_io.read_qrels(data / "qrels-dl19.txt")
    for system, label in (("bm25", BM25), ("tiny-electra.stage1.stage2-ranknet", DISTILLED)):
        run = trec_io.read_run(
            demo / "results" / "demo" / "runs" / "dl19" / "bm25" / f"{system}.run"
        )
        assert run.groupby("query_id")["rank"].min().eq(1).all()  # TREC ranks are 1-based
        value = evaluate.aggregate(evaluate.evaluate_run(run, qrels, ["nDCG@10"]))["value"][0]
        assert value == pytest.approx(zoo.loc[label, "nDCG@10 DL19 (demo)"], abs=5e-5)


def test_checkpoints_use_the_lightning_ir_layout(demo: Path) -> None:
    checkpoint = (
        demo / "results" / "demo" / "models" / "tiny-electra.stage1.stage2-ranknet" / "checkpoint"
    )
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["backbone_model_type"] == "electra"
    assert config["model_type"] == "mono"
    assert (checkpoint / "model.safetensors").is_file()
    losses = pd.read_csv(checkpoint.parent / "loss.csv")
    assert list(losses.columns) == ["step", "epoch", "loss", "learning_rate", "seconds"]


def test_every_rule_wrote_its_log(demo: Path) -> None:
    logs = sorted((demo / "results" / "demo" / "logs").rglob("*.log"))
    assert len(logs) == 39  # one per job of the demo's DAG, `all` excepted
    assert (
        "BM25"
        in (demo / "results" / "demo" / "logs" / "retrieve" / "dl19" / "bm25.log").read_text()
    )


def test_second_run_has_nothing_to_do(demo: Path) -> None:
    result = snakemake(demo, "--cores", "2", "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ("1000 Q0 17 1 100", "expected 6 whitespace-separated columns"),
        ("1000 Q0 17 first 100 rank", "rank 'first' is not an integer"),
    ],
)
def test_malformed_teacher_run_fails_naming_file_and_line(
    tmp_path: Path, bad_line: str, expected: str
) -> None:
    workdir = copy_workflow(tmp_path)
    (workdir / "teacher.run").write_text(
        "1000 Q0 5 1 100 rank\n1000 Q0 9 2 99 rank\n" + bad_line + "\n"
    )
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    teacher = config["teachers"]["simulated-teacher"]
    del teacher["simulated"]
    teacher.update(train_run="teacher.run", queries=None)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    table = (
        workdir / "results" / "demo" / "training" / "teachers" / "simulated-teacher.allx30.parquet"
    )
    result = snakemake(workdir, "--cores", "1", str(table.relative_to(workdir)))
    assert result.returncode != 0
    log = (
        workdir / "results" / "demo" / "logs" / "teacher" / "table-simulated-teacher.allx30.log"
    ).read_text()
    assert f"teacher.run:3: {expected}" in log
    assert f"teacher.run:3: {expected}" in result.stderr
    assert not table.exists()


def test_lint_reports_nothing() -> None:
    from tests.workflow_runner import REPO

    result = snakemake(REPO, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stderr


def test_demo_is_an_ir_datasets_collection_with_scoreddocs(demo: Path) -> None:
    """Later stages and users read the demo through ir_datasets, BM25 runs included."""
    import ir_datasets

    from rank_distillm.data import datasets

    manifest = demo / "results" / "demo" / "data" / "rank-distillm-demo" / "manifest.json"
    dataset = datasets.load("rank-distillm-demo/dl20", [manifest])
    assert isinstance(dataset, ir_datasets.datasets.base.Dataset)
    assert len(list(dataset.queries_iter())) == 54
    assert {qrel.relevance for qrel in dataset.qrels_iter()} == {0, 1, 2, 3}
    run = trec_io.read_run(demo / "results" / "demo" / "runs" / "dl20" / "bm25" / "bm25.run")
    first = next(iter(dataset.scoreddocs_iter()))
    assert (first.query_id, first.doc_id) == (run["query_id"][0], run["doc_id"][0])
    assert first.score == pytest.approx(run["score"][0])
    assert sum(1 for _ in dataset.scoreddocs_iter()) == len(run)


def planned_jobs(plan: str) -> dict[str, int]:
    table = plan[plan.index("Job stats:") :].split("\n\n")[0]
    return {
        line.split()[0]: int(line.split()[1])
        for line in table.splitlines()[3:]
        if line.split()[0] != "total"
    }


def test_a_changed_config_value_reruns_exactly_the_affected_jobs(demo: Path) -> None:
    """The distillation's learning rate: that model and everything downstream of it, nothing
    upstream (data, BM25, tables, stage 1) and not the other models' re-ranking."""
    override = demo / "lr.yaml"
    override.write_text("models:\n  tiny-electra.stage1.stage2-ranknet: {learning_rate: 2.0e-4}\n")
    result = snakemake(demo, "--dry-run", "--configfile", "config.yaml", override.name)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result.stdout)
    assert jobs["train_model"] == 1 and jobs["rerank"] == 1 and jobs["evaluate_reranker"] == 1
    assert "wildcards: model=tiny-electra.stage1.stage2-ranknet" in result.stdout
    assert "wildcards: model=tiny-electra.stage1\n" not in result.stdout
    for upstream in ("demo_data", "bm25_index", "bm25_run", "teacher_table", "tiny_backbone"):
        assert upstream not in jobs, upstream
    assert "model_zoo" in jobs  # the table shows the new model


def test_another_experiment_never_touches_the_demos_outputs(demo: Path) -> None:
    """A second config with its own name plans every job under results/<its name>/."""
    override = demo / "other.yaml"
    override.write_text("experiment: demo-variant\n")
    result = snakemake(demo, "--dry-run", "--configfile", "config.yaml", override.name)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = [
        path
        for line in result.stdout.splitlines()
        if line.strip().startswith("output:")
        for path in line.split(":", 1)[1].replace(",", " ").split()
    ]
    assert outputs and all(path.startswith("results/demo-variant/") for path in outputs)
