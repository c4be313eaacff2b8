"""TIREx: the task catalogue (tasks with their corpus groups) and the paper's aggregates.

The paper's TIREx figure is the arithmetic mean over corpus groups of nDCG@10, where a
group's value is the mean over the concatenated queries of its tasks (query ids made
unique by prefixing the task id). Beside it this module reports the mean over tasks and
the geometric mean over groups, each labelled, and it says which tasks were used, which
were skipped and which groups are incomplete, so a partial selection is never averaged
as if it were whole.

Two query rules:

* ``judged`` (default): every judged query counts; one missing from a run scores 0 (as
  ``evaluate.evaluate_run`` writes it);
* ``intersection`` (the authors' notebook): per task, only the judged queries that every
  compared run contains.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from rank_distillm.data.trec import require_columns

METRICS_COLUMNS = ("system", "task", "query_id", "measure", "value")
RUN_QUERY_COLUMNS = ("system", "task", "query_id")

RULES = {
    "judged": "all judged queries; a query missing from a run scores 0",
    "intersection": "only the judged queries every compared run contains (the authors' rule)",
}
AGGREGATES = {
    "groups_mean": "arithmetic mean over corpus groups (the paper's TIREx figure)",
    "tasks_mean": "arithmetic mean over tasks",
    "groups_geomean": "geometric mean over corpus groups",
}


def default_group(task_id: str) -> str:
    """The corpus group of an ir_datasets id: its first component (the docs' parent id;
    ``medline/2004`` and ``medline/2017`` share the group ``medline``)."""
    return task_id.split("/", 1)[0]


@dataclass(frozen=True)
class Task:
    """One TIREx task: a benchmark id, its corpus group, and the ir_datasets id that
    serves it here (the same id, or a local collection standing in for it)."""

    id: str
    group: str
    dataset: str
    licence: str | None = None


@dataclass(frozen=True)
class Selection:
    """The catalogue split into the tasks used and the tasks skipped (with reasons)."""

    used: tuple[Task, ...]
    skipped: Mapping[str, str]  # task id -> reason
    catalogue: tuple[Task, ...]

    def groups(self) -> dict[str, list[str]]:
        """Every group of the catalogue with all its task ids, in catalogue order."""
        found: dict[str, list[str]] = {}
        for task in self.catalogue:
            found.setdefault(task.group, []).append(task.id)
        return found

    def status(self) -> pd.DataFrame:
        """Per group: tasks used, tasks in the catalogue, complete, the skipped tasks."""
        used = {task.id for task in self.used}
        rows = []
        for group, ids in self.groups().items():
            taken = [i for i in ids if i in used]
            rows.append(
                {
                    "group": group,
                    "tasks_used": len(taken),
                    "tasks_total": len(ids),
                    "complete": len(taken) == len(ids),
                    "skipped": ", ".join(f"{i} ({self.skipped[i]})" for i in ids if i not in used),
                }
            )
        return pd.DataFrame(rows)

    def note(self) -> str:
        """One paragraph for a table: what was used and what was left out."""
        status = self.status()
        used_groups = status[status["tasks_used"] > 0]
        text = (
            f"TIREx: {len(self.used)} of {len(self.catalogue)} tasks in "
            f"{len(used_groups)} of {len(status)} corpus groups."
        )
        partial = used_groups[~used_groups["complete"]]
        if len(partial):
            parts = [
                f"{row.group} ({row.tasks_used} of {row.tasks_total} tasks)"
                for row in partial.itertuples()
            ]
            text += f" Incomplete groups: {', '.join(parts)}."
        missing = status[status["tasks_used"] == 0]["group"].tolist()
        if missing:
            text += f" Groups left out: {', '.join(missing)}."
        return text


def select_tasks(config: Mapping[str, Any], where: str = "config tirex") -> Selection:
    """The catalogue ``config['tasks']`` minus ``config['skip']``.

    ``tasks``: a list of ``{id, group?, dataset?, licence?}`` (group defaults to
    ``default_group(id)``, dataset to ``id``). ``skip``: a mapping from a task id or a
    group name to the reason it is left out. Unknown keys, duplicate ids and skip entries
    that name nothing are errors naming the config key.
    """
    unknown = sorted(set(config) - {"tasks", "skip"})
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; allowed: ['skip', 'tasks']")
    entries = config.get("tasks") or []
    if not entries:
        raise ValueError(f"{where}.tasks: list at least one task")
    catalogue = []
    for number, entry in enumerate(entries):
        label = f"{where}.tasks[{number}]"
        if not isinstance(entry, Mapping) or "id" not in entry:
            raise ValueError(f"{label}: expected a mapping with an 'id', got {entry!r}")
        extra = sorted(set(entry) - {"id", "group", "dataset", "licence"})
        if extra:
            raise ValueError(f"{label}: unknown keys {extra}")
        catalogue.append(
            Task(
                id=entry["id"],
                group=entry.get("group") or default_group(entry["id"]),
                dataset=entry.get("dataset") or entry["id"],
                licence=entry.get("licence"),
            )
        )
    ids = [task.id for task in catalogue]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"{where}.tasks: ids listed twice: {repeated}")
    groups = {task.group for task in catalogue}
    skip = dict(config.get("skip") or {})
    strays = sorted(set(skip) - set(ids) - groups)
    if strays:
        raise ValueError(f"{where}.skip: {strays} name no task id and no group of tasks")
    skipped = {}
    for task in catalogue:
        reason = skip.get(task.id, skip.get(task.group))
        if reason is not None:
            skipped[task.id] = str(reason)
    used = tuple(task for task in catalogue if task.id not in skipped)
    if not used:
        raise ValueError(f"{where}.skip: every task is skipped")
    return Selection(used=used, skipped=skipped, catalogue=tuple(catalogue))


def corpora(tasks: Iterable[Task]) -> dict[str, list[Task]]:
    """The tasks by the corpus they search (ir_datasets' docs parent id), so one index
    per corpus serves all its tasks: ``disks45/nocr`` for robust04, trec7 and trec8, but
    ``medline/2004`` and ``medline/2017`` apart although they form one group. Local
    collections must be registered first; nothing is downloaded."""
    import ir_datasets

    found: dict[str, list[Task]] = {}
    for task in tasks:
        found.setdefault(ir_datasets.docs_parent_id(task.dataset), []).append(task)
    return found


# --------------------------------------------------------------------------- aggregates


def _check_coverage(metrics: pd.DataFrame, used: Sequence[Task]) -> None:
    tasks = [task.id for task in used]
    stray = sorted(set(metrics["task"]) - set(tasks))
    if stray:
        raise ValueError(f"metrics for tasks that are not used: {stray}")
    have = set(zip(metrics["system"], metrics["task"], strict=True))
    absent = [(s, t) for s in dict.fromkeys(metrics["system"]) for t in tasks if (s, t) not in have]
    if absent:
        raise ValueError(f"no metrics for (system, task): {absent[:5]} ({len(absent)} in all)")
    query_sets = metrics.groupby(["task", "measure", "system"], sort=False)["query_id"].apply(
        frozenset
    )
    for (task, measure), sets in query_sets.groupby(level=[0, 1], sort=False):
        if sets.nunique() > 1:
            raise ValueError(
                f"task {task!r}, {measure}: the systems were evaluated on different queries "
                f"({dict(sets.map(len).droplevel([0, 1]))} queries); evaluate all against "
                "the same qrels"
            )
    duplicated = metrics.duplicated(["system", "task", "query_id", "measure"])
    if duplicated.any():
        rows = metrics.loc[duplicated].head(3).to_dict("records")
        raise ValueError(f"duplicate per-query rows: {rows}")


def restrict_to_common_queries(metrics: pd.DataFrame, run_queries: pd.DataFrame) -> pd.DataFrame:
    """The authors' rule: per task, keep the judged queries that every system's run
    contains. ``run_queries`` lists (system, task, query_id) for each query in each run."""
    require_columns(run_queries, RUN_QUERY_COLUMNS, "run queries")
    systems = list(dict.fromkeys(metrics["system"]))
    kept = []
    for task, rows in metrics.groupby("task", sort=False):
        common: set[str] | None = None
        for system in systems:
            mask = (run_queries["system"] == system) & (run_queries["task"] == task)
            if not mask.any():
                raise ValueError(f"run queries: none listed for system {system!r}, task {task!r}")
            present = set(run_queries.loc[mask, "query_id"].astype(str))
            common = present if common is None else common & present
        if not common:
            raise ValueError(f"task {task!r}: no judged query is in every system's run")
        kept.append(rows[rows["query_id"].isin(common)])
    return pd.concat(kept, ignore_index=True)


def geometric_mean(values: Iterable[float]) -> float:
    """exp(mean(log x)); 0 when a value is 0 or less."""
    values = list(values)
    if any(v <= 0 for v in values):
        return 0.0
    return math.exp(sum(math.log(v) for v in values) / len(values))


def aggregate(
    metrics: pd.DataFrame,
    selection: Selection,
    rule: str = "judged",
    run_queries: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """Per-task, per-group and overall aggregates of per-query values.

    ``metrics``: columns system, task, query_id, measure, value (``evaluate.evaluate_run``
    per system and task, with the task id added). Every system needs every used task.
    ``rule``: ``judged`` or ``intersection`` (which needs ``run_queries``).

    Returns tidy frames:

    * ``tasks``: system, task, group, measure, value, queries;
    * ``groups``: system, group, measure, value, queries, tasks_used, tasks_total, complete;
    * ``overall``: system, measure, aggregate, label, value, groups, groups_total, complete,
      rule, where ``complete`` is false when a group is partial or left out.
    """
    require_columns(metrics, METRICS_COLUMNS, "TIREx metrics")
    if rule not in RULES:
        raise ValueError(f"rule {rule!r} is not one of {list(RULES)}")
    metrics = metrics.astype({"system": str, "task": str, "query_id": str})
    _check_coverage(metrics, selection.used)
    systems = list(dict.fromkeys(metrics["system"]))
    if rule == "intersection":
        if run_queries is None:
            raise ValueError("the intersection rule needs the queries of every run")
        metrics = restrict_to_common_queries(metrics, run_queries.astype(str))
    group_of = {task.id: task.group for task in selection.used}
    metrics = metrics.assign(
        group=metrics["task"].map(group_of),
        unique_query=metrics["task"] + "/" + metrics["query_id"],
    )
    tasks = _task_means(metrics)
    status = selection.status().set_index("group")
    groups = _group_means(metrics, status)
    overall = _overall(tasks, groups, status, rule)
    tasks, groups = _in_catalogue_order(tasks, groups, selection, systems)
    return {"tasks": tasks, "groups": groups, "overall": overall}


_KEYS = ["system", "measure"]


def _task_means(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per system, measure and task: the mean over the task's queries."""
    return (
        metrics.groupby([*_KEYS, "task", "group"], sort=False)
        .agg(value=("value", "mean"), queries=("query_id", "nunique"))
        .reset_index()
    )


def _group_means(metrics: pd.DataFrame, status: pd.DataFrame) -> pd.DataFrame:
    """Per system, measure and group: the mean over the group's queries, with how many
    of its tasks were used (``status``: ``Selection.status`` by group)."""
    # A group is its tasks' queries concatenated: a mean over queries, not over tasks.
    groups = (
        metrics.groupby([*_KEYS, "group"], sort=False)
        .agg(value=("value", "mean"), queries=("unique_query", "nunique"))
        .reset_index()
    )
    return groups.join(status[["tasks_used", "tasks_total", "complete"]], on="group")


def _overall(
    tasks: pd.DataFrame, groups: pd.DataFrame, status: pd.DataFrame, rule: str
) -> pd.DataFrame:
    """Per system and measure, one row for each of ``AGGREGATES``."""
    everything_complete = bool(status["complete"].all())
    rows = []
    for (system, measure), part in groups.groupby(_KEYS, sort=False):
        task_values = tasks[(tasks["system"] == system) & (tasks["measure"] == measure)]["value"]
        values = {
            "groups_mean": part["value"].mean(),
            "tasks_mean": task_values.mean(),
            "groups_geomean": geometric_mean(part["value"]),
        }
        for name, value in values.items():
            rows.append(
                {
                    "system": system,
                    "measure": measure,
                    "aggregate": name,
                    "label": AGGREGATES[name],
                    "value": float(value),
                    "groups": len(part),
                    "groups_total": len(status),
                    "complete": everything_complete,
                    "rule": rule,
                }
            )
    return pd.DataFrame(rows)


def _in_catalogue_order(
    tasks: pd.DataFrame, groups: pd.DataFrame, selection: Selection, systems: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows in a stable order (systems as first seen, tasks and groups as in the
    catalogue) and the documented columns."""
    task_order = {task.id: n for n, task in enumerate(selection.catalogue)}
    group_order = {group: n for n, group in enumerate(selection.groups())}
    system_order = {system: n for n, system in enumerate(systems)}
    tasks = tasks.sort_values(
        ["system", "task"], key=lambda c: c.map(system_order if c.name == "system" else task_order)
    ).reset_index(drop=True)
    groups = groups.sort_values(
        ["system", "group"],
        key=lambda c: c.map(system_order if c.name == "system" else group_order),
    ).reset_index(drop=True)
    tasks = tasks[["system", "task", "group", "measure", "value", "queries"]]
    groups = groups[
        ["system", "group", "measure", "value", "queries", "tasks_used", "tasks_total", "complete"]
    ]
    return tasks, groups
