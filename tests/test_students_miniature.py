"""configs/students.yaml (on top of configs/paper.yaml) offline, shrunk in size: tiny
random backbones of each family stand in for the four hub students, built from the
miniature's corpus as the paper miniature builds its ELECTRAs (tests/paper_miniature.py).
The new students' models train (stage 1, then RankNet distillation), re-rank and are
evaluated; ELECTRA's rows are the paper's models, which the paper miniature runs
(tests/test_paper_miniature.py), so they are only planned here."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rank_distillm.experiment import from_config
from rank_distillm.model.tiny_backbone import build_tiny
from tests import paper_miniature
from tests.helpers import TINY, load_config
from tests.workflow_runner import REPO, copy_workflow, snakemake

pytestmark = pytest.mark.slow

#: The new students' backbones and the tiny family standing in for each.
STUDENTS = {
    "modernbert-base": "modernbert",
    "deberta-v3-base": "deberta-v2",
    "bert-base": "bert",
}
CONFIGS = ["configs/paper.yaml", "configs/students.yaml"]


def students_overrides(workdir: Path, paper_overrides: Path) -> Path:
    """The paper miniature's size overrides plus a tiny backbone of each student family
    and a few stage-1 steps per student."""
    overrides = yaml.safe_load(paper_overrides.read_text())
    texts = paper_miniature.passages_texts(workdir / ".irds/msmarco-passage/collection.tsv")
    for name, family in STUDENTS.items():
        folder = workdir / "miniature-models" / name
        settings = replace(TINY, family=family, vocab_size=700, max_position_embeddings=80)
        build_tiny(texts, settings, folder)
        overrides["backbones"][name] = {"hub": str(folder), "train_pairs_per_second": 100}
    for name in STUDENTS:
        overrides["models"][f"{name}.stage1"] = {"steps": 4}
        overrides["models"][f"{name}.stage1.rankzephyr.ranknet"] = {"epochs": 1}
    path = workdir / "students-miniature.yaml"
    path.write_text(yaml.safe_dump(overrides, sort_keys=False))
    return path


def test_students_train_rerank_and_are_rows_of_the_model_zoo(
    shared_data: Path, tmp_path: Path
) -> None:
    workdir = copy_workflow(tmp_path / "students")
    home = workdir / ".irds"
    overrides = students_overrides(workdir, paper_miniature.build(shared_data, workdir, home))
    config = load_config(
        [workdir / name for name in CONFIGS] + [overrides], REPO / "schemas/config.schema.yaml"
    )
    exp = from_config(config)
    distilled = [f"{name}.stage1.rankzephyr.ranknet" for name in STUDENTS]
    rows = [row.key for row in exp.rows]
    assert all(
        f"{name}.stage1" in rows and f"{name}.stage1.rankzephyr.ranknet" in rows
        for name in STUDENTS
    )
    assert exp.models["modernbert-base.stage1"].settings["learning_rate"] == 3.0e-5
    assert exp.models["deberta-v3-base.stage1.rankzephyr.ranknet"].settings["precision"] == "bf16"
    targets = [exp.metrics_file("dl19", "colbert", model) for model in distilled]
    result = snakemake(
        workdir,
        *targets,
        "--cores",
        "2",
        "--configfile",
        *CONFIGS,
        overrides.name,
        env={"IR_DATASETS_HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr[-6000:]
    for name, family in STUDENTS.items():
        for model in (f"{name}.stage1", f"{name}.stage1.rankzephyr.ranknet"):
            checkpoint = workdir / exp.checkpoint_dir(model)
            layout = json.loads((checkpoint / "config.json").read_text())
            assert (layout["model_type"], layout["backbone_model_type"]) == ("mono", family)
    for target in targets:
        metrics = pd.read_csv(workdir / target, sep="\t")
        assert len(metrics) > 0
