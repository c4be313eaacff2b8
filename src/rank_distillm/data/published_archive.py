"""The authors' archive of evaluation runs (Zenodo record 15150456, ``experiments.tar.gz``):
its layout, read as their notebook reads it, and extracting the runs a config needs.

The archive unpacks to ``data/experiments/<folder>/<file>.run``. A folder whose name says
``chatnoir``, ``colbert`` or ``bm25`` (and not ``monoelectra``) holds a first stage
(``colbert`` if its name says so, else ``bm25``: ChatNoir is the ClueWeb BM25); its files
are named by the dashed dataset id (``msmarco-passage-trec-dl-2019-judged.run``). Every
other folder is a system; its files are ``<first stage>_<dashed id>.run`` or
``tirex-rerank_<dashed id>.run`` (TIREx, BM25). A dashed id maps back through
ir_datasets' registry (``id.replace("/", "-")``, the last registered id winning).

Extraction streams the archive once, never unpacking it: each wanted run is re-ranked by
score per query (ties keep the file's order; the file's rank column is ignored, as the
notebook ignores it) and written as a TREC run, and the archive's MD5 is computed on the
way and checked against the configured or recorded one before any run is kept.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd
from tqdm.auto import tqdm

from rank_distillm.data import download
from rank_distillm.data import trec as trec_io

LOGGER = logging.getLogger(__name__)
FIRST_STAGE_SYSTEM = "first_stage"
RUN_FIELDS = ("query_id", "Q0", "doc_id", "rank", "score", "tag")
_FIRST_STAGE_WORDS = ("chatnoir", "colbert", "bm25")


@dataclass(frozen=True)
class Entry:
    """What a run file of the archive holds: a system's run on one (first stage, dataset)."""

    system: str
    first_stage: str
    dataset: str


@functools.cache
def dashed_ids() -> dict[str, str]:
    """ir_datasets ids by their dashed form (``/`` replaced by ``-``)."""
    import ir_datasets

    return {dataset.replace("/", "-"): dataset for dataset in ir_datasets.registry}


def parse_member(path: str) -> Entry:
    """The entry of a run file from its last two path parts, ``<folder>/<file>``, by the
    notebook's rules; a dashed id that no ir_datasets id has raises ValueError."""
    folder, name = path.rstrip("/").split("/")[-2:]
    stem = name.split(".")[0]
    if any(word in folder for word in _FIRST_STAGE_WORDS) and "monoelectra" not in folder:
        system = FIRST_STAGE_SYSTEM
        first_stage = "colbert" if "colbert" in folder else "bm25"
        dashed = stem
    else:
        system = folder
        parts = stem.split("_")
        first_stage, dashed = parts if len(parts) == 2 else ("bm25", parts[0])
        if "tirex" in first_stage:
            first_stage = "bm25"
    dataset = dashed_ids().get(dashed)
    if dataset is None:
        raise ValueError(f"{path}: {dashed!r} is the dashed form of no ir_datasets id")
    return Entry(system, first_stage, dataset)


def read_run_file(handle: IO[bytes] | str | os.PathLike[str], name: str) -> pd.DataFrame:
    """A run in the archive's format (whitespace-separated ``query Q0 doc rank score tag``)
    as strings, with float scores, every row in file order."""
    try:
        frame = pd.read_csv(
            handle,
            sep=r"\s+",
            header=None,
            names=list(RUN_FIELDS),
            dtype={"query_id": str, "Q0": str, "doc_id": str, "rank": str, "tag": str},
            na_filter=False,
            quoting=csv.QUOTE_NONE,
            engine="c",
        )
        frame["score"] = pd.to_numeric(frame["score"], errors="raise").astype("float64")
    except (ValueError, pd.errors.ParserError) as error:
        raise trec_io.TrecFormatError(
            f"{name}: not a run (query Q0 doc rank score tag): {error}"
        ) from error
    if frame.empty:
        raise trec_io.TrecFormatError(f"{name}: has no data lines")
    return frame[["query_id", "doc_id", "score"]]


