"""Test-wide isolation: no network, caches in a private temporary folder."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci import REPO, shared_folder, skip_or_fail_in_ci

_CACHE = Path(tempfile.mkdtemp(prefix="rank-distillm-tests-"))
# Set before any test module imports ir_datasets, transformers or matplotlib.
os.environ["HF_HUB_OFFLINE"] = "1"  # a hub lookup would retry for ~45 s
os.environ.setdefault("IR_DATASETS_HOME", str(_CACHE / "ir_datasets"))
os.environ.setdefault("HF_HOME", str(_CACHE / "hf"))
os.environ.setdefault("MPLCONFIGDIR", str(_CACHE / "matplotlib"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED = shared_folder()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data beside the repository; skipped where absent, but
    never in CI (CI=true), where its absence is a failure."""
    data = SHARED / "data"
    if not data.is_dir():
        skip_or_fail_in_ci(f"{data} is absent")
    return data


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole demo workflow, run once per session in a temporary folder (about 3
    minutes); tests that need its files share it and must not change them."""
    from tests.workflow_runner import copy_workflow, snakemake

    workdir = copy_workflow(tmp_path_factory.mktemp("demo"))
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir


@pytest.fixture
def torch_single_thread() -> Iterator[None]:
    """One torch thread: tiny models train 25x faster than on two busy cores."""
    from tests.helpers import one_torch_thread

    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def backbone_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ELECTRA backbone with its tokenizer (see tests.helpers.TINY)."""
    from tests.helpers import build_backbone

    return build_backbone(tmp_path_factory.mktemp("backbone"))


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """A running SLURM cluster (`.ci/slurm-cluster.sh start`, which `.ci/run` calls) and
    the executor plugin; skipped where either is missing, but never in CI (CI=true).
    Returns the node line of `sinfo`."""
    problem = None
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        problem = "snakemake-executor-plugin-slurm is not installed (pip install -e '.[test]')"
    else:
        status = subprocess.run(
            ["bash", str(REPO / ".ci" / "slurm-cluster.sh"), "status"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if status.returncode == 0:
            return status.stdout.strip()
        problem = status.stderr.strip() or f"slurm-cluster.sh status exited {status.returncode}"
    skip_or_fail_in_ci(problem)
