"""The config schema: the demo validates, unknown keys and bad names are errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from tests.workflow_runner import REPO, copy_workflow, snakemake

SCHEMA = str(REPO / "schemas" / "config.schema.yaml")


def demo_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_demo_config_validates_and_gets_the_papers_defaults() -> None:
    config = demo_config()
    del config["first_stage"]["train_num_results"]
    validate(config, SCHEMA)
    assert config["first_stage"]["train_num_results"] == 200  # the paper's depth
    assert config["hard_negatives"]["seed"] == 42
    assert config["measures"] == ["nDCG@10", "RR@10", "AP@100"]


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda c: c.update(bogus=1), "bogus"),
        (lambda c: c["teacher"].update(nosie=0.5), "nosie"),
        (lambda c: c["models"][0].update(lr=0.1), "lr"),
        (lambda c: c["backbones"]["tiny-electra"]["tiny"].update(hidden=8), "hidden"),
    ],
)
def test_unknown_keys_are_errors_naming_the_key(edit, key: str) -> None:
    config = demo_config()
    edit(config)
    with pytest.raises(WorkflowError, match=f"'{key}' was unexpected"):
        validate(config, SCHEMA)


def test_unknown_loss_is_an_error() -> None:
    config = demo_config()
    config["models"][1]["loss"] = "rankent"
    with pytest.raises(WorkflowError, match="rankent"):
        validate(config, SCHEMA)


def test_model_starting_from_nothing_fails_before_anything_runs(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path)
    config = demo_config()
    config["models"][1]["start"] = "tiny-electra.stage-one"
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--dry-run")
    assert result.returncode != 0
    message = "models[tiny-electra.stage1.stage2-ranknet].start is 'tiny-electra.stage-one'"
    assert message in result.stdout + result.stderr
    assert not (workdir / "results").exists()


def test_given_first_stage_runs_replace_bm25(tmp_path: Path, shared_data: Path) -> None:
    """A published run enters the pipeline instead of BM25 (here the paper's DL19 run)."""
    workdir = copy_workflow(tmp_path)
    config = demo_config()
    published = shared_data / "trec-dl" / "runs" / "__bm25__msmarco-passage-trec-dl-2019-judged.run"
    config["first_stage"]["runs"] = {"dl19": str(published)}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--dry-run", "--printshellcmds")
    assert result.returncode == 0, result.stdout + result.stderr
    plan = result.stdout
    assert "results/runs/dl19/bm25.run" not in plan
    assert "results/runs/dl20/bm25.run" in plan
    assert f"input: {published}" in plan or str(published) in plan


@pytest.mark.parametrize(
    ("runs", "teacher_row"),
    [
        ({}, True),  # simulated everywhere
        ({"train": "zephyr-train.run"}, False),  # real for training, nothing to evaluate
        ({"train": "t.run", "dl19": "t19.run", "dl20": "t20.run"}, True),
    ],
)
def test_teacher_row_only_where_that_teacher_ran_on_every_set(
    tmp_path: Path, runs: dict[str, str], teacher_row: bool
) -> None:
    workdir = copy_workflow(tmp_path)
    config = demo_config()
    config["teacher"]["runs"] = runs
    for run in runs.values():
        (workdir / run).write_text("1000 Q0 5 1 100 rank\n")
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("results/metrics/dl19/simulated-teacher.tsv" in result.stdout) is teacher_row
