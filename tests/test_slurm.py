"""The workflow on a real SLURM cluster through profiles/slurm, and the two profiles.

The cluster is `.ci/slurm-cluster.sh`: one node on 127.0.0.1 with 2 CPUs, one fake GPU
and no accounting database; `.ci/run` starts it before pytest and stops it afterwards.
Snakemake runs under `timeout -s INT` (a hung Snakemake ignores SIGTERM), so a hang
fails the test instead of stalling CI.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from rank_distillm.data import trec as trec_io
from tests.workflow_runner import REPO, copy_workflow, isolated_env, snakemake

GPU_RULES = {"train_model", "rerank", "generate_teacher_run", "generate_teacher_shard"}
# What the test cluster needs on top of profiles/slurm; everything else is the profile.
TEST_CLUSTER = (
    "--workflow-profile",
    "profiles/slurm",
    # No accounting database here, so no sacct (MinJobAge is an hour: squeue works).
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--slurm-keep-successful-logs",  # for reading a failed test's jobs afterwards
)
# The documented switch from `--gpus` to `--gres`, on one of the two GPU rules.
GRES_SWITCH = ("--set-resources", "rerank:gpu=0", "rerank:gres='gpu:1'")
DEMO_LIMIT_S = 1800  # far above the run on 2 idle cores: it only has to catch a hang
FAILURE_LIMIT_S = 300
SHARDED_LIMIT_S = 900
# A tqdm progress line of the training engine with at least one step done.
TRAINING_STEP = re.compile(r"training: .*\| *[1-9]\d*/\d+ ")


def slurm_workdir(target: Path) -> Path:
    workdir = copy_workflow(target)
    shutil.copytree(REPO / "profiles", workdir / "profiles")
    return workdir


def seed_first_stage(demo: Path, workdir: Path) -> None:
    """Copy the local demo's data, indexes and BM25 runs (with their logs) into
    ``workdir``, so a SLURM run schedules what comes after them: the data and retrieval
    rules are the same jobs in every test here, and the failure test already runs data
    jobs on SLURM."""
    root = Path("results/demo")
    folders = [root / "data", root / "index", root / "logs/data", root / "logs/retrieve"]
    folders += [root / "benchmarks/data", root / "benchmarks/retrieve"]
    for folder in folders:
        if (demo / folder).is_dir():
            shutil.copytree(demo / folder, workdir / folder, dirs_exist_ok=True)
    for run in (demo / root / "runs").glob("*/bm25/bm25.run"):
        target = workdir / run.relative_to(demo)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run, target)


def model_zoo_csv(workdir: Path) -> Path:
    """The one model-zoo table a run wrote, wherever the layout puts it under results/."""
    tables = sorted((workdir / "results").rglob("model-zoo.csv"))
    assert len(tables) == 1, tables
    return tables[0]


def start_snakemake(workdir: Path, *args: str, limit_s: int) -> subprocess.Popen[bytes]:
    """Snakemake in the background, output to workdir/snakemake.out, stopped with
    SIGINT after ``limit_s`` seconds (and killed 30 s later if still running)."""
    out = (workdir / "snakemake.out").open("wb")
    command = ["timeout", "-s", "INT", "-k", "30", str(limit_s)]
    return subprocess.Popen(
        [*command, sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env=isolated_env(workdir),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def finish(process: subprocess.Popen[bytes], workdir: Path, limit_s: int) -> tuple[int, str]:
    returncode = process.wait(timeout=limit_s + 60)
    return returncode, (workdir / "snakemake.out").read_text()


def scontrol_job(job_id: str) -> dict[str, str]:
    """SLURM's record of a job (kept for MinJobAge after it ends), as key -> value."""
    line = subprocess.run(
        ["scontrol", "show", "job", "--details", "--oneliner", job_id],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(field.split("=", 1) for field in line.split() if "=" in field)


def submitted_jobs(output: str) -> dict[str, dict[str, str]]:
    """Every SLURM job Snakemake reports having submitted, with SLURM's record of it."""
    ids = re.findall(r"has been submitted with SLURM jobid (\d+)", output)
    assert len(ids) == len(set(ids)), ids
    return {job_id: scontrol_job(job_id) for job_id in ids}


def rule_of(job: dict[str, str]) -> str:
    """The plugin names the rule in the job's comment: rule_<rule>[_wildcards_<values>]."""
    match = re.fullmatch(r"rule_(.+?)(?:_wildcards_.*)?", job["Comment"])
    assert match, job["Comment"]
    return match.group(1)


def planned_slurm_jobs(output: str) -> Counter[str]:
    """Jobs per rule in the run's DAG (Snakemake's "Job stats" table), less the jobs it
    ran on this machine (local rules, which it announces as "localrule <name>:")."""
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    rows = re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.MULTILINE)
    planned = Counter({rule: int(count) for rule, count in rows})
    local = Counter(re.findall(r"^localrule (\w+):$", output, flags=re.MULTILINE))
    return planned - local


