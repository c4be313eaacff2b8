"""An experiment as data: the validated config turned into typed records and file paths.

The Snakemake rules ask this module what exists (first stages, teachers, models, the
(first stage, evaluation set) pairs of the table) and where each file lives (its paths
come from :mod:`rank_distillm.experiment_paths`), so every cross-reference is checked
here, before any job runs, and is unit-testable without Snakemake. Ablation grids are
expanded into named models here too.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rank_distillm.config.errors import ConfigError
from rank_distillm.config.hints import did_you_mean as _hint
from rank_distillm.experiment_paths import SPLIT_TRAIN, ExperimentPaths
from rank_distillm.experiment_paths import slug as slug  # re-exported for the rules and cli
from rank_distillm.report import references as paper_references

#: Reference key of the table's first row (each column's first-stage run alone).
FIRST_STAGE_ROW = "first-stage"
#: Keys of a model entry that describe its data and place, not its training settings.
_RECIPE_KEYS = {"label", "start", "data", "first_stage", "teacher", "queries", "depth"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
#: Keys of ``teachers.<name>.generate`` that lay out the jobs, not the generation.
_GENERATION_JOB_KEYS = ("shards", "windows_per_second")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class EvaluationSet:
    """A query set with qrels. TIREx tasks are evaluation sets too, with their corpus
    group; they get their own table, not columns of the model zoo's."""

    name: str
    dataset: str
    label: str
    relevance_level: int
    corpus: str
    group: str | None = None  # TIREx tasks only

    @property
    def tirex(self) -> bool:
        return self.group is not None


@dataclass(frozen=True)
class FirstStage:
    name: str
    label: str
    bm25: Mapping[str, float] | None
    runs: Mapping[str, str]
    depth: int
    train_depth: int
    published: str | None = None  # the archive's first stage whose runs it re-ranks
    published_splits: tuple[str, ...] = ()  # the splits whose run comes from the archive

    def has_run(self, split: str) -> bool:
        return split in self.runs or self.bm25 is not None


@dataclass(frozen=True)
class Teacher:
    name: str
    label: str
    first_stage: str
    train_run: str | None
    evaluation_runs: Mapping[str, Mapping[str, str]]
    noise: float | None  # simulated teachers only
    queries: int | None
    depth: int
    seed: int
    generate: Mapping[str, Any] | None = None  # teachers generated with an LLM: its settings
    shards: int = 1  # generate.shards: GPU jobs the training run is split over
    windows_per_second: float = 4.0  # generate.windows_per_second: sizes their runtime
    published_subsamples: Mapping[int, str] = field(default_factory=dict)  # depth -> run

    def subsampled(self, depth: int) -> bool:
        """A table shallower than the teacher's run is the first stage's top ``depth`` of
        it (the paper's sub-sampling); at the teacher's depth it is the run as it is."""
        return depth < self.depth

    @property
    def simulated(self) -> bool:
        return self.noise is not None

    @property
    def ranks_every_split(self) -> bool:
        """Simulated and generated teachers make their own runs, on every split."""
        return self.simulated or self.generate is not None

    @property
    def trainable(self) -> bool:
        return self.ranks_every_split or self.train_run is not None


@dataclass(frozen=True)
class Backbone:
    name: str
    hub: str | None
    tiny: Mapping[str, Any] | None
    train_pairs_per_second: float


@dataclass(frozen=True)
class Checkpoint:
    name: str
    label: str
    path: str


@dataclass(frozen=True)
class Model:
    name: str
    label: str
    start: str
    data: str  # "hard_negatives" or "teacher"
    first_stage: str | None
    teacher: str | None
    queries: int | None  # teacher data: queries of the teacher run used (None: all)
    depth: int | None  # teacher data: passages per query
    settings: Mapping[str, Any]  # training settings (keys of training.loop.TrainSettings)

    def recipe_key(self) -> tuple:
        """What determines the trained weights: equal keys mean the same model."""
        return (
            self.start,
            self.data,
            self.first_stage,
            self.teacher,
            self.queries,
            self.depth,
            tuple(sorted((k, _freeze(v)) for k, v in self.settings.items())),
        )


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class Row:
    """A row of the model-zoo table: which system's run fills each (first stage, set) cell.

    ``key`` names the row in ``references``; ``systems`` maps a pair to the system whose
    run is evaluated there (absent pairs are empty cells).
    """

    key: str
    label: str
    kind: str  # first_stage, teacher, reranker, model, checkpoint, ablation
    systems: Mapping[tuple[str, str], str]


