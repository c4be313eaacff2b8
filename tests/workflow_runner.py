"""Running the real workflow in a temporary copy, with isolated caches."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "config.yaml", "configs", "rules", "schemas", "workflow", "envs")


def copy_workflow(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        else:
            shutil.copy2(source, target / name)
    return target


def isolated_env(workdir: Path) -> dict[str, str]:
    """The environment for a run in ``workdir``: offline, caches inside ``workdir``."""
    cache = workdir / ".cache"
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "XDG_CACHE_HOME": str(cache),
        "IR_DATASETS_HOME": str(cache / "ir_datasets"),
        "HF_HOME": str(cache / "hf"),
        "MPLCONFIGDIR": str(cache / "matplotlib"),
    }


def snakemake(
    workdir: Path, *args: str, timeout: int = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run Snakemake in ``workdir`` with private caches (``env`` adds or overrides)."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env={**isolated_env(workdir), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
