"""envs/*.yaml (for `snakemake --sdm conda`) must pin what pyproject.toml pins."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests.workflow_runner import REPO


def normalise(requirement: str) -> str:
    name, _, version = requirement.partition("==")
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}"


def test_conda_env_pins_match_the_package_pins() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pinned = {normalise(r) for r in project["dependencies"]}
    assert all("==" in r for r in pinned), "every dependency is pinned"
    for env_file in sorted((REPO / "envs").glob("*.yaml")):
        env = yaml.safe_load(env_file.read_text())
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        env_pins = {normalise(r) for r in pip if "==" in r}
        assert env_pins == pinned, env_file.name
        python = next(d for d in env["dependencies"] if str(d).startswith("python="))
        assert python == "python=3.11"


def test_every_rule_names_a_conda_env_that_exists() -> None:
    for rules in sorted((REPO / "rules").glob("*.smk")):
        for env in re.findall(r'conda:\s*\n\s*"\.\./(envs/[^"]+)"', rules.read_text()):
            assert (REPO / env).is_file(), (rules.name, env)