@dataclass(frozen=True)
class Experiment(ExperimentPaths):
    name: str
    demo: Mapping[str, Any] | None
    local_collections: Sequence[str]
    collection: str
    train_dataset: str | None  # None: an evaluation-only experiment (nothing trains)
    evaluation: Mapping[str, EvaluationSet]
    first_stages: Mapping[str, FirstStage]
    teachers: Mapping[str, Teacher]
    backbones: Mapping[str, Backbone]
    checkpoints: Mapping[str, Checkpoint]
    models: Mapping[str, Model]
    rows: Sequence[Row]
    references: Mapping[str, Mapping[str, Mapping[str, float]]]
    hard_negatives: Mapping[str, Any]
    collections: Mapping[str, Mapping[str, Any]]  # local collections on disk, by id
    demo_tirex: Mapping[str, Any] | None
    tirex: Any  # rank_distillm.evaluation.tirex.Selection, or None without TIREx tasks
    tirex_first_stage: str | None
    tirex_rule: str
    config: Mapping[str, Any] = field(repr=False)

    # ----------------------------------------------------------------- structure

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Every (first stage, evaluation set) re-ranked and evaluated, first stages
        outermost: TIREx tasks only with the TIREx first stage."""
        return _pairs(self.first_stages, self.evaluation, self.tirex_first_stage)

    @property
    def table_pairs(self) -> list[tuple[str, str]]:
        """The model zoo's columns: the pairs of the evaluation sets that are not TIREx tasks."""
        return [pair for pair in self.pairs if not self.evaluation[pair[1]].tirex]

    @property
    def tirex_pairs(self) -> list[tuple[str, str]]:
        return [pair for pair in self.pairs if self.evaluation[pair[1]].tirex]

    @property
    def splits(self) -> list[str]:
        """The training split (when there is one) and every evaluation set."""
        return [*([SPLIT_TRAIN] if self.train_dataset else []), *self.evaluation]

    def dataset_id(self, split: str) -> str:
        return self.train_dataset if split == SPLIT_TRAIN else self.evaluation[split].dataset

    def corpus(self, split: str) -> str:
        return self.collection if split == SPLIT_TRAIN else self.evaluation[split].corpus

    def corpora(self) -> list[str]:
        return list(dict.fromkeys([self.collection, *(e.corpus for e in self.evaluation.values())]))

    @property
    def paper_systems(self) -> Mapping[str, str]:
        """Config ``paper_systems``: table row -> the authors' system it reproduces."""
        return self.config.get("paper_systems", {})

    def rerankers(self) -> list[str]:
        """Systems that re-rank every pair with a checkpoint: trained models and published ones."""
        return [*self.models, *self.checkpoints]

    def first_stage_depth(self, first_stage: str, split: str) -> int:
        stage = self.first_stages[first_stage]
        return stage.train_depth if split == SPLIT_TRAIN else stage.depth

    def published_first_stage_runs(self) -> list[Any]:
        """The archive entries (``published_archive.Entry``) of the authors' first-stage
        runs that the first stages with ``published`` re-rank."""
        from rank_distillm.data.published import FIRST_STAGE_SYSTEM, Entry

        return [
            Entry(FIRST_STAGE_SYSTEM, stage.published, benchmark_id(self.evaluation[split]))
            for stage in self.first_stages.values()
            for split in stage.published_splits
        ]

    # ----------------------------------------------------------------- report

    def table_notes(self) -> list[str]:
        """Where each first stage's candidates come from, for the table's notes."""
        from rank_distillm.data import paper_tables

        notes = []
        for stage in self.first_stages.values():
            sources: dict[str, list[str]] = {}
            for split in self.evaluation:
                if split in stage.published_splits:
                    record = paper_tables.load().record
                    source = f"the authors' published run (their archive, Zenodo record {record})"
                elif split in stage.runs:
                    source = f"`{Path(stage.runs[split]).name}`"
                elif stage.bm25 is not None:
                    settings = ", ".join(f"{k}={v}" for k, v in stage.bm25.items())
                    source = f"BM25 with PISA ({settings})"
                else:
                    continue
                sources.setdefault(source, []).append(self.evaluation[split].label)
            if len(sources) == 1:
                described = [next(iter(sources))]
            else:
                described = [f"{', '.join(labels)}: {source}" for source, labels in sources.items()]
            notes.append(
                f"{stage.label} columns: each query's top {stage.depth} candidates, from "
                + "; ".join(described)
                + "."
            )
        return notes

    # ----------------------------------------------------------------- sizes

    def train_pairs(self, model: str) -> int:
        """Query-passage pairs a model trains on (for sizing the job's runtime)."""
        spec = self.models[model]
        settings = spec.settings
        per_query = (
            settings["negatives"] + 1 if settings["sampler"] != "top" else (spec.depth or 100)
        )
        if settings.get("steps"):
            return settings["steps"] * settings["queries_per_step"] * per_query
        queries = spec.queries or self.teachers[spec.teacher].queries or 10_000
        return settings["epochs"] * queries * per_query

    def backbone_of(self, model: str) -> Backbone | None:
        start = self.models[model].start
        while start in self.models:
            start = self.models[start].start
        return self.backbones.get(start)

    def train_runtime_minutes(self, model: str) -> int:
        backbone = self.backbone_of(model)
        rate = backbone.train_pairs_per_second if backbone else 1000.0
        return _runtime_minutes(self.train_pairs(model) / rate)

    def generation_runtime_minutes(self, teacher: str) -> int:
        """The runtime a generation job on the training queries requests: the windows of
        its largest shard at ``generate.windows_per_second``."""
        spec = self.teachers[teacher]
        return _runtime_minutes(generation_windows(spec) / spec.windows_per_second)


