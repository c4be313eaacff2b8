"""Merging the runs of a sharded teacher generation into the one run the teacher table reads.

Each shard is checked before anything is written: its statistics must name the settings
that decide the result (model, prompt, window, depth, ...), the batch size that cut the
partition and its own place in it; its run must hold exactly its share of the sampled
queries, in order, each a permutation of its first-stage candidates. A shard that fails a
check is named in the error, and no merged run is written. The merged run is the shards'
rows in shard order, which is the unsharded run's order (``shards``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from rank_distillm.data import atomic
from rank_distillm.data import trec as trec_io
from rank_distillm.teachers.llm.generate import (
    GenerationSettings,
    sampled_candidates,
    shard_identity,
)
from rank_distillm.teachers.llm.parsing import RepairCounts
from rank_distillm.teachers.llm.shards import Shard, shard_items

LOGGER = logging.getLogger(__name__)

#: Statistics that add up over shards (the rest describe the settings or are rates).
_SUMMED = (
    "queries",
    "resumed_queries",
    "generated_queries",
    "passages",
    "prompt_tokens",
    "generation_seconds",
    "windows_shortened_to_fit",
)


def merge_shard_runs(
    first_stage_run: Path,
    shard_files: Sequence[tuple[Path, Path]],
    out_run: Path,
    settings: GenerationSettings,
    num_queries: int | None,
    tag: str,
    out_stats: Path | None = None,
) -> dict[str, Any]:
    """Check the ``(run, statistics)`` files of shards 1..N and write their merged run
    (and statistics); return the merged statistics."""
    candidates = sampled_candidates(first_stage_run, settings.depth, num_queries, settings.seed)
    query_ids = list(candidates)
    frames, stats = [], []
    for index, (run_path, stats_path) in enumerate(shard_files, start=1):
        shard = Shard(index, len(shard_files))
        stats.append(_checked_stats(stats_path, settings, shard))
        expected = shard_items(query_ids, settings.batch_size, shard)
        frames.append(_checked_run(run_path, shard, expected, candidates))
    merged = _merged_statistics(stats)
    if out_stats is not None:
        atomic.atomic_write_text(out_stats, json.dumps(merged, indent=2, sort_keys=True) + "\n")
    trec_io.write_run(pd.concat(frames, ignore_index=True), out_run, tag=tag)
    repairs = RepairCounts(**merged["repairs"])
    LOGGER.info("repairs over %d queries, %s", merged["queries"], repairs.summary())
    LOGGER.info(
        "merged %d shards: %d queries, %d rows -> %s",
        len(shard_files),
        merged["queries"],
        merged["passages"],
        out_run,
    )
    return merged


def _checked_stats(path: Path, settings: GenerationSettings, shard: Shard) -> dict[str, Any]:
    """A shard's statistics, refused unless they were written for ``settings`` and ``shard``."""
    try:
        stats = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{shard} ({path}): no readable statistics ({exc})") from exc
    wanted = json.loads(json.dumps(shard_identity(settings, shard)))  # as JSON reads it back
    found = {key: stats.get(key) for key in wanted}
    if found != wanted:
        changed = [key for key in wanted if found[key] != wanted[key]]
        if "settings" in changed and isinstance(found["settings"], dict):
            changed.remove("settings")
            changed += sorted(
                f"settings.{key}"
                for key in set(wanted["settings"]) | set(found["settings"])
                if wanted["settings"].get(key) != found["settings"].get(key)
            )
        raise ValueError(
            f"{shard} ({path}) was generated with other settings (differs in {changed}): "
            "delete its run to generate it again with the current ones"
        )
    return stats


def _checked_run(
    path: Path,
    shard: Shard,
    expected: Sequence[str],
    candidates: Mapping[str, Sequence[str]],
) -> pd.DataFrame:
    """A shard's run, refused unless it ranks exactly its queries' candidates, in order."""
    run = trec_io.read_run(path, allow_empty=True)
    found = list(dict.fromkeys(run["query_id"]))
    if found != list(expected):
        missing = [query_id for query_id in expected if query_id not in set(found)]
        others = [query_id for query_id in found if query_id not in set(expected)]
        raise ValueError(
            f"{shard} ({path}) is incomplete or not this shard's: it ranks {len(found)} "
            f"queries, the shard has {len(expected)}; missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, not the shard's {others[:5]}"
            f"{' ...' if len(others) > 5 else ''}"
            + ("" if missing or others else ", in another order")
        )
    for query_id, doc_ids in run.groupby("query_id", sort=False)["doc_id"]:
        if sorted(doc_ids) != sorted(candidates[query_id]):
            raise ValueError(
                f"{shard} ({path}): query {query_id} does not rank exactly its "
                f"{len(candidates[query_id])} first-stage candidates"
            )
    return run


def _merged_statistics(shards: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The shards' statistics added up; speed is per GPU (generated queries per second of
    generation, summed over the shards)."""
    merged = {key: value for key, value in shards[0].items() if key not in _SUMMED}
    for key in _SUMMED:
        merged[key] = sum(stats[key] for stats in shards)
    merged["generation_seconds"] = round(merged["generation_seconds"], 3)
    seconds = merged["generation_seconds"]
    merged["queries_per_second"] = (
        round(merged["generated_queries"] / seconds, 4) if seconds else None
    )
    merged["repairs"] = RepairCounts.total(
        RepairCounts(**stats["repairs"]) for stats in shards
    ).as_dict()
    merged["shard"] = None
    merged["shards"] = len(shards)
    return merged
