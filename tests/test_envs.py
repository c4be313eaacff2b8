"""envs/*.yaml (for `snakemake --sdm conda`) must pin what pyproject.toml pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from tests.workflow_runner import REPO


def normalise(requirement: str) -> str:
    name, _, version = requirement.partition("==")
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}"


#: envs/vllm.yaml (the generation rules' environment): what vLLM pins in place of the
#: package's versions, and vLLM itself. Nothing else may differ.
VLLM_OVERRIDES = {
    "vllm": "vllm==0.33.0",
    "torch": "torch==2.14.0",
    "transformers": "transformers==5.20.2",
    "numpy": "numpy==2.3.5",
}


def env_pins(env_file: Path) -> set[str]:
    env = yaml.safe_load(env_file.read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    python = next(d for d in env["dependencies"] if str(d).startswith("python="))
    assert python == "python=3.11", env_file.name
    return {normalise(r) for r in pip if "==" in r}


def test_conda_env_pins_match_the_package_pins() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pinned = {normalise(r) for r in project["dependencies"]}
    assert all("==" in r for r in pinned), "every dependency is pinned"
    for env_file in sorted((REPO / "envs").glob("*.yaml")):
        if env_file.name != "vllm.yaml":
            assert env_pins(env_file) == pinned, env_file.name
    by_name = {pin.partition("==")[0]: pin for pin in pinned}
    by_name.update({name: normalise(pin) for name, pin in VLLM_OVERRIDES.items()})
    assert env_pins(REPO / "envs" / "vllm.yaml") == set(by_name.values())


def test_only_the_generation_rules_use_the_vllm_env() -> None:
    users = []
    for rules in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"^rule ", rules.read_text(), flags=re.MULTILINE)[1:]:
            if '"../envs/vllm.yaml"' in block:
                users.append(block.split(":", 1)[0])
    assert users == ["generate_teacher_run", "generate_teacher_shard"]


def test_every_rule_names_a_conda_env_that_exists() -> None:
    for rules in sorted((REPO / "rules").glob("*.smk")):
        for env in re.findall(r'conda:\s*\n\s*"\.\./(envs/[^"]+)"', rules.read_text()):
            assert (REPO / env).is_file(), (rules.name, env)