def generation_windows(teacher: Teacher) -> int:
    """LLM calls (windows) of the largest shard of a generated teacher's training run;
    all training queries (unknown here) count as the paper's 10,000."""
    from rank_distillm.teachers.llm.generate import GenerationSettings
    from rank_distillm.teachers.llm.shards import largest_shard
    from rank_distillm.teachers.llm.window import window_spans

    settings = GenerationSettings.from_config(teacher.generate or {})
    per_query = len(window_spans(teacher.depth, settings.window, settings.stride))
    queries = largest_shard(teacher.queries or 10_000, settings.batch_size, teacher.shards)
    return queries * per_query


def _runtime_minutes(expected_seconds: float) -> int:
    """A GPU job's runtime request: 1.5 times the expected time, plus 30 minutes to start
    (loading the model, the texts)."""
    return int(math.ceil(1.5 * expected_seconds / 60)) + 30


# --------------------------------------------------------------------------- loading


def from_config(config: Mapping[str, Any]) -> Experiment:
    """Build the experiment from a schema-validated config (defaults filled in).

    Raises :class:`ConfigError` naming the key for every inconsistency the schema cannot
    express: unknown references, impossible depths, start cycles, clashing names.
    """
    _check_downloads(config)
    collections = dict(config.get("collections", {}))
    demo_tirex = config.get("demo_tirex")
    local = [*collections, *((demo_tirex or {}).get("corpora", {}))]
    evaluation, selection, tasks = _evaluation_sets(config, local)
    train = [SPLIT_TRAIN] if config.get("train_dataset") else []
    first_stages = _first_stages(config, [*train, *evaluation], evaluation)
    tirex_stage = _tirex_first_stage(config, first_stages, tasks)
    _check_first_stage_runs(evaluation, first_stages, tirex_stage)
    teachers = _teachers(config, first_stages, evaluation)
    backbones = {
        name: Backbone(
            name=name,
            hub=spec.get("hub"),
            tiny=spec.get("tiny"),
            train_pairs_per_second=spec.get("train_pairs_per_second", 1000.0),
        )
        for name, spec in config["backbones"].items()
    }
    checkpoints = {
        name: Checkpoint(name=name, label=spec["label"], path=spec["path"])
        for name, spec in config.get("checkpoints", {}).items()
    }
    _check_unique_names(first_stages, teachers, backbones, checkpoints, config["models"])
    main_models = _models(config, config["models"], first_stages, teachers)
    pairs = _pairs(first_stages, evaluation, tirex_stage)
    ablation_rows, extra_models = _ablations(
        config, main_models, first_stages, teachers, backbones, pairs
    )
    main_rows = _rows(first_stages, teachers, checkpoints, main_models, pairs, evaluation, config)
    references = paper_references.resolve(
        config,
        [row.key for row in main_rows + ablation_rows],
        {name: stage.published or name for name, stage in first_stages.items()},
        {name: spec.dataset for name, spec in evaluation.items()},
        tirex_stage,
        list(selection.groups()) if selection else [],
    )
    if not config.get("ablations", {}).get("enabled", False):
        ablation_rows = []
    models = {**main_models, **extra_models}
    if models and not config.get("train_dataset"):
        raise ConfigError(
            f"train_dataset: models.{next(iter(models))} trains, so the experiment needs the "
            "ir_datasets id of its training queries (only an experiment without models, "
            "evaluating first stages and checkpoints, may leave it out)"
        )
    _check_starts(models, backbones, checkpoints)
    _check_lengths(models, backbones, checkpoints)
    rows = main_rows + ablation_rows
    return Experiment(
        name=config["experiment"],
        demo=config.get("demo"),
        local_collections=list(config.get("local_collections", [])),
        collection=config["collection"],
        train_dataset=config.get("train_dataset"),
        evaluation=evaluation,
        first_stages=first_stages,
        teachers=teachers,
        backbones=backbones,
        checkpoints=checkpoints,
        models=models,
        rows=rows,
        references=references,
        hard_negatives=config.get("hard_negatives", {}),
        collections=collections,
        demo_tirex=demo_tirex,
        tirex=selection,
        tirex_first_stage=tirex_stage,
        tirex_rule=config.get("tirex", {}).get("rule", "judged"),
        config=config,
    )