def normalised(run: pd.DataFrame) -> pd.DataFrame:
    """Ranked by score per query, ties in file order (the notebook's ``rank(method="first")``)."""
    return trec_io.rank_by_score(run)


class _HashingReader:
    """A file object that hashes (MD5) and counts every byte read through it."""

    def __init__(self, raw: IO[bytes], bar: tqdm) -> None:
        self.raw, self.bar, self.digest = raw, bar, hashlib.md5()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        self.bar.update(len(data))
        return data

    def drain(self) -> str:
        while self.read(download.CHUNK):
            pass
        return self.digest.hexdigest()


def extract_runs(
    archive: str | os.PathLike[str],
    wanted: Mapping[Entry, str | os.PathLike[str]],
    md5: str | None,
    checksum_file: str | os.PathLike[str],
    optional: Iterable[Entry] = (),
) -> dict[Entry, str]:
    """Write each wanted entry's run (normalised, TREC format) to its path, reading the
    archive once. The archive's MD5 must match ``md5`` or the one recorded in
    ``checksum_file`` (recorded there if neither exists) before any run is kept. Returns
    the member each entry came from. An entry the archive lacks gets an empty file if it
    is ``optional``; otherwise, as for an entry the archive holds twice, ValueError, and
    nothing is kept."""
    found: dict[Entry, str] = {}
    with tempfile.TemporaryDirectory(dir=_scratch_parent(wanted.values())) as scratch:
        staged = {entry: Path(scratch) / f"{n}.run" for n, entry in enumerate(wanted)}
        size = os.path.getsize(archive)
        with (
            open(archive, "rb") as raw,
            tqdm(
                total=size, unit="B", unit_scale=True, desc=Path(archive).name, mininterval=5
            ) as bar,
        ):
            reader = _HashingReader(raw, bar)
            with tarfile.open(fileobj=reader, mode="r|*") as tar:
                for member in tar:
                    entry = _wanted_entry(member, wanted)
                    if entry is None:
                        continue
                    if entry in found:
                        raise ValueError(
                            f"{archive}: {member.name} and {found[entry]} both hold {entry}"
                        )
                    run = normalised(read_run_file(tar.extractfile(member), member.name))
                    trec_io.write_run(run, staged[entry], entry.system)
                    found[entry] = member.name
            digest = reader.drain()
        download.check_recorded(archive, digest, md5, checksum_file)
        optional = set(optional)
        missing = [entry for entry in wanted if entry not in found and entry not in optional]
        if missing:
            raise ValueError(
                f"{archive}: no run for {len(missing)} of the {len(wanted)} wanted entries "
                f"(first: {missing[0]}); is it the archive of record 15150456?"
            )
        absent = [entry for entry in wanted if entry not in found]
        for entry in absent:
            staged[entry].touch()
        if absent:
            LOGGER.info(
                "%d optional runs are not in the archive (empty files; first: %s)",
                len(absent),
                absent[0],
            )
        for entry, path in wanted.items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(staged[entry], path)
    LOGGER.info("extracted %d runs from %s (MD5 %s)", len(found), archive, digest)
    return found


def _wanted_entry(member: tarfile.TarInfo, wanted: Mapping[Entry, object]) -> Entry | None:
    """The wanted entry a member holds; members that are no run files (or hold a dataset
    no ir_datasets id has) are skipped."""
    if not member.isfile() or not member.name.endswith(".run") or member.name.count("/") < 1:
        return None
    try:
        entry = parse_member(member.name)
    except ValueError as error:
        LOGGER.warning("skipping %s", error)
        return None
    return entry if entry in wanted else None


def _scratch_parent(paths: Iterable[str | os.PathLike[str]]) -> str:
    """A folder on the same file system as the outputs, so that moving them is a rename."""
    first = Path(next(iter(paths), "."))
    first.parent.mkdir(parents=True, exist_ok=True)
    return str(first.parent)