def squeue(*fields: str) -> list[list[str]]:
    """Jobs SLURM lists now (all states), one list of the given squeue fields each."""
    out = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--format=" + "|".join(fields)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split("|") for line in out.splitlines()]


def wait_for(condition, what: str, timeout_s: float, process: subprocess.Popen[bytes]):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert process.poll() is None, f"Snakemake ended while waiting for {what}"
        time.sleep(1)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def preempt_first_training_job(workdir: Path, process: subprocess.Popen[bytes]) -> str:
    """Requeue the first training job once its log shows training steps, as SLURM does
    when it preempts a job with PreemptMode=REQUEUE: the job is killed and queued again
    under the same id. Returns the job id."""

    def running_training_job() -> tuple[str, str] | None:
        for job_id, state, comment in squeue("%i", "%T", "%k"):
            if comment.startswith("rule_train_model_wildcards_") and state == "RUNNING":
                return job_id, comment.split("_wildcards_", 1)[1]
        return None

    job_id, model = wait_for(running_training_job, "a running training job", 900, process)

    def training_steps_logged() -> bool:
        logs = list((workdir / "results").rglob(f"train/{model}.log"))
        return bool(logs) and TRAINING_STEP.search(logs[0].read_text()) is not None

    wait_for(training_steps_logged, f"training steps in the log of {model}", 300, process)
    subprocess.run(["scontrol", "requeue", job_id], check=True)

    def pending() -> bool:
        return any(i == job_id and s == "PENDING" for i, s in squeue("%i", "%T"))

    wait_for(pending, f"job {job_id} requeued", 60, process)
    # SLURM holds a requeued job for 2 minutes (BeginTime); release it now.
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
    return job_id


def assert_every_job_ran_on_slurm(output: str, workdir: Path, preempted: str) -> None:
    """Every job of the run's DAG but the local `all` completed as a SLURM job in
    ``workdir``; exactly the GPU rules were allocated a GPU; ``preempted`` restarted."""
    jobs = submitted_jobs(output)
    expected = planned_slurm_jobs(output)
    assert Counter(rule_of(job) for job in jobs.values()) == expected
    assert re.search(r"^localrule all:$", output, flags=re.MULTILINE)
    assert expected["train_model"] == 2 and expected["rerank"] == 2
    for job_id, job in jobs.items():
        assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), job_id
        assert job["WorkDir"] == str(workdir)
        gpu = rule_of(job) in GPU_RULES
        # JOB_GRES is what SLURM allocated; CPU rules ask for no GPU and get none.
        assert job["JOB_GRES"] == ("gpu:1" if gpu else "(null)"), (job_id, rule_of(job))
        # train_model asked with `gpu` (--gpus), rerank with `gres` (--gres).
        if rule_of(job) == "train_model":
            assert job["TresPerJob"] == "gres:gpu:1"
            assert job["NumCPUs"] == "2"  # compute.train_threads, as in the local run
        if rule_of(job) == "rerank":
            assert job["TresPerNode"] == "gres:gpu:1"
    # The preempted training job ran again under the same id and Snakemake waited for it
    # (SLURM truncates the job's output file when it restarts it).
    assert jobs[preempted]["Restarts"] == "1"