def _evaluation_sets(
    config: Mapping[str, Any], local: Sequence[str]
) -> tuple[dict[str, EvaluationSet], Any, dict[str, EvaluationSet]]:
    """The evaluation sets (TIREx tasks included), the TIREx selection and its tasks;
    every set must be a dataset with qrels."""
    evaluation = {
        name: EvaluationSet(
            name=name,
            dataset=spec["dataset"],
            label=spec["label"],
            relevance_level=spec.get("relevance_level", 1),
            corpus=spec.get("corpus") or config["collection"],
        )
        for name, spec in config["evaluation"].items()
    }
    if SPLIT_TRAIN in evaluation:
        raise ConfigError(f"evaluation: {SPLIT_TRAIN!r} is reserved for the training queries")
    selection, tasks = _tirex_tasks(config, local)
    for task in tasks.values():
        if task.name in evaluation:
            raise ConfigError(f"evaluation.{task.name}: the name of TIREx task {task.label!r}")
    evaluation.update(tasks)
    demo_name = (config.get("demo") or {}).get("name")
    _check_qrels(evaluation, [*local, *([demo_name] if demo_name else [])])
    return evaluation, selection, tasks


def _check_first_stage_runs(
    evaluation: Mapping[str, EvaluationSet],
    first_stages: Mapping[str, FirstStage],
    tirex_stage: str | None,
) -> None:
    for name, spec in evaluation.items():
        stages = [tirex_stage] if spec.tirex else list(first_stages)
        if not any(first_stages[stage].has_run(name) for stage in stages):
            where = f"tirex task {spec.label}" if spec.tirex else f"evaluation.{name}"
            raise ConfigError(
                f"{where}: no first stage has a run for it (give one under "
                f"first_stages.<name>.runs.{name}, or a first stage with bm25)"
            )


def _pairs(
    first_stages: Mapping[str, FirstStage],
    evaluation: Mapping[str, EvaluationSet],
    tirex_stage: str | None,
) -> list[tuple[str, str]]:
    return [
        (stage.name, split)
        for stage in first_stages.values()
        for split, spec in evaluation.items()
        if stage.has_run(split) and (not spec.tirex or stage.name == tirex_stage)
    ]


def tirex_set_name(task_id: str) -> str:
    """The evaluation-set name (and path part) of a TIREx task: ``tirex-`` + its id."""
    return "tirex-" + re.sub(r"[^A-Za-z0-9._+-]+", "-", task_id).strip("-")


def _corpus_of(dataset_id: str, local: Sequence[str]) -> str:
    """The corpus a task searches: its local collection, else ir_datasets' docs parent."""
    for name in sorted(local, key=len, reverse=True):
        if dataset_id == name or dataset_id.startswith(f"{name}/"):
            return name
    import ir_datasets  # only for real ids; it reads the registry, downloads nothing

    try:
        return ir_datasets.docs_parent_id(dataset_id)
    except KeyError:
        raise ConfigError(
            f"tirex.tasks: {dataset_id!r} is neither an ir_datasets id nor a local collection "
            f"(collections: {', '.join(local) or 'none'})"
        ) from None


def _check_qrels(evaluation: Mapping[str, EvaluationSet], local: Sequence[str]) -> None:
    """Every evaluation set must be a dataset with qrels. Local collections are checked
    when they are registered; real ids here, from ir_datasets' registry (offline)."""
    real = {
        name: spec
        for name, spec in evaluation.items()
        if not any(spec.dataset == n or spec.dataset.startswith(f"{n}/") for n in local)
    }
    if not real:
        return
    import ir_datasets

    for name, spec in real.items():
        where = f"tirex task {spec.label}" if spec.tirex else f"evaluation.{name}.dataset"
        if spec.dataset not in ir_datasets.registry:
            raise ConfigError(
                f"{where}: {spec.dataset!r} is neither an ir_datasets id nor a local collection"
            )
        if not ir_datasets.load(spec.dataset).has_qrels():
            raise ConfigError(f"{where}: {spec.dataset!r} has no qrels to evaluate with")


def _tirex_tasks(
    config: Mapping[str, Any], local: Sequence[str]
) -> tuple[Any, dict[str, EvaluationSet]]:
    settings = config.get("tirex")
    if not settings or not settings.get("tasks"):
        return None, {}
    from rank_distillm.evaluation import tirex

    try:
        selection = tirex.select_tasks(
            {key: settings[key] for key in ("tasks", "skip") if key in settings}, "tirex"
        )
    except ValueError as error:
        raise ConfigError(str(error)) from None
    level = settings.get("relevance_level", 1)
    tasks = {}
    for task in selection.used:
        name = tirex_set_name(task.id)
        tasks[name] = EvaluationSet(
            name=name,
            dataset=task.dataset,
            label=task.id,
            relevance_level=level,
            corpus=_corpus_of(task.dataset, local),
            group=task.group,
        )
    return selection, tasks


