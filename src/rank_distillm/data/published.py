"""The authors' published systems as row sources: which of their runs a config uses, where
each lands, and where its per-query metrics go.

Config ``published`` switches this on: the archive (a ``downloads`` entry) is streamed
once, the runs of the paper's tables are extracted (``resources/published/``, shared by
experiments, since the archive's checksum pins them), evaluated with the notebook's rules
(``rank_distillm.evaluation.published``) into per-query metrics, and laid out as the paper's
tables (``rank_distillm.report.published_tables``) under ``results/<experiment>/published/``.
A first stage with ``published: bm25`` (or ``colbert``) re-ranks the authors' runs of
every evaluation set the archive holds (deliverable of issue 15: their BM25 DL20 run and
their TIREx first stages), even without the tables.

For comparing a trained model with the published system it reproduces (config
``paper_systems``; ``rank_distillm.evaluation.reproduction``),
:meth:`PublishedSpec.run_metrics_file` names that system's per-query metrics of one
(first stage, dataset); :meth:`PublishedSpec.group_metrics_file` has those of a TIREx
group as the notebook concatenates it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rank_distillm.data import paper_tables
from rank_distillm.data.published_archive import FIRST_STAGE_SYSTEM, Entry

RESOURCES = "resources/published"
#: The variant of the Cranfield cells with the archive's query ids mapped to ir_datasets'.
IDS_MAPPED = "ids-mapped"
#: The one task whose archived runs number queries unlike ir_datasets (cran.qry's ``.I``).
CRANFIELD = "cranfield"
TABLES = ("trec-dl", "tirex", "loss", "subsampling-queries", "subsampling-depth")
FORMATS = ("md", "csv", "tex")


def _slug(dataset: str) -> str:
    return dataset.replace("/", "__")


def run_file(entry: Entry, variant: str = "") -> str:
    """Where the run of an archive entry is extracted to (normalised, TREC format); with
    ``IDS_MAPPED``, Cranfield's run with ir_datasets' query ids."""
    name = _slug(entry.dataset) + (f".{variant}" if variant else "")
    return f"{RESOURCES}/{entry.system}/{entry.first_stage}/{name}.run"


def archive_holds(first_stage: str, dataset: str) -> bool:
    """Whether the archive has a first-stage run of ``dataset`` for ``first_stage``."""
    return (first_stage, dataset) in paper_tables.load().archive_pairs()


def tirex_group(task: str) -> str:
    """A task's TIREx group: the notebook's docs parent id (the two medline years merged),
    named by its first part (``argsme/2020-04-01`` is ``argsme``)."""
    import ir_datasets

    return ir_datasets.docs_parent_id(task).split("/")[0]


def _archive_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of :class:`PublishedSpec` that config ``published`` and its archive's
    ``downloads`` entry set."""
    from rank_distillm.data.download import checksum_path

    settings = config["published"]
    name = settings["archive"].removeprefix("resources/")
    source = config.get("downloads", {}).get(name, {})
    return {
        "archive": settings["archive"],
        "md5": source.get("md5"),
        "checksum_file": checksum_path(name),
        "record": source.get("record"),
        "tirex": settings.get("tirex", True),
        "map_cranfield_ids": settings.get("map_cranfield_ids", True),
    }