@pytest.mark.slow
def test_demo_runs_as_slurm_jobs_and_reproduces_the_local_table(
    slurm_cluster: str, demo: Path, tmp_path: Path
) -> None:
    workdir = slurm_workdir(tmp_path / "slurm-demo")
    seed_first_stage(demo, workdir)
    process = start_snakemake(workdir, *TEST_CLUSTER, *GRES_SWITCH, limit_s=DEMO_LIMIT_S)
    try:
        preempted = preempt_first_training_job(workdir, process)
    except BaseException:
        process.send_signal(signal.SIGINT)  # `timeout` passes it on to Snakemake
        raise
    finally:
        returncode, output = finish(process, workdir, DEMO_LIMIT_S)
    assert returncode == 0, output[-5000:]

    assert_every_job_ran_on_slurm(output, workdir, preempted)
    assert model_zoo_csv(workdir).read_text() == model_zoo_csv(demo).read_text()


GENERATED_RUN = "results/demo/runs/train/bm25/tiny-llm.run"
GENERATED_TABLE = "results/demo/training/teachers/tiny-llm.24x10.parquet"


def generated_teacher_workdir(target: Path, shards: int) -> Path:
    """The demo with its distilled teacher generated by the tiny random LM (24 queries x
    depth 10, blocks of 8 queries) in ``shards`` shards."""
    from rank_distillm.teachers.llm.tiny_lm import build_tiny_lm

    workdir = slurm_workdir(target)
    build_tiny_lm(workdir / "tiny-lm")
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    generate = {"model": "tiny-lm", "window": 5, "stride": 3, "batch_size": 8}
    # 0.02 windows/s: a shard's 8 queries x 3 windows take 1,200 s, x 1.5 + 30 min = 1 h.
    generate.update(shards=shards, windows_per_second=0.02)
    config["teachers"]["tiny-llm"] = {
        "label": "Tiny random LLM",
        "first_stage": "bm25",
        "queries": 24,
        "depth": 10,
        "generate": generate,
    }
    model = config["models"]["tiny-electra.stage1.stage2-ranknet"]
    model["teacher"] = "tiny-llm"
    model.pop("queries", None)  # every generated query
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return workdir


@pytest.mark.slow
def test_sharded_generation_runs_a_gpu_job_per_shard_and_merges_into_the_local_run(
    slurm_cluster: str, demo: Path, tmp_path: Path
) -> None:
    """The demo's generated teacher in 3 shards through profiles/slurm, up to the teacher
    table: each shard is its own SLURM job with a GPU and a runtime from its share, and
    the merged run is byte for byte the run of one local, unsharded job."""
    local = generated_teacher_workdir(tmp_path / "local", shards=1)
    seed_first_stage(demo, local)
    result = snakemake(local, "--cores", "2", GENERATED_RUN)
    assert result.returncode == 0, result.stderr[-5000:]

    workdir = generated_teacher_workdir(tmp_path / "sharded", shards=3)
    seed_first_stage(demo, workdir)
    process = start_snakemake(workdir, *TEST_CLUSTER, GENERATED_TABLE, limit_s=SHARDED_LIMIT_S)
    returncode, output = finish(process, workdir, SHARDED_LIMIT_S)
    assert returncode == 0, output[-5000:]

    jobs = submitted_jobs(output)
    assert Counter(rule_of(job) for job in jobs.values()) == planned_slurm_jobs(output)
    shards = sorted(
        (job for job in jobs.values() if rule_of(job) == "generate_teacher_shard"),
        key=lambda job: job["Comment"],
    )
    assert [job["Comment"].rsplit("_", 2)[1:] for job in shards] == [
        ["1", "3"],
        ["2", "3"],
        ["3", "3"],
    ]
    for job in jobs.values():
        assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), job
        gpu = rule_of(job) in GPU_RULES
        assert job["JOB_GRES"] == ("gpu:1" if gpu else "(null)"), job["Comment"]
    for job in shards:
        assert job["TresPerJob"] == "gres:gpu:1" and job["TimeLimit"] == "01:00:00"
    assert len([job for job in jobs.values() if rule_of(job) == "merge_teacher_shards"]) == 1

    merged = (workdir / GENERATED_RUN).read_bytes()
    assert merged == (local / GENERATED_RUN).read_bytes()
    assert trec_io.read_run(workdir / GENERATED_RUN)["query_id"].nunique() == 24
    log = (workdir / "results/demo/logs/teacher/train/bm25/tiny-llm.log").read_text()
    assert "merged 3 shards: 24 queries, 240 rows" in log
    assert (workdir / GENERATED_TABLE).is_file()