def _tirex_first_stage(
    config: Mapping[str, Any],
    first_stages: Mapping[str, FirstStage],
    tasks: Mapping[str, EvaluationSet],
) -> str | None:
    if not tasks:
        return None
    name = config["tirex"].get("first_stage")
    if name is None:
        name = next((s.name for s in first_stages.values() if s.bm25 is not None), None)
        if name is None:
            raise ConfigError("tirex.first_stage: no first stage has bm25 settings; name one")
    elif name not in first_stages:
        raise ConfigError(
            f"tirex.first_stage: {name!r} is not a first stage{_hint(name, first_stages)}"
        )
    return name


def _first_stages(
    config: Mapping[str, Any], splits: list[str], evaluation: Mapping[str, EvaluationSet]
) -> dict[str, FirstStage]:
    stages = {}
    for name, spec in config["first_stages"].items():
        runs = dict(spec.get("runs") or {})
        for split in runs:
            if split not in splits:
                raise ConfigError(
                    f"first_stages.{name}.runs.{split}: not a split{_hint(split, splits)}"
                )
        published = _published_runs(config, name, spec.get("published"), runs, evaluation)
        runs.update(published)
        bm25 = spec.get("bm25")
        if bm25 is None and not runs:
            raise ConfigError(f"first_stages.{name}: needs `bm25` settings or `runs` files")
        stages[name] = FirstStage(
            name=name,
            label=spec["label"],
            bm25=None if bm25 is None else {"k1": bm25.get("k1", 0.9), "b": bm25.get("b", 0.4)},
            runs=runs,
            depth=spec.get("depth", 100),
            train_depth=spec.get("train_depth", 200),
            published=spec.get("published"),
            published_splits=tuple(published),
        )
    return stages


def benchmark_id(spec: EvaluationSet) -> str:
    """The id a set is known by in the paper: a TIREx task's id, else its dataset id."""
    return spec.label if spec.tirex else spec.dataset


def _published_runs(
    config: Mapping[str, Any],
    name: str,
    stage: str | None,
    given: Mapping[str, str],
    evaluation: Mapping[str, EvaluationSet],
) -> dict[str, str]:
    """The authors' runs of first stage ``stage`` (from their archive) for every evaluation
    set the archive holds and ``runs`` does not give. Cranfield's run numbers its queries
    by cran.qry's ``.I`` field, so it serves with its ids mapped to ir_datasets' (the
    topics' and qrels'), or not at all without ``published.map_cranfield_ids``."""
    if stage is None:
        return {}
    from rank_distillm.data import published

    if not config.get("published"):
        raise ConfigError(
            f"first_stages.{name}.published: the authors' runs come from their archive; "
            "configure it under `published` (see configs/paper.yaml)"
        )
    mapped = config["published"].get("map_cranfield_ids", True)
    found = {}
    for split, spec in evaluation.items():
        dataset = benchmark_id(spec)
        if split in given or not published.archive_holds(stage, dataset):
            continue
        entry = published.Entry(published.FIRST_STAGE_SYSTEM, stage, dataset)
        if dataset != published.CRANFIELD:
            found[split] = published.run_file(entry)
        elif mapped:
            found[split] = published.run_file(entry, published.IDS_MAPPED)
    return found


def _teachers(
    config: Mapping[str, Any],
    first_stages: Mapping[str, FirstStage],
    evaluation: Mapping[str, EvaluationSet],
) -> dict[str, Teacher]:
    teachers = {}
    for name, spec in config.get("teachers", {}).items():
        key = f"teachers.{name}"
        stage = spec["first_stage"]
        if stage not in first_stages:
            raise ConfigError(
                f"{key}.first_stage: {stage!r} is not a first stage{_hint(stage, first_stages)}"
            )
        simulated = spec.get("simulated")
        generate = spec.get("generate")
        jobs: dict[str, Any] = {}
        sources = [k for k in ("train_run", "simulated", "generate") if spec.get(k) is not None]
        if len(sources) > 1:
            raise ConfigError(f"{key}: give one of `train_run`, `simulated` and `generate`")
        depth = spec.get("depth", 100)
        if generate is not None:
            generate = dict(generate)
            jobs = {k: generate.pop(k) for k in _GENERATION_JOB_KEYS if k in generate}
            _check_generation(generate, spec.get("queries"), jobs.get("shards", 1), key)
        if simulated is not None or generate is not None:
            if not first_stages[stage].has_run(SPLIT_TRAIN):
                raise ConfigError(f"{key}: it ranks {stage!r}, which has no training run")
            if first_stages[stage].bm25 is not None and SPLIT_TRAIN not in first_stages[stage].runs:
                train_depth = first_stages[stage].train_depth
                if depth > train_depth:
                    raise ConfigError(
                        f"{key}.depth: {depth} is deeper than first_stages.{stage}.train_depth "
                        f"({train_depth}), the candidates the teacher re-ranks"
                    )
        given = spec.get("evaluation_runs") or {}
        for stage_name, runs in given.items():
            if stage_name not in first_stages:
                raise ConfigError(
                    f"{key}.evaluation_runs.{stage_name}: not a first stage"
                    f"{_hint(stage_name, first_stages)}"
                )
            for split in runs:
                if split not in evaluation:
                    raise ConfigError(
                        f"{key}.evaluation_runs.{stage_name}.{split}: not an evaluation set"
                        f"{_hint(split, evaluation)}"
                    )
        teachers[name] = Teacher(
            name=name,
            label=spec["label"],
            first_stage=stage,
            train_run=spec.get("train_run"),
            evaluation_runs={k: dict(v) for k, v in given.items()},
            noise=None if simulated is None else float(simulated.get("noise", 1.0)),
            queries=spec.get("queries"),
            depth=depth,
            seed=spec.get("seed", 42),
            generate=generate,
            **jobs,
            published_subsamples=_published_subsamples(spec, depth, key),
        )
    return teachers


