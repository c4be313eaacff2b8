"""Where every file of an experiment lives: logs, benchmarks, manifests, runs, metrics,
training tables, backbones, checkpoints and the output tables.

All paths are relative to the working directory and live under ``results/<experiment>/``,
except downloads (``resources/``, shared by experiments because their checksums pin them).
"""

from __future__ import annotations

RESULTS = "results"
SPLIT_TRAIN = "train"


def slug(dataset_id: str) -> str:
    """A file-name-safe ir_datasets id: ``msmarco-passage/train`` -> ``msmarco-passage__train``."""
    return dataset_id.replace("/", "__")


class ExperimentPaths:
    """The path methods of :class:`rank_distillm.experiment.Experiment`, mixed into it:
    they read its fields (``name``, ``demo``, ``first_stages``, ``teachers``, ...) and
    its ``corpus`` of a split."""

    @property
    def root(self) -> str:
        return f"{RESULTS}/{self.name}"

    def log(self, *parts: str) -> str:
        return "/".join([self.root, "logs", *parts]) + ".log"

    def benchmark(self, *parts: str) -> str:
        """A job's Snakemake benchmark file (runtime and memory, for the report)."""
        return "/".join([self.root, "benchmarks", *parts]) + ".tsv"

    def demo_manifest(self) -> str:
        assert self.demo is not None
        return f"{self.root}/data/{self.demo['name']}/manifest.json"

    def collection_manifest(self, name: str) -> str:
        """The manifest of a local collection (``collections`` or the demo's TIREx part)."""
        return f"{self.root}/data/collections/{slug(name)}/manifest.json"

    def demo_tirex_manifests(self) -> dict[str, str]:
        corpora = (self.demo_tirex or {}).get("corpora", {})
        return {name: self.collection_manifest(name) for name in corpora}

    def manifests(self) -> list[str]:
        """Local collections to register with ir_datasets before loading any id."""
        found = list(self.local_collections)
        if self.demo:
            found.append(self.demo_manifest())
        found += [self.collection_manifest(name) for name in self.collections]
        found += list(self.demo_tirex_manifests().values())
        return found

    def docstore_marker(self, corpus: str) -> str:
        """Written once a corpus's docstore is built, so parallel jobs only read it."""
        return f"{self.root}/data/docstores/{slug(corpus)}.json"

    def is_local_corpus(self, corpus: str) -> bool:
        """Generated or local corpora, whose docstore their data rule builds."""
        if self.demo and corpus.split("/")[0] == self.demo["name"]:
            return True
        return corpus in self.collections or corpus in self.demo_tirex_manifests()

    def text_inputs(self, split: str) -> list[str]:
        """Files a job reading ``split``'s texts depends on (manifests, docstore)."""
        corpus = self.corpus(split)
        ready = [] if self.is_local_corpus(corpus) else [self.docstore_marker(corpus)]
        return [*self.manifests(), *ready]

    def index_dir(self, corpus: str) -> str:
        return f"{self.root}/index/{slug(corpus)}"

    def run_file(self, split: str, first_stage: str, system: str) -> str:
        return f"{self.root}/runs/{split}/{first_stage}/{system}.run"

    def first_stage_run(self, first_stage: str, split: str) -> str:
        """A given run file (e.g. a published one), else the BM25 run the pipeline retrieves."""
        stage = self.first_stages[first_stage]
        return stage.runs.get(split) or self.run_file(split, first_stage, first_stage)

    def teacher_run(self, teacher: str, split: str, first_stage: str) -> str:
        spec = self.teachers[teacher]
        if split == SPLIT_TRAIN and spec.train_run:
            return spec.train_run
        given = spec.evaluation_runs.get(first_stage, {}).get(split)
        return given or self.run_file(split, first_stage, teacher)

    def system_run(self, split: str, first_stage: str, system: str) -> str:
        """The run a metrics file evaluates."""
        if system in self.first_stages:
            return self.first_stage_run(system, split)
        if system in self.teachers:
            return self.teacher_run(system, split, first_stage)
        return self.run_file(split, first_stage, system)

    def metrics_file(self, split: str, first_stage: str, system: str) -> str:
        return f"{self.root}/metrics/{split}/{first_stage}/{system}.tsv"

    def hard_negative_table(self, first_stage: str) -> str:
        return f"{self.root}/training/hard-negatives/{first_stage}.parquet"

    def teacher_table(self, teacher: str, queries: int | None, depth: int) -> str:
        return f"{self.root}/training/teachers/{teacher}.{queries or 'all'}x{depth}.parquet"

    def teacher_table_inputs(self, teacher: str, queries: int | None, depth: int) -> dict:
        """The teacher_table job's files: the teacher's training run; below its depth, the
        first stage's training run (the sub-sample's candidates); and the authors' published
        sub-sample at this depth, if given, when the table keeps all the teacher's queries."""
        spec = self.teachers[teacher]
        found = {"teacher_run": self.teacher_run(teacher, SPLIT_TRAIN, spec.first_stage)}
        if spec.subsampled(depth):
            found["first_stage"] = self.first_stage_run(spec.first_stage, SPLIT_TRAIN)
        if depth in spec.published_subsamples and queries in (None, spec.queries):
            found["published"] = spec.published_subsamples[depth]
        return found

    def model_table(self, model: str) -> str:
        spec = self.models[model]
        if spec.data == "hard_negatives":
            return self.hard_negative_table(spec.first_stage)
        return self.teacher_table(spec.teacher, spec.queries, spec.depth)

    def backbone_dir(self, name: str) -> str:
        """Tiny backbones are built by a rule; hub backbones are fetched when training."""
        spec = self.backbones[name]
        return f"{self.root}/backbones/{name}" if spec.tiny is not None else spec.hub

    def checkpoint_dir(self, model: str) -> str:
        return f"{self.root}/models/{model}/checkpoint"

    def reranker_path(self, system: str) -> str:
        if system in self.checkpoints:
            return self.checkpoints[system].path
        return self.checkpoint_dir(system)

    def model_start(self, model: str) -> str:
        start = self.models[model].start
        if start in self.models:
            return self.checkpoint_dir(start)
        if start in self.checkpoints:
            return self.checkpoints[start].path
        return self.backbone_dir(start)

    def zoo_outputs(self) -> dict[str, str]:
        """The model zoo: tables (md, csv, tex, html), the tests file, the bar chart."""
        found = {ext: f"{self.root}/model-zoo.{ext}" for ext in ("md", "csv", "tex", "html", "png")}
        return {**found, "tests": f"{self.root}/model-zoo-tests.csv"}

    def tirex_outputs(self) -> dict[str, str]:
        """The TIREx tables (per group and aggregates in md, csv, tex, html; per task; the
        tests) and the per-group plot."""
        return {
            "md": f"{self.root}/tirex.md",
            "csv": f"{self.root}/tirex.csv",
            "tex": f"{self.root}/tirex.tex",
            "html": f"{self.root}/tirex.html",
            "tasks": f"{self.root}/tirex-tasks.csv",
            "tests": f"{self.root}/tirex-tests.csv",
            "png": f"{self.root}/tirex.png",
        }
