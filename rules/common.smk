# Helpers shared by the rules: config validation and the experiment's names and paths
# (rank_distillm.experiment holds the logic and its checks). No rules here.
import os
import re

from snakemake.exceptions import WorkflowError

from rank_distillm import experiment as experiments
from rank_distillm.config.check import ConfigSchemaError, validate_config


try:
    validate_config(config, os.path.join(workflow.basedir, "schemas", "config.schema.yaml"))
except ConfigSchemaError as error:
    raise WorkflowError("\n".join(f"config: {line}" for line in str(error).splitlines())) from None
try:
    EXP = experiments.from_config(config)
except experiments.ConfigError as error:
    raise WorkflowError(f"config: {error}") from None

LOGS = f"{EXP.root}/logs"
COMPUTE = config["compute"]
BM25_STAGES = [name for name, stage in EXP.first_stages.items() if stage.bm25 is not None]
SIMULATED_TEACHERS = [name for name, teacher in EXP.teachers.items() if teacher.simulated]
GENERATED_TEACHERS = [name for name, t in EXP.teachers.items() if t.generate is not None]
SHARDED_TEACHERS = [name for name in GENERATED_TEACHERS if EXP.teachers[name].shards > 1]
CORPORA = {experiments.slug(corpus): corpus for corpus in EXP.corpora()}
COLLECTIONS = {experiments.slug(name): name for name in EXP.collections}


def _alternatives(names):
    return "|".join(re.escape(name) for name in names) or "(?!)"


wildcard_constraints:
    split=_alternatives(EXP.splits),
    first_stage=_alternatives(EXP.first_stages),
    bm25_stage=_alternatives(BM25_STAGES),
    simulated=_alternatives(SIMULATED_TEACHERS),
    generated=_alternatives(GENERATED_TEACHERS),
    sharded=_alternatives(SHARDED_TEACHERS),
    shard=r"\d+",
    shards=r"\d+",
    teacher=_alternatives(EXP.teachers),
    reranker=_alternatives(EXP.rerankers()),
    model=_alternatives(EXP.models),
    backbone=_alternatives(EXP.backbones),
    run_system=_alternatives([*EXP.first_stages, *EXP.teachers]),
    corpus=_alternatives(CORPORA),
    collection=_alternatives(COLLECTIONS),
    queries=r"all|\d+",
    depth=r"\d+",


def demo_scoreddocs():
    """Demo subsets' scoreddocs: their first-stage runs, relative to the manifest
    (ir_datasets opens them lazily, once the retrieve stage has written them)."""
    found = {}
    folder = os.path.dirname(EXP.demo_manifest())
    for split in EXP.splits:
        prefix, _, subset = EXP.dataset_id(split).partition("/")
        stage = next((s for s in EXP.first_stages.values() if s.has_run(split)), None)
        if prefix == EXP.demo["name"] and stage is not None:
            found[subset] = os.path.relpath(EXP.first_stage_run(stage.name, split), folder)
    return found


def local(paths):
    """Inputs that a rule of this workflow makes (hub ids and absent paths are not files)."""
    return [path for path in paths if path.startswith(f"{EXP.root}/") or os.path.exists(path)]


def generation_settings(teacher, split, first_stage):
    """A generated teacher's LLM settings for one split: the teacher's depth on the
    training queries, the first stage's on an evaluation set."""
    depth = (
        EXP.teachers[teacher].depth if split == "train" else EXP.first_stages[first_stage].depth
    )
    return {**EXP.teachers[teacher].generate, "depth": depth}


def generation_queries(teacher, split):
    """Queries a generated teacher ranks: its sample on the training queries, else all."""
    return EXP.teachers[teacher].queries if split == "train" else None


def teacher_shard_files(wildcards, extension):
    """The files of every shard of a sharded teacher's training run, in shard order."""
    count = EXP.teachers[wildcards.sharded].shards
    return [
        f"{EXP.root}/runs/train/{wildcards.first_stage}/{wildcards.sharded}.shards/"
        f"{index}-of-{count}.{extension}"
        for index in range(1, count + 1)
    ]


def training_settings(model):
    return dict(EXP.models[model].settings)


def metrics_job(split, stage, system):
    """What the evaluate step needs for one run."""
    return {
        "dataset": EXP.dataset_id(split),
        "run": EXP.system_run(split, stage, system),
        "out_tsv": EXP.metrics_file(split, stage, system),
        "relevance_level": EXP.evaluation[split].relevance_level,
    }
