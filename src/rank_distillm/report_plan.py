"""Where the report meets the experiment: which files the report stage reads and writes
(:class:`~rank_distillm.report.files.ReportSpec`) and what a model card says
(:func:`card_facts`), derived from the experiment model. It lives above the wings so that
the report wing never imports the experiment."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rank_distillm.config.hints import did_you_mean
from rank_distillm.config.plain import plain
from rank_distillm.evaluation import significance
from rank_distillm.experiment import FIRST_STAGE_ROW, Experiment, benchmark_id
from rank_distillm.model import families
from rank_distillm.report import model_zoo
from rank_distillm.report.files import Cell, LossPlot, ReportSpec, TirexCell, TirexSpec, loss_png

if TYPE_CHECKING:
    from rank_distillm.data.published import PublishedSpec

#: A hub repository id (``owner/name``), as opposed to a local path.
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def report_spec(
    exp: Experiment,
    config: Mapping[str, Any],
    published: PublishedSpec | None = None,
) -> ReportSpec:
    """``published``: the spec of config ``published`` (None without); the trained
    rows that ``paper_systems`` maps to one of the authors' systems are then compared
    with that system's runs. Raises ``ValueError`` naming
    ``report.significance.baseline`` when the baseline is not a table row."""
    settings_config = config.get("report", {})
    tests = settings_config.get("significance", {})
    baseline = tests.get("baseline", FIRST_STAGE_ROW)
    keys = [row.key for row in exp.rows]
    if baseline not in keys:
        raise ValueError(
            f"report.significance.baseline: {baseline!r} is not a table row"
            + did_you_mean(baseline, keys, "rows")
        )
    settings = significance.Settings(
        baseline=baseline,
        alpha=float(tests.get("alpha", 0.05)),
        rule=settings_config.get("query_rule", "judged"),
    )
    table = set(exp.table_pairs)
    cells = tuple(
        Cell(row.key, row.label, stage, split, exp.metrics_file(split, stage, system))
        for row in exp.rows
        for (stage, split), system in row.systems.items()
        if (stage, split) in table
    )
    base_pairs = {(c.first_stage, c.split) for c in cells if c.row == baseline}
    compared = dict.fromkeys(
        c.row for c in cells if c.row != baseline and (c.first_stage, c.split) in base_pairs
    )
    root = exp.root
    sets = {name: spec for name, spec in exp.evaluation.items() if not spec.tirex}
    title = settings_config.get("title", "Model zoo")
    theirs, tirex_theirs = ([], []) if published is None else _published_cells(exp, published)
    return ReportSpec(
        root=root,
        cells=cells,
        rows=tuple((row.key, row.label) for row in exp.rows),
        first_stages={name: stage.label for name, stage in exp.first_stages.items()},
        evaluation={name: e.label for name, e in sets.items()},
        relevance_levels={e.label: e.relevance_level for e in sets.values()},
        references=exp.references,
        title=title,
        notes=(*exp.table_notes(), *settings_config.get("notes", [])),
        measures=tuple(config["measures"]),
        settings=settings,
        latex_label=settings_config.get("latex_label", "tab:model-zoo"),
        zoo=model_zoo.Outputs(**exp.zoo_outputs()),
        tirex=_tirex_spec(exp, f"TIREx: {title}", tirex_theirs),
        published=tuple(theirs),
        per_query={row: f"{root}/plots/per-query/{row}.png" for row in compared},
        losses={
            name: LossPlot(
                name, model.label, f"{root}/models/{name}/loss.csv", loss_png(root, name)
            )
            for name, model in exp.models.items()
        },
    )


def _published_cells(exp: Experiment, published: PublishedSpec) -> tuple[list[Cell], list[Cell]]:
    """The authors' run of the system of every trained row that ``paper_systems`` maps to
    one (``row``: ours, ``label``: their system), on each of the row's pairs whose first
    stage re-ranks the authors' runs and whose set their runs were scored on: the model
    zoo's, then the TIREx tasks' (``split``: the task id)."""
    zoo: list[Cell] = []
    tirex: list[Cell] = []
    for row in exp.rows:
        system = exp.paper_systems.get(row.key)
        if row.kind not in ("model", "ablation") or system is None:
            continue
        for stage, split in row.systems:
            archive_stage, spec = exp.first_stages[stage].published, exp.evaluation[split]
            dataset = benchmark_id(spec)
            if archive_stage is None or not published.scores(archive_stage, dataset):
                continue
            metrics = published.run_metrics_file(system, archive_stage, dataset)
            if spec.tirex:
                tirex.append(Cell(row.key, system, stage, dataset, metrics))
            else:
                zoo.append(Cell(row.key, system, stage, split, metrics))
    return zoo, tirex


def _tirex_spec(exp: Experiment, title: str, published: Sequence[Cell] = ()) -> TirexSpec | None:
    """TIREx cells of the rows that have every task (teachers do not)."""
    pairs = exp.tirex_pairs
    if not exp.tirex or not pairs:
        return None
    cells = tuple(
        TirexCell(
            row.key,
            row.label,
            exp.evaluation[split].label,
            exp.metrics_file(split, stage, row.systems[(stage, split)]),
            exp.system_run(split, stage, row.systems[(stage, split)]),
        )
        for row in exp.rows
        if all(pair in row.systems for pair in pairs)
        for stage, split in pairs
    )
    return TirexSpec(
        cells=cells,
        selection=exp.tirex,
        rule=exp.tirex_rule,
        first_stage=exp.tirex_first_stage,
        title=title,
        outputs=exp.tirex_outputs(),
        published=tuple(published),
    )


def _start_chain(experiment: Experiment, model: str) -> list[dict[str, str]]:
    """Where ``model`` starts, back to a backbone or published checkpoint."""
    chain = []
    start = experiment.models[model].start
    while start in experiment.models:
        chain.append({"name": start, "label": experiment.models[start].label, "kind": "model"})
        start = experiment.models[start].start
    if start in experiment.checkpoints:
        checkpoint = experiment.checkpoints[start]
        chain.append({"name": start, "label": checkpoint.label, "kind": "checkpoint"})
    else:
        backbone = experiment.backbones[start]
        family = families.NAMES[backbone.tiny["family"]] if backbone.tiny else ""
        label = backbone.hub or f"a tiny {family} built from {experiment.collection}"
        chain.append({"name": start, "label": label, "kind": "backbone"})
    return chain


def _base_model(experiment: Experiment, root: str) -> str | None:
    """The hub id the chain starts from (the hub's ``base_model``), if it is one."""
    if root in experiment.checkpoints:
        path = experiment.checkpoints[root].path
    else:
        path = experiment.backbones[root].hub
    if path and HUB_ID.fullmatch(path) and not Path(path).exists():
        return path
    return None


def card_facts(experiment: Experiment, model: str) -> dict[str, Any]:
    """Plain data (JSON-serialisable) about ``model`` from the experiment: its recipe,
    where it starts, its training data and the metrics files of its evaluation."""
    spec = experiment.models[model]
    chain = _start_chain(experiment, model)
    recipe: dict[str, Any] = {"label": spec.label, "start": spec.start, "data": spec.data}
    data: dict[str, Any] = {"kind": spec.data, "dataset": experiment.train_dataset}
    if spec.data == "hard_negatives":
        stage = experiment.first_stages[spec.first_stage]
        recipe["first_stage"] = spec.first_stage
        data.update(
            first_stage=stage.label,
            depth=experiment.hard_negatives.get("depth", 200),
            num_queries=experiment.hard_negatives.get("num_queries"),
        )
    else:
        teacher = experiment.teachers[spec.teacher]
        recipe.update(teacher=spec.teacher, queries=spec.queries, depth=spec.depth)
        data.update(
            teacher=teacher.label,
            teacher_first_stage=experiment.first_stages[teacher.first_stage].label,
            simulated_noise=teacher.noise,
            generated_by=teacher.generate["model"] if teacher.generate else None,
            teacher_run=Path(teacher.train_run).name if teacher.train_run else None,
            num_queries=spec.queries,
            depth=spec.depth,
        )
    recipe.update(plain(spec.settings))
    table = Path(experiment.model_table(model))
    evaluation = [
        {
            "first_stage": stage,
            "first_stage_label": experiment.first_stages[stage].label,
            "depth": experiment.first_stages[stage].depth,
            "split": split,
            "label": experiment.evaluation[split].label,
            "dataset": experiment.evaluation[split].dataset,
            "relevance_level": experiment.evaluation[split].relevance_level,
            "tirex": experiment.evaluation[split].tirex,
            "metrics": experiment.metrics_file(split, stage, model),
        }
        for stage, split in experiment.pairs
    ]
    stage, split = (experiment.table_pairs or experiment.pairs)[0]
    usage = {
        "dataset": experiment.dataset_id(split),
        "corpus": experiment.corpus(split),
        "first_stage_run": experiment.first_stage_run(stage, split),
        "index": experiment.index_dir(experiment.corpus(split)),
        "depth": experiment.first_stages[stage].depth,
        "relevance_level": experiment.evaluation[split].relevance_level,
        "manifests": experiment.manifests(),
    }
    return {
        "name": model,
        "label": spec.label,
        "experiment": experiment.name,
        "demo": bool(experiment.demo),
        "collection": experiment.collection,
        "recipe": recipe,
        "chain": chain,
        "base_model": _base_model(experiment, chain[-1]["name"]),
        "data": data,
        "measures": list(experiment.config["measures"]),
        "checkpoint": experiment.checkpoint_dir(model),
        "loss_log": f"{experiment.root}/models/{model}/loss.csv",
        "table_stats": str(table.with_suffix(".json")),
        "evaluation": evaluation,
        "usage": usage,
    }