def _published_subsamples(spec: Mapping[str, Any], depth: int, key: str) -> dict[int, str]:
    """``published_subsamples`` with integer depths, each below the teacher's depth."""
    found = {}
    for given, path in (spec.get("published_subsamples") or {}).items():
        if not str(given).isdigit() or not 1 < int(given) < depth:
            raise ConfigError(
                f"{key}.published_subsamples.{given}: a depth between 2 and the teacher's "
                f"depth ({depth}, exclusive) was expected"
            )
        found[int(given)] = path
    return found


def _check_generation(
    settings: Mapping[str, Any], queries: int | None, shards: int, key: str
) -> None:
    """The LLM settings, checked as the generation step will read them, and the shards,
    which need a block of ``batch_size`` queries each (when the number of queries is known)."""
    from rank_distillm.teachers.llm.generate import GenerationSettings
    from rank_distillm.teachers.llm.shards import largest_shard

    where = f"{key}.generate"
    try:
        generation = GenerationSettings.from_config(settings, where)
        if queries is not None:
            largest_shard(queries, generation.batch_size, shards)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from None


def _check_unique_names(*groups: Mapping[str, Any]) -> None:
    seen: dict[str, int] = {}
    kinds = ["first stage", "teacher", "backbone", "checkpoint", "model"]
    for kind, group in zip(kinds, groups, strict=True):
        for name in group:
            if not _NAME.fullmatch(name):
                raise ConfigError(f"{kind} name {name!r} may hold only letters, digits and . _ + -")
            if name == FIRST_STAGE_ROW:
                raise ConfigError(f"{kind} name {name!r} is reserved for the first-stage row")
            if name in seen:
                raise ConfigError(
                    f"the name {name!r} is used by a {kinds[seen[name]]} and a {kind}: "
                    "names key file paths and table rows, so they must be unique"
                )
            seen[name] = kinds.index(kind)


def _training_settings(config: Mapping[str, Any], *layers: Mapping[str, Any]) -> dict[str, Any]:
    """The paper's values, then training_defaults, then each layer (model keys)."""
    settings = dict(PAPER_TRAINING)
    for layer in [config.get("training_defaults", {}), *layers]:
        values = {k: v for k, v in layer.items() if k not in _RECIPE_KEYS}
        # A layer that chooses steps (or epochs) overrides the other choice below it.
        for chosen, other in (("steps", "epochs"), ("epochs", "steps")):
            if values.get(chosen) is not None:
                settings.pop(other, None)
        settings.update(values)
    return settings


#: The paper's training recipe (rank_distillm.training.loop.TrainSettings defaults).
PAPER_TRAINING: dict[str, Any] = {
    "negatives": 7,
    "queries_per_step": 32,
    "accumulation_steps": 1,
    "learning_rate": 1e-5,
    "weight_decay": 0.01,
    "adam_betas": [0.9, 0.999],
    "adam_epsilon": 1e-8,
    "warmup_steps": 0,
    "lr_schedule": "constant",
    "ema_decay": None,
    "precision": "auto",
    "query_length": 32,
    "doc_length": 256,
    "freeze_position_embeddings": True,
    "seed": 42,
}