def test_failed_slurm_job_is_reported_and_snakemake_exits(
    slurm_cluster: str, demo: Path, tmp_path: Path
) -> None:
    """A malformed teacher run makes teacher_table fail in its SLURM job; Snakemake
    retries it once (the profile's retries), reports both failures and exits 1."""
    workdir = slurm_workdir(tmp_path / "slurm-failure")
    seed_first_stage(demo, workdir)
    (workdir / "teacher.run").write_text("1000 Q0 5 1 100 rank\n1000 Q0 17 1 100\n")
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    teacher = config["teachers"]["simulated-teacher"]
    del teacher["simulated"]
    teacher.update(train_run="teacher.run", queries=None)
    config["models"]["tiny-electra.stage1.stage2-ranknet"].pop("queries", None)  # all of them
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))

    started = time.monotonic()
    process = start_snakemake(
        workdir, *TEST_CLUSTER, "--until", "teacher_table", limit_s=FAILURE_LIMIT_S
    )
    returncode, output = finish(process, workdir, FAILURE_LIMIT_S)
    elapsed = time.monotonic() - started

    assert returncode == 1, (returncode, elapsed, output[-3000:])  # 124: timed out
    jobs = submitted_jobs(output)
    failed = [job_id for job_id, job in jobs.items() if rule_of(job) == "teacher_table"]
    assert len(failed) == 2, output[-3000:]  # the first attempt and one retry
    for job_id in failed:
        assert jobs[job_id]["JobState"] == "FAILED"
        assert f"SLURM-job '{job_id}' failed, SLURM status is: 'FAILED'" in output
        slurm_log = Path(jobs[job_id]["StdOut"]).read_text()
        assert "teacher.run:2: expected 6 whitespace-separated columns" in slurm_log
    assert not list((workdir / "results").rglob("*.parquet"))
    assert not [row for row in squeue("%i", "%T") if row[1] in ("PENDING", "RUNNING")]


def profile_arguments(workdir: Path, monkeypatch: pytest.MonkeyPatch, *argv: str):
    """The options Snakemake takes from the profiles for ``argv``, run in ``workdir``."""
    from snakemake.cli import parse_args

    monkeypatch.chdir(workdir)
    return parse_args([*argv, "--dry-run"])[1]


def test_local_profile_applies_by_default_and_counts_the_gpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = slurm_workdir(tmp_path)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    args = profile_arguments(workdir, monkeypatch)
    assert args.executor is None  # local
    assert args.show_failed_logs  # a failed job's log reaches the terminal
    assert args.resources["gpu"].value == 2
    assert isinstance(args.cores, int) and args.cores >= 1  # `all` cores of this machine
    for hidden in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert "gpu" not in (profile_arguments(workdir, monkeypatch).resources or {})


def test_slurm_profile_replaces_the_local_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = slurm_workdir(tmp_path)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    args = profile_arguments(workdir, monkeypatch, "--workflow-profile", "profiles/slurm")
    assert args.executor == "slurm"
    assert args.resources is None or "gpu" not in args.resources  # no local GPU limit
    assert args.retries == 1 and args.slurm_requeue
    assert args.show_failed_logs
    assert {"mem_mb", "runtime"} <= set(args.default_resources)
