"""The config schema and the workflow's start: bad configs fail before any job runs, and
the paper's config builds its plan offline."""

from __future__ import annotations

import re
import time
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
    del config["first_stages"]["bm25"]["train_depth"]
    validate(config, SCHEMA)
    assert config["first_stages"]["bm25"]["train_depth"] == 200  # the paper's depth
    assert config["hard_negatives"]["seed"] == 42
    assert config["hard_negatives"]["relevance_level"] == 1  # every label > 0, as the paper
    assert config["measures"] == ["nDCG@10", "RR@10", "AP@100"]
    assert config["compute"]["train_threads"] == 2


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda c: c.update(bogus=1), "bogus"),
        (lambda c: c["teachers"]["simulated-teacher"].update(nosie=0.5), "nosie"),
        (lambda c: c["models"]["tiny-electra.stage1"].update(lr=0.1), "lr"),
        (lambda c: c["backbones"]["tiny-electra"]["tiny"].update(hidden=8), "hidden"),
        (lambda c: c["evaluation"]["dl19"].update(relevance=2), "relevance"),
    ],
)
def test_unknown_keys_are_errors_naming_the_key(edit, key: str) -> None:
    config = demo_config()
    edit(config)
    with pytest.raises(WorkflowError, match=f"'{key}' was unexpected"):
        validate(config, SCHEMA)


def test_unknown_loss_is_an_error() -> None:
    config = demo_config()
    config["models"]["tiny-electra.stage1.stage2-ranknet"]["loss"] = "rankent"
    with pytest.raises(WorkflowError, match="rankent"):
        validate(config, SCHEMA)


def test_stage_1_relevance_level_below_one_is_an_error() -> None:
    config = demo_config()
    config["hard_negatives"]["relevance_level"] = 0
    with pytest.raises(WorkflowError, match="0 is less than the minimum of 1"):
        validate(config, SCHEMA)


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def test_model_starting_from_nothing_fails_before_anything_runs(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path)
    config = demo_config()
    config["models"]["tiny-electra.stage1.stage2-ranknet"]["start"] = "tiny-electra.stage-one"
    write_config(workdir, config)
    result = snakemake(workdir, "--dry-run")
    assert result.returncode != 0
    message = (
        "config: models.tiny-electra.stage1.stage2-ranknet.start: 'tiny-electra.stage-one' "
        "is neither a backbone, a checkpoint nor a model (did you mean 'tiny-electra.stage1'?)"
    )
    assert message in result.stdout + result.stderr
    assert not (workdir / "results").exists()


def test_given_first_stage_runs_replace_bm25(tmp_path: Path, shared_data: Path) -> None:
    """A published run enters the pipeline instead of BM25 (here the paper's DL19 run)."""
    workdir = copy_workflow(tmp_path)
    config = demo_config()
    published = shared_data / "trec-dl" / "runs" / "__bm25__msmarco-passage-trec-dl-2019-judged.run"
    config["first_stages"]["bm25"]["runs"] = {"dl19": str(published)}
    write_config(workdir, config)
    result = snakemake(workdir, "--dry-run", "--printshellcmds")
    assert result.returncode == 0, result.stdout + result.stderr
    plan = result.stdout
    assert "results/demo/runs/dl19/bm25/bm25.run" not in plan
    assert "results/demo/runs/dl20/bm25/bm25.run" in plan
    assert str(published) in plan