@dataclass(frozen=True)
class PublishedSpec:
    """What the published stage reads and writes for one experiment."""

    root: str  # results/<experiment>/published
    archive: str  # resources/<download>
    md5: str | None  # the archive's published MD5, where configured
    checksum_file: str  # where its MD5 is recorded otherwise
    record: int | None
    tirex: bool  # evaluate the TIREx tasks (needs their qrels through ir_datasets)
    map_cranfield_ids: bool
    manifests: tuple[str, ...] = ()
    first_stage_runs: tuple[Entry, ...] = ()  # runs the pipeline's first stages re-rank
    paper: paper_tables.PaperTables = field(default_factory=paper_tables.load, repr=False)

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        root: str,
        first_stage_runs: Sequence[Entry] = (),
        manifests: Sequence[str] = (),
    ) -> PublishedSpec:
        """``config['published']`` with its archive's ``downloads`` entry (the schema and
        ``experiment.from_config`` have checked both)."""
        return cls(
            root=f"{root}/published",
            **_archive_settings(config),
            manifests=tuple(manifests),
            first_stage_runs=tuple(first_stage_runs),
        )

    # ----------------------------------------------------------------- what is evaluated

    def trec_dl_pairs(self) -> list[tuple[str, str]]:
        return self.paper.trec_dl_pairs()

    def tirex_tasks(self) -> list[str]:
        return list(self.paper.tirex_tasks) if self.tirex else []

    def groups(self) -> dict[str, list[str]]:
        """TIREx groups and their tasks, in the notebook's order."""
        found: dict[str, list[str]] = {}
        for task in self.tirex_tasks():
            found.setdefault(tirex_group(task), []).append(task)
        return found

    def tirex_systems(self) -> list[str]:
        """Every system scored on the TIREx tasks: the TIREx table's, then the other
        systems of the TREC DL tables (the archive may lack their TIREx runs)."""
        return list(dict.fromkeys([*self.paper.tirex_systems(), *self.paper.trec_dl_systems()]))

    def table_entries(self) -> list[Entry]:
        """The runs the tables need: each TREC DL system on the four TREC DL pairs, each
        system of the TIREx table on every task. The archive must hold them."""
        trec = [
            Entry(system, stage, dataset)
            for system in self.paper.trec_dl_systems()
            for stage, dataset in self.trec_dl_pairs()
        ]
        tirex = [
            Entry(system, "bm25", task)
            for system in self.paper.tirex_systems()
            for task in self.tirex_tasks()
        ]
        return trec + tirex

    def optional_entries(self) -> list[Entry]:
        """The TIREx runs of the other systems, for comparing them per task and group; one
        the archive lacks is extracted as an empty file (and scored as absent)."""
        others = [s for s in self.tirex_systems() if s not in self.paper.tirex_systems()]
        return [Entry(system, "bm25", task) for system in others for task in self.tirex_tasks()]

    def scored_entries(self) -> list[Entry]:
        """Every run the evaluation scores: the tables' and the optional ones."""
        return [*self.table_entries(), *self.optional_entries()]

    def entries(self) -> list[Entry]:
        """Every run to extract: the scored ones and the pipeline's first stages'."""
        return list(dict.fromkeys([*self.scored_entries(), *self.first_stage_runs]))

    def run_files(self) -> dict[Entry, str]:
        return {entry: run_file(entry) for entry in self.entries()}

    # ----------------------------------------------------------------- metrics

    def metrics_file(self, system: str, first_stage: str, dataset: str, variant: str = "") -> str:
        """Per-query nDCG@10 (``evaluate.write_per_query`` format, with ``in_run``) of a
        published system on one (first stage, dataset), by the notebook's rules."""
        folder = _slug(dataset) + (f".{variant}" if variant else "")
        return f"{self.root}/metrics/{first_stage}/{folder}/{system}.tsv"

    def group_metrics_file(self, system: str, group: str, variant: str = "") -> str:
        """Per-query nDCG@10 of a published system on a TIREx group: its tasks' topics,
        qrels and runs concatenated without prefixing query ids, as the notebook does."""
        folder = group + (f".{variant}" if variant else "")
        return f"{self.root}/metrics/tirex-groups/{folder}/{system}.tsv"

    def scores(self, first_stage: str, dataset: str) -> bool:
        """Whether the evaluation writes the published systems' metrics of this pair."""
        pair = (first_stage, dataset)
        return pair in self.trec_dl_pairs() or (
            first_stage == "bm25" and dataset in self.tirex_tasks()
        )

    def run_metrics_file(self, system: str, first_stage: str, dataset: str) -> str:
        """A published run's per-query metrics for comparing it with ours on the same
        queries: :meth:`metrics_file`, except Cranfield's with its query ids mapped to
        ir_datasets' where ``map_cranfield_ids`` (ours use ir_datasets' ids)."""
        if dataset == CRANFIELD and self.cranfield_mapped():
            return self.group_metrics_file(system, CRANFIELD, IDS_MAPPED)
        return self.metrics_file(system, first_stage, dataset)

    def ids_mapped_runs(self) -> dict[str, str]:
        """The pipeline's Cranfield first-stage run: the extracted run -> the same with
        ir_datasets' query ids (which the re-rankers' topics and the qrels use)."""
        return {
            run_file(entry): run_file(entry, IDS_MAPPED)
            for entry in self.first_stage_runs
            if entry.dataset == CRANFIELD
        }

    def cranfield_mapped(self) -> bool:
        return self.map_cranfield_ids and "cranfield" in self.tirex_tasks()

    def metrics_files(self) -> list[str]:
        """Every metrics file the evaluation writes (an absent optional run's has no rows)."""
        entries = self.scored_entries()
        files = [self.metrics_file(e.system, e.first_stage, e.dataset) for e in entries]
        for group in self.groups():
            files += [self.group_metrics_file(s, group) for s in self.tirex_systems()]
        if self.cranfield_mapped():
            files += [
                self.group_metrics_file(s, "cranfield", IDS_MAPPED) for s in self.tirex_systems()
            ]
        return files

    # ----------------------------------------------------------------- tables

    def table_files(self) -> dict[str, str]:
        """``<table>.<format>`` of every table written, the figure and the cell-by-cell
        comparison with the printed tables."""
        tables = [t for t in TABLES if t != "tirex" or self.tirex]
        found = {f"{t}.{ext}": f"{self.root}/{t}.{ext}" for t in tables for ext in FORMATS}
        found["figure"] = f"{self.root}/subsampling.png"
        found["comparison"] = f"{self.root}/comparison.csv"
        return found


__all__ = ["FIRST_STAGE_SYSTEM", "IDS_MAPPED", "Entry", "PublishedSpec", "archive_holds"]
