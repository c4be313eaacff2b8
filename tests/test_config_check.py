"""Config errors a person can read: the key path, what is wrong, what is allowed, in a
few lines, whatever the schema validator found (and the same defaults as Snakemake's)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from rank_distillm.config.check import ConfigSchemaError, key_path, validate_config
from tests.workflow_runner import REPO, copy_workflow, snakemake

SCHEMA = REPO / "schemas" / "config.schema.yaml"


def demo_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def problems(config: dict) -> list[str]:
    with pytest.raises(ConfigSchemaError) as caught:
        validate_config(config, SCHEMA)
    return str(caught.value).splitlines()


@pytest.mark.parametrize("preset", ["config.yaml", "configs/paper.yaml"])
def test_defaults_equal_snakemakes(preset: str) -> None:
    config = yaml.safe_load((REPO / preset).read_text())
    ours, theirs = copy.deepcopy(config), copy.deepcopy(config)
    validate_config(ours, SCHEMA)
    validate(theirs, str(SCHEMA))
    assert ours == theirs
    assert ours["compute"]["train_threads"] == 2  # a default was filled in


def test_an_unknown_key_names_the_closest_valid_one() -> None:
    config = demo_config()
    config["training_defaults"]["learning_rat"] = 0.1
    [line] = problems(config)
    assert line.startswith(
        "training_defaults.learning_rat: unknown key (did you mean 'learning_rate'?); "
        "allowed: loss, sampler, negatives,"
    )


def test_a_value_outside_an_enum_lists_the_allowed_ones() -> None:
    config = demo_config()
    config["models"]["tiny-electra.stage1"]["loss"] = "rankent"
    assert problems(config) == [
        "models.tiny-electra.stage1.loss: 'rankent' is not allowed (did you mean 'ranknet'?); "
        "allowed: infonce, ranknet, kl_divergence, margin_mse, approx_ndcg, adr_mse, listnet"
    ]


def test_empty_evaluation_says_what_the_key_holds_in_one_line() -> None:
    config = demo_config()
    config["evaluation"] = {}
    [line] = problems(config)
    assert line.startswith("evaluation: must name at least 1 entry (evaluation sets by name")
    assert len(line) < 200


def test_empty_models_and_backbones_are_an_evaluation_only_experiment() -> None:
    config = demo_config()
    config["models"], config["backbones"] = {}, {}
    del config["train_dataset"]
    validate_config(config, SCHEMA)


def test_missing_keys_wrong_types_and_ranges_each_get_a_line() -> None:
    config = demo_config()
    del config["evaluation"]["dl19"]["label"]
    config["training_defaults"]["warmup_steps"] = "fifty"
    config["rerank"]["batch_size"] = 0
    assert problems(config) == [
        "evaluation.dl19: missing the key 'label'",
        "rerank.batch_size: 0 is out of range: it must be at least 1",
        "training_defaults.warmup_steps: expected an integer, got 'fifty'",
    ]


def test_bad_names_and_list_positions_are_located() -> None:
    config = demo_config()
    config["tirex"]["tasks"][1]["grup"] = "x"
    config["backbones"]["tiny electra"] = config["backbones"].pop("tiny-electra")
    lines = problems(config)
    assert "backbones: 'tiny electra' must match '^[A-Za-z0-9][A-Za-z0-9._+-]*$'" in lines[0]
    assert lines[1].startswith("tirex.tasks[1].grup: unknown key (did you mean 'group'?)")


def test_many_problems_are_counted_not_all_listed() -> None:
    config = demo_config()
    for number in range(8):
        config[f"bogus{number}"] = 1
    lines = problems(config)
    assert len(lines) == 6 and lines[-1] == "... and 3 more"


def test_key_path() -> None:
    assert key_path([]) == "(top level)"
    assert key_path(["tirex", "tasks", 2, "id"]) == "tirex.tasks[2].id"


def test_the_workflow_prints_a_few_lines_not_the_schema(tmp_path: Path) -> None:
    """Tried as a new user would: `models: {}` used to print ~50 lines of schema (empty
    models are an evaluation-only experiment now; empty evaluation sets are not)."""
    workdir = copy_workflow(tmp_path)
    config = demo_config()
    config["evaluation"] = {}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = snakemake(workdir, "--dry-run")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "config: evaluation: must name at least 1 entry" in output
    assert "minProperties" not in output and "additionalProperties" not in output
    assert len(output.strip().splitlines()) <= 6, output
