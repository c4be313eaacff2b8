"""The paper's figures beside the reproduced ones (config ``references`` and ``paper_systems``).

A row's references are ``{first stage: {key: figure}}``, where a key is an evaluation set,
``mean`` (the first stage's mean over its sets), ``tirex`` (the TIREx figure: the
arithmetic mean over corpus groups), ``tirex:geomean`` (the geometric mean over groups)
or ``tirex:<group>`` (one corpus group). ``paper_systems`` names, per table row, the
authors' system it reproduces; that system's figures are read from the notebook's printed
tables (:mod:`rank_distillm.data.paper_tables`) rather than copied into the config, and are
merged with the config's own ``references`` (figures from elsewhere, e.g. a README).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rank_distillm.config.errors import ConfigError
from rank_distillm.config.hints import did_you_mean as hint
from rank_distillm.data import paper_tables

References = Mapping[str, Mapping[str, Mapping[str, float]]]
MEAN = "mean"
TIREX = "tirex"
TIREX_GEOMEAN = "tirex:geomean"
_GROUP_PREFIX = "tirex:"


def tirex_group(group: str) -> str:
    """The references key of one TIREx corpus group."""
    return f"{_GROUP_PREFIX}{group}"


def tirex_keys(groups: Iterable[str]) -> dict[str, str]:
    """The TIREx table's references keys: group keys by group, then the two means."""
    found = {tirex_group(group): group for group in groups}
    return {**found, TIREX: TIREX, TIREX_GEOMEAN: TIREX_GEOMEAN}


def _key(place: paper_tables.Place, sets_by_dataset: Mapping[str, str]) -> str | None:
    """The references key of a printed figure's place (None: no such set here)."""
    first, second = place
    if first == paper_tables.TIREX:
        am, gm = paper_tables.MEANS
        return {am: TIREX, gm: TIREX_GEOMEAN}.get(second, tirex_group(second))
    return MEAN if second == paper_tables.MEAN else sets_by_dataset.get(second)


def from_paper(
    paper_systems: Mapping[str, str],
    first_stages: Mapping[str, str],
    sets_by_dataset: Mapping[str, str],
    tirex_stage: str | None,
) -> dict[str, dict[str, dict[str, float]]]:
    """References from the printed tables: for each row of ``paper_systems`` (row -> the
    authors' system), its system's figures placed under our first stage of that figure's
    (``first_stages``: ours -> the archive's, ``bm25`` or ``colbert``) and the evaluation
    set of the same dataset id; TIREx figures under ``tirex_stage``. Figures without such a
    place here are left out."""
    paper = paper_tables.load()
    known = list(paper.systems)
    ours = {archive: name for name, archive in reversed(first_stages.items())}
    found: dict[str, dict[str, dict[str, float]]] = {}
    for row, system in paper_systems.items():
        if system not in known:
            raise ConfigError(
                f"paper_systems.{row}: {system!r} is in none of the paper's tables"
                f"{hint(system, known)}"
            )
        for place, value in paper.figures(system).items():
            stage = tirex_stage if place[0] == paper_tables.TIREX else ours.get(place[0])
            key = _key(place, sets_by_dataset)
            if stage is not None and key is not None:
                found.setdefault(row, {}).setdefault(stage, {})[key] = value
    return found


def merge(explicit: References, derived: References) -> dict[str, dict[str, dict[str, float]]]:
    """The config's ``references`` and those from ``paper_systems``; a figure given both
    ways is an error (one source per figure)."""
    merged = {row: {stage: dict(v) for stage, v in by.items()} for row, by in derived.items()}
    for row, by_stage in explicit.items():
        for stage, values in by_stage.items():
            target = merged.setdefault(row, {}).setdefault(stage, {})
            for key, value in values.items():
                if key in target:
                    raise ConfigError(
                        f"references.{row}.{stage}.{key}: also the paper's printed figure "
                        f"({target[key]}) of paper_systems.{row}; give each figure once"
                    )
                target[key] = float(value)
    return merged


def check(
    references: References,
    rows: Sequence[str],
    first_stages: Iterable[str],
    evaluation: Iterable[str],
    tirex_groups: Sequence[str],
    where: str = "references",
) -> None:
    """Every row, first stage and key of ``references`` (or ``paper_systems``) exists."""
    first_stages, evaluation = list(first_stages), list(evaluation)
    keys = [*evaluation, MEAN, TIREX, *(tirex_keys(tirex_groups) if tirex_groups else {})]
    for system, by_stage in references.items():
        if system not in rows:
            raise ConfigError(f"{where}.{system}: no table row has this name{hint(system, rows)}")
        for stage, values in by_stage.items():
            if stage not in first_stages:
                raise ConfigError(
                    f"{where}.{system}.{stage}: not a first stage{hint(stage, first_stages)}"
                )
            for key in values:
                if key not in keys:
                    raise ConfigError(
                        f"{where}.{system}.{stage}.{key}: not an evaluation set, 'mean', "
                        f"'tirex', 'tirex:geomean' or 'tirex:<corpus group>'{hint(key, keys)}"
                    )


def resolve(
    config: Mapping[str, Any],
    rows: Sequence[str],
    first_stages: Mapping[str, str],
    evaluation: Mapping[str, str],
    tirex_stage: str | None,
    tirex_groups: Sequence[str],
) -> dict[str, dict[str, dict[str, float]]]:
    """The experiment's references: ``config['references']`` merged with the figures of
    ``config['paper_systems']``, checked. ``first_stages``: ours -> the archive's first
    stage whose figures they take (``first_stages.<name>.published``, else the same name);
    ``evaluation``: set name -> dataset id."""
    paper_systems = config.get("paper_systems", {})
    for row in paper_systems:
        if row not in rows:
            raise ConfigError(f"paper_systems.{row}: no table row has this name{hint(row, rows)}")
    explicit = config.get("references", {})
    check(explicit, rows, list(first_stages), evaluation, tirex_groups)
    sets_by_dataset = {dataset: name for name, dataset in evaluation.items()}
    derived = from_paper(paper_systems, first_stages, sets_by_dataset, tirex_stage)
    return merge(explicit, derived)