@pytest.mark.parametrize(
    ("spec", "teacher_cells"),
    [
        ({"simulated": {"noise": 1.0}}, 2),  # simulated everywhere
        ({"train_run": "zephyr-train.run"}, 0),  # real for training, nothing to evaluate
        (
            {
                "train_run": "t.run",
                "evaluation_runs": {"bm25": {"dl19": "t19.run", "dl20": "t20.run"}},
            },
            2,
        ),
    ],
)
def test_teacher_cells_only_where_that_teacher_ran(
    tmp_path: Path, spec: dict, teacher_cells: int
) -> None:
    workdir = copy_workflow(tmp_path)
    config = demo_config()
    teacher = config["teachers"]["simulated-teacher"]
    del teacher["simulated"]
    teacher.update(spec)
    for path in [spec.get("train_run"), *spec.get("evaluation_runs", {}).get("bm25", {}).values()]:
        if path:
            (workdir / path).write_text("1000 Q0 5 1 100 rank\n")
    write_config(workdir, config)
    result = snakemake(workdir, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    cells = re.findall(r"results/demo/metrics/dl\d\d/bm25/simulated-teacher\.tsv", result.stdout)
    assert len(set(cells)) == teacher_cells


def test_paper_plan_builds_offline_with_every_stage(tmp_path: Path) -> None:
    """`snakemake -n --configfile configs/paper.yaml`: the paper's jobs, for base and large,
    GPU resources on training and re-ranking, in a few seconds and without network."""
    workdir = copy_workflow(tmp_path)
    started = time.perf_counter()
    result = snakemake(workdir, "--dry-run", "--configfile", "configs/paper.yaml")
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stdout + result.stderr
    counts = job_counts(result.stdout)
    # Downloads: ColBERTv2's training run, RankZephyr's and the authors' archive of
    # evaluation runs, whose first stages (BM25 on DL19, DL20 and the TIREx tasks, ColBERTv2
    # on DL19 and DL20) are re-ranked: no BM25 index, no BM25 run. TIREx: 11 tasks (the 18
    # on licensed corpora are skipped) on 8 corpora.
    assert counts == {
        "download": 3,
        "published_runs": 1,
        "published_ids_mapped": 1,  # Cranfield's first stage with ir_datasets' query ids
        "published_metrics": 1,
        "published_tables": 1,
        "docstore": 1 + 8,  # MS MARCO and the TIREx corpora
        "hard_negative_table": 1,
        "teacher_table": 1,
        "train_model": 6,  # base: stage 1, +RankNet, +ADR-MSE, distillation only; large: 2
        # One job per model and published checkpoint for all its cells (4 DL + 11 TIREx):
        "rerank": 8,
        "evaluate_reranker": 8,
        "evaluate": 4 + 11,  # the first stage's cells
        "model_zoo": 1,
        "per_query_plots": 1,
        "loss_curve": 6,  # one per trained model
        "benchmark_summary": 1,
        "environment": 1,
        "tirex_tables": 1,
        "model_card": 6,  # a hub model card beside each trained checkpoint
        "all": 1,
    }
    assert seconds < 30  # the test machine is shared; on an idle one it takes ~2 s
    jobs = parse_jobs(result.stdout)
    for job in jobs:
        if job["rule"] in ("train_model", "rerank"):
            assert "gpu=1" in job["resources"], job
            assert "mem_mb=" in job["resources"] and "runtime=" in job["resources"]
        elif job["rule"].startswith(("evaluate", "model_zoo", "download", "published")):
            assert "gpu=" not in job["resources"], job
    large = next(
        j for j in jobs if j["rule"] == "train_model" and "electra-large.stage1\n" in j["text"]
    )
    assert (
        "runtime=286" in large["resources"]
    )  # 20,000 x 32 x 8 pairs at 500 pairs/s, x1.5 + 30 min


def test_paper_ablation_grid_adds_its_models(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path)
    (workdir / "ablations.yaml").write_text("ablations: {enabled: true}\n")
    result = snakemake(workdir, "--dry-run", "--configfile", "configs/paper.yaml", "ablations.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    counts = job_counts(result.stdout)
    # 13 new models: the paper's 3 query counts, depths 10/20/50, single and dual on the
    # BM25 teacher data; beyond the paper, 4 more losses and large without stage 1. The
    # rest (10k x 100, ADR-MSE, single on ColBERTv2 data) reuse main models.
    assert counts["train_model"] == 6 + 13
    assert counts["teacher_table"] == 1 + 3 + 3 + 1
    # RankZephyr's BM25 run, and the authors' depth-10 sub-sample the depth-10 table must equal.
    assert counts["download"] == 3 + 2


def job_counts(plan: str) -> dict[str, int]:
    table = plan[plan.index("Job stats:") :].split("\n\n")[0]
    counts = {}
    for line in table.splitlines()[3:]:
        name, count = line.split()
        if name != "total":
            counts[name] = int(count)
    return counts


def parse_jobs(plan: str) -> list[dict[str, str]]:
    jobs = []
    for block in plan.split("\nrule ")[1:] + plan.split("\nlocalrule ")[1:]:
        name = block.split(":", 1)[0].strip()
        resources = next((line for line in block.splitlines() if "resources:" in line), "")
        jobs.append({"rule": name, "resources": resources, "text": block})
    return jobs


def generated_teacher_config(**generate: object) -> dict:
    """The demo with its distilled teacher generated by an LLM (24 queries x depth 10)."""
    config = demo_config()
    config["teachers"]["llm"] = {
        "label": "LLM",
        "first_stage": "bm25",
        "queries": 24,
        "depth": 10,
        "generate": {"model": "tiny-lm", "window": 5, "stride": 3, **generate},
    }
    model = config["models"]["tiny-electra.stage1.stage2-ranknet"]
    model["teacher"] = "llm"
    model.pop("queries", None)  # every query the generated run holds
    return config


def test_sharded_generation_is_one_gpu_job_per_shard_then_a_merge(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path)
    config = generated_teacher_config(batch_size=8, shards=3, windows_per_second=0.01)
    write_config(workdir, config)
    result = snakemake(workdir, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    counts = job_counts(result.stdout)
    # Shards of the training run; the evaluation sets (DL19, DL20) stay one job each.
    assert counts["generate_teacher_shard"] == 3 and counts["merge_teacher_shards"] == 1
    assert counts["generate_teacher_run"] == 2
    shards = [job for job in parse_jobs(result.stdout) if job["rule"] == "generate_teacher_shard"]
    for job in shards:
        # 8 queries x 3 windows (depth 10, window 5, stride 3) at 0.01 windows/s:
        # 2,400 s x 1.5 = 60 min, + 30 min to start.
        assert "gpu=1" in job["resources"] and "runtime=90" in job["resources"], job
    merge = next(job for job in parse_jobs(result.stdout) if job["rule"] == "merge_teacher_shards")
    assert "gpu=" not in merge["resources"]
    for index in (1, 2, 3):
        assert f"results/demo/runs/train/bm25/llm.shards/{index}-of-3.run" in merge["text"]


def test_more_shards_than_blocks_of_queries_fail_before_anything_runs(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path)
    write_config(workdir, generated_teacher_config(batch_size=16, shards=3))
    result = snakemake(workdir, "--dry-run")
    assert result.returncode != 0
    message = (
        "config: teachers.llm.generate: 24 queries in blocks of batch_size 16 make 2 blocks, "
        "fewer than the 3 shards: use shards <= 2 (or a smaller batch_size)"
    )
    assert message in result.stdout + result.stderr
    assert not (workdir / "results").exists()