def _model(
    name: str,
    spec: Mapping[str, Any],
    settings: dict[str, Any],
    first_stages: Mapping[str, FirstStage],
    teachers: Mapping[str, Teacher],
    hard_negatives: Mapping[str, Any],
) -> Model:
    key = f"models.{name}"
    if (settings.get("steps") is None) == (settings.get("epochs") is None):
        raise ConfigError(f"{key}: needs exactly one of `steps` and `epochs`")
    if settings["queries_per_step"] % settings["accumulation_steps"]:
        raise ConfigError(f"{key}.queries_per_step must be a multiple of accumulation_steps")
    for required in ("loss", "sampler"):
        if required not in settings:
            raise ConfigError(f"{key}: needs `{required}`")
    first_stage = teacher = queries = depth = None
    if spec["data"] == "hard_negatives":
        first_stage = spec.get("first_stage")
        if first_stage not in first_stages:
            raise ConfigError(
                f"{key}.first_stage: {first_stage!r} is not a first stage (hard negatives come "
                f"from a first stage's training run){_hint(str(first_stage), first_stages)}"
            )
        stage = first_stages[first_stage]
        if not stage.has_run(SPLIT_TRAIN):
            raise ConfigError(
                f"{key}: first stage {first_stage!r} has no run for the training queries"
            )
        wanted = hard_negatives.get("depth", 200)
        if SPLIT_TRAIN not in stage.runs and wanted > stage.train_depth:
            raise ConfigError(
                f"hard_negatives.depth: {wanted} is deeper than first_stages.{first_stage}."
                f"train_depth ({stage.train_depth}), what BM25 retrieves for {name}"
            )
    else:
        teacher = spec.get("teacher")
        if teacher not in teachers:
            raise ConfigError(
                f"{key}.teacher: {teacher!r} is not a teacher{_hint(str(teacher), teachers)}"
            )
        source = teachers[teacher]
        if not source.trainable:
            raise ConfigError(
                f"{key}.teacher: {teacher!r} has no training run (teachers.{teacher}.train_run)"
            )
        depth = spec.get("depth", source.depth)
        if depth > source.depth:
            raise ConfigError(
                f"{key}.depth: {depth} is deeper than the teacher run "
                f"(teachers.{teacher}.depth: {source.depth})"
            )
        queries = spec.get("queries", source.queries)
        if queries is not None and source.queries is not None and queries > source.queries:
            raise ConfigError(
                f"{key}.queries: {queries} is more than the teacher run holds "
                f"(teachers.{teacher}.queries: {source.queries})"
            )
        settings.setdefault("depth", depth)
    return Model(
        name=name,
        label=spec["label"],
        start=spec["start"],
        data=spec["data"],
        first_stage=first_stage,
        teacher=teacher,
        queries=queries,
        depth=depth,
        settings=settings,
    )


_ZENODO_RECORD = re.compile(r"zenodo\.org/records?/(\d+)/")


def _check_downloads(config: Mapping[str, Any]) -> None:
    """A download naming its Zenodo ``record`` must be fetched from that record, and the
    archive of ``published`` must be a download."""
    downloads = config.get("downloads", {})
    for name, spec in downloads.items():
        record = spec.get("record")
        found = _ZENODO_RECORD.search(spec["url"])
        if record is not None and (found is None or int(found[1]) != int(record)):
            raise ConfigError(
                f"downloads.{name}: the url is not a file of Zenodo record {record} "
                f"(expected https://zenodo.org/records/{record}/files/...; got {spec['url']})"
            )
    archive = (config.get("published") or {}).get("archive")
    if archive is not None and archive.removeprefix("resources/") not in downloads:
        raise ConfigError(
            f"published.archive: {archive!r} is not a download (resources/<a key of "
            f"downloads>{_hint(archive.removeprefix('resources/'), downloads)})"
        )


def _models(
    config: Mapping[str, Any],
    specs: Mapping[str, Mapping[str, Any]],
    first_stages: Mapping[str, FirstStage],
    teachers: Mapping[str, Teacher],
) -> dict[str, Model]:
    hard_negatives = config.get("hard_negatives", {})
    return {
        name: _model(
            name, spec, _training_settings(config, spec), first_stages, teachers, hard_negatives
        )
        for name, spec in specs.items()
    }


def _check_starts(
    models: Mapping[str, Model],
    backbones: Mapping[str, Backbone],
    checkpoints: Mapping[str, Checkpoint],
) -> None:
    starts = [*backbones, *checkpoints, *models]
    for name, model in models.items():
        if model.start not in starts:
            raise ConfigError(
                f"models.{name}.start: {model.start!r} is neither a backbone, a checkpoint nor "
                f"a model{_hint(model.start, starts)}"
            )
        seen = [name]
        start = model.start
        while start in models:
            if start in seen:
                chain = " -> ".join([*seen, start])
                raise ConfigError(
                    f"models.{name}.start: the models start from each other ({chain})"
                )
            seen.append(start)
            start = models[start].start


def _check_lengths(
    models: Mapping[str, Model],
    backbones: Mapping[str, Backbone],
    checkpoints: Mapping[str, Checkpoint],
) -> None:
    """Every model's ``query_length + doc_length`` plus its family's special tokens must
    fit its backbone's positions. A tiny backbone says so in its settings; a hub one or a
    checkpoint in its ``config.json`` when that is at hand (a local folder or the hub
    cache), else the training job checks it as it loads the backbone."""
    from rank_distillm.model import families

    for name, model in models.items():
        root = model.start
        while root in models:
            root = models[root].start
        if root in backbones and backbones[root].tiny is not None:
            tiny = backbones[root].tiny
            model_type = tiny["family"]
            capacity = tiny["max_position_embeddings"]
            source = f"backbones.{root}.tiny.max_position_embeddings"
        else:
            where = backbones[root].hub if root in backbones else checkpoints[root].path
            config = families.read_config(where)
            if config is None:
                continue
            kind = "backbones" if root in backbones else "checkpoints"
            key = "hub" if root in backbones else "path"
            source = f"{kind}.{root}.{key}: {where}"
            try:
                model_type = families.check_family(families.backbone_type(config), source)
            except ValueError as error:
                raise ConfigError(str(error)) from None
            capacity = families.position_capacity(config)
        settings = model.settings
        problem = families.length_problem(
            model_type, capacity, settings["query_length"], settings["doc_length"]
        )
        if problem is not None:
            raise ConfigError(
                f"models.{name} (query_length, doc_length): {problem} ({source}); shorten "
                f"the lengths (models.{name} or training_defaults) or pick a longer backbone"
            )


def _ablations(
    config: Mapping[str, Any],
    models: Mapping[str, Model],
    first_stages: Mapping[str, FirstStage],
    teachers: Mapping[str, Teacher],
    backbones: Mapping[str, Backbone],
    pairs: list[tuple[str, str]],
) -> tuple[list[Row], dict[str, Model]]:
    """Expand the ablation grids into rows, training only points that no model above
    already covers (an equal recipe reuses that model's runs). When ablations are off,
    only the rows' names are made (references may name them); nothing is trained."""
    ablations = config.get("ablations", {})
    enabled = ablations.get("enabled", False)
    by_recipe = {model.recipe_key(): name for name, model in models.items()}
    rows: list[Row] = []
    extra: dict[str, Model] = {}
    for grid_name, grid in ablations.get("grids", {}).items():
        key = f"ablations.grids.{grid_name}"
        teacher = grid["teacher"]
        if teacher not in teachers:
            raise ConfigError(
                f"{key}.teacher: {teacher!r} is not a teacher{_hint(teacher, teachers)}"
            )
        source = teachers[teacher]
        axes = itertools.product(
            grid["backbone"],
            grid.get("stage1", [True]),
            grid.get("loss", ["ranknet"]),
            grid.get("queries", [source.queries]),
            grid.get("depth", [source.depth]),
        )
        for backbone, stage1, loss, queries, depth in axes:
            if backbone not in backbones:
                raise ConfigError(
                    f"{key}.backbone: {backbone!r} is not a backbone{_hint(backbone, backbones)}"
                )
            start = (
                grid.get("stage1_model", "{backbone}.stage1").format(backbone=backbone)
                if stage1
                else backbone
            )
            if stage1 and start not in models:
                raise ConfigError(
                    f"{key}.stage1_model: {start!r} is not a model (a grid point with stage1: true "
                    "starts from it)"
                )
            stages = ".stage1" if stage1 else ""
            name = f"{backbone}{stages}.{teacher}.{loss}.{queries or 'all'}x{depth}"
            label = (
                f"{grid.get('label', 'Ablation')}: {backbone}, "
                f"{'stage 1 + ' if stage1 else ''}distillation from {source.label}, {loss}, "
                f"{queries or 'all'} queries x depth {depth}"
            )
            spec = {
                "label": label,
                "start": start,
                "data": "teacher",
                "teacher": teacher,
                "depth": depth,
                "loss": loss,
                **({"queries": queries} if queries else {}),
            }
            system = name
            if enabled:
                settings = _training_settings(config, grid.get("recipe", {}), {"loss": loss})
                model = _model(name, spec, settings, first_stages, teachers, {})
                system = by_recipe.setdefault(model.recipe_key(), name)
                if system == name:
                    extra[name] = model
            if name not in {row.key for row in rows}:  # a point shared by several grids
                rows.append(Row(name, label, "ablation", dict.fromkeys(pairs, system)))
    return rows, extra


def _rows(
    first_stages: Mapping[str, FirstStage],
    teachers: Mapping[str, Teacher],
    checkpoints: Mapping[str, Checkpoint],
    models: Mapping[str, Model],
    pairs: list[tuple[str, str]],
    evaluation: Mapping[str, EvaluationSet],
    config: Mapping[str, Any],
) -> list[Row]:
    references = config.get("references", {})
    label = next(iter(first_stages.values())).label if len(first_stages) == 1 else "First stage"
    rows = [Row(FIRST_STAGE_ROW, label, "first_stage", {pair: pair[0] for pair in pairs})]
    for name, teacher in teachers.items():
        systems = {  # teachers are compared on the model zoo's sets, not on TIREx
            pair: name
            for pair in pairs
            if not evaluation[pair[1]].tirex
            and (teacher.ranks_every_split or pair[1] in teacher.evaluation_runs.get(pair[0], {}))
        }
        if systems or name in references or name in config.get("paper_systems", {}):
            kind = "teacher" if teacher.trainable else "reranker"  # evaluated, not distilled
            rows.append(Row(name, teacher.label, kind, systems))
    rows += [
        Row(name, m.label, "model", {pair: name for pair in pairs}) for name, m in models.items()
    ]
    rows += [
        Row(name, c.label, "checkpoint", {pair: name for pair in pairs})
        for name, c in checkpoints.items()
    ]
    return rows
