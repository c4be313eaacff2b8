"""The pipeline's steps, file in and file out: what each Snakemake rule calls.

Each function reads the previous stage's files and writes its own, so a step can be
run, tested or replaced without Snakemake. ``manifests`` are local collections
(``datasets.Manifest``) to register before ``dataset_id`` is loaded. Step names say
what they write, so they never shadow the library function they call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rank_distillm.data import atomic, datasets
from rank_distillm.data import trec as trec_io

LOGGER = logging.getLogger(__name__)
Paths = Sequence[str | Path]


def make_demo(
    settings: Mapping[str, Any],
    manifest: Path,
    name: str,
    scoreddocs: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Generate the demo collection next to ``manifest`` and build its docstore.

    ``scoreddocs`` maps subsets to run files (relative to the manifest's folder) that
    ir_datasets serves as their scoreddocs once they exist.
    """
    from rank_distillm.data import demo_collection as demo

    collection = demo.generate_collection(demo.collection_settings(settings))
    demo.write_collection(collection, manifest, name, scoreddocs or {})
    dataset = datasets.load(name, [manifest])
    counts = {"passages": datasets.build_docstore(dataset)}
    counts.update({subset: len(frame) for subset, frame in collection.queries.items()})
    LOGGER.info("demo collection %s: %s", name, counts)
    return counts


def register_local_collection(name: str, entry: Mapping[str, Any], manifest_path: Path) -> None:
    """Describe a corpus on disk (config ``collections.<name>``), read it all once (building
    the docstore beside the manifest, failing on malformed files), then write the manifest:
    written last, it marks the collection ready."""
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest = datasets.Manifest.from_config(name, entry, manifest_path.parent)
    counts = datasets.check_collection(manifest)
    manifest.write(manifest_path)
    LOGGER.info("local collection %s: %s", name, counts)


def make_demo_tirex(settings: Mapping[str, Any], out_dir: Path) -> None:
    """Generate the demo's TIREx-like corpora under ``out_dir/<name>/`` and build their
    docstores."""
    from rank_distillm.data import demo_tirex

    for name, path in demo_tirex.write_corpora(
        demo_tirex.tirex_settings(settings), out_dir
    ).items():
        counts = datasets.check_collection(datasets.Manifest.read(path))
        LOGGER.info("demo TIREx corpus %s: %s", name, counts)


def write_docstore_marker(manifests: Paths, corpus: str, out_json: Path) -> None:
    """Build ``corpus``'s docstore once (ir_datasets downloads the corpus if needed)."""
    count = datasets.build_docstore(datasets.load(corpus, manifests))
    atomic.atomic_write_text(out_json, json.dumps({"corpus": corpus, "docs": count}) + "\n")
    LOGGER.info("docstore of %s ready: %d documents", corpus, count)


def build_tiny_backbone(
    manifests: Paths, collection_id: str, settings: Mapping[str, Any], out_dir: Path
) -> None:
    from rank_distillm.model import numerics
    from rank_distillm.model.tiny_backbone import TinySettings, build_tiny

    numerics.enforce()
    dataset = datasets.load(collection_id, manifests)
    texts = (text for _, text in datasets.iter_doc_texts(dataset))
    tiny = TinySettings(**settings)
    parameters = build_tiny(texts, tiny, out_dir)
    LOGGER.info("tiny %s backbone with %d parameters in %s", tiny.family, parameters, out_dir)


def build_bm25_index(manifests: Paths, corpus: str, index_dir: Path) -> None:
    from rank_distillm.retrieve import build_index

    build_index(datasets.iter_doc_texts(datasets.load(corpus, manifests)), index_dir)


def retrieve_bm25_run(
    manifests: Paths,
    dataset_id: str,
    index_dir: Path,
    out_run: Path,
    settings: Mapping[str, float],
    num_results: int,
) -> None:
    from rank_distillm.retrieve import bm25

    k1, b = settings["k1"], settings["b"]
    topics = datasets.topics(datasets.load(dataset_id, manifests))
    run = bm25(index_dir, topics, k1=k1, b=b, num_results=num_results)
    if run.empty:
        raise ValueError(
            f"BM25 retrieved nothing for any of the {len(topics)} queries of {dataset_id} "
            f"from {index_dir}: is the index built over this query set's corpus?"
        )
    trec_io.write_run(run, out_run, tag=f"bm25.k1-{k1}.b-{b}")
    LOGGER.info("BM25: %d queries, %d rows -> %s", run["query_id"].nunique(), len(run), out_run)


def write_simulated_teacher_run(
    manifests: Paths,
    dataset_id: str,
    first_stage_run: Path,
    out_run: Path,
    depth: int,
    noise: float,
    seed: int,
) -> None:
    from rank_distillm.teachers.simulated import simulate_teacher

    qrels = datasets.qrels(datasets.load(dataset_id, manifests))
    run = simulate_teacher(trec_io.read_run(first_stage_run), qrels, depth, noise, seed)
    trec_io.write_run(run, out_run, tag=f"simulated-teacher.noise-{noise}")


def write_generated_teacher_run(
    manifests: Paths,
    dataset_id: str,
    first_stage_run: Path,
    out_run: Path,
    out_stats: Path,
    settings: Mapping[str, Any],
    num_queries: int | None,
    tag: str,
    shard: tuple[int, int] | None = None,
) -> None:
    """An LLM teacher's run (listwise sliding window) of ``first_stage_run``, or of shard
    ``(index, count)`` of its queries; a killed job resumes from the partial file beside
    ``out_run``."""
    from rank_distillm.data.texts import DatasetTexts
    from rank_distillm.teachers.llm import GenerationSettings, generate_teacher_run
    from rank_distillm.teachers.llm.shards import Shard

    generate_teacher_run(
        first_stage_run,
        DatasetTexts(datasets.load(dataset_id, manifests)),
        out_run,
        GenerationSettings.from_config(settings, f"teachers.{tag}.generate"),
        num_queries=num_queries,
        tag=tag,
        out_stats=out_stats,
        shard=None if shard is None else Shard(*shard),
    )


def write_merged_teacher_run(
    first_stage_run: Path,
    shard_runs: Paths,
    shard_stats: Paths,
    out_run: Path,
    out_stats: Path,
    settings: Mapping[str, Any],
    num_queries: int | None,
    tag: str,
) -> None:
    """The one teacher run of a sharded generation, from its shards' runs (checked to be
    complete and made with ``settings``)."""
    from rank_distillm.teachers.llm import GenerationSettings
    from rank_distillm.teachers.llm.merge import merge_shard_runs

    merge_shard_runs(
        first_stage_run,
        [(Path(run), Path(stats)) for run, stats in zip(shard_runs, shard_stats, strict=True)],
        out_run,
        GenerationSettings.from_config(settings, f"teachers.{tag}.generate"),
        num_queries,
        tag,
        out_stats,
    )


def _training_query_ids(manifests: Paths, dataset_id: str) -> set[str]:
    dataset = datasets.load(dataset_id, manifests)
    return {query.query_id for query in dataset.queries_iter()}


def prepare_teacher_table(
    manifests: Paths,
    dataset_id: str,
    teacher_run: Path,
    out_table: Path,
    out_stats: Path,
    num_queries: int | None,
    depth: int,
    seed: int,
    first_stage_run: Path | None = None,
    published: Path | None = None,
) -> None:
    """The teacher table (``first_stage_run``: sub-sampled to the first stage's top
    ``depth``). ``published`` is the authors' sub-sample at this depth: the table must hold
    exactly its pairs and ranks, else both outputs are removed and the step fails."""
    from rank_distillm.training import tables as training_tables

    training_tables.write_teacher_table(
        teacher_run,
        out_table,
        out_stats,
        num_queries,
        depth,
        seed,
        known_queries=_training_query_ids(manifests, dataset_id),
        first_stage_run=first_stage_run,
    )
    if published is not None:
        training_tables.require_published(out_table, out_stats, published)


def prepare_hard_negative_table(
    manifests: Paths,
    dataset_id: str,
    first_stage_run: Path,
    out_table: Path,
    out_stats: Path,
    num_queries: int | None,
    depth: int,
    seed: int,
    relevance_level: int = 1,
) -> None:
    from rank_distillm.training import tables as training_tables

    training_tables.write_hard_negative_table(
        first_stage_run,
        datasets.qrels(datasets.load(dataset_id, manifests)),
        out_table,
        out_stats,
        num_queries,
        depth,
        seed,
        known_queries=_training_query_ids(manifests, dataset_id),
        relevance_level=relevance_level,
    )


def train_checkpoint(
    start: str,
    table: Path,
    manifests: Paths,
    dataset_id: str,
    out_dir: Path,
    loss_log: Path,
    settings: Mapping[str, Any],
) -> None:
    from rank_distillm.data.texts import DatasetTexts
    from rank_distillm.model import numerics
    from rank_distillm.training.loop import TrainSettings, train
    from rank_distillm.training.tables import read_table

    numerics.enforce()  # in every training process
    values = dict(settings)
    if "adam_betas" in values:
        values["adam_betas"] = tuple(values["adam_betas"])
    training_table = read_table(table)
    texts = DatasetTexts(
        datasets.load(dataset_id, manifests),
        query_ids=training_table.query_ids,
        max_words=values.get("doc_length", 256),
    )
    # Beside the checkpoint, outside the rule's outputs: Snakemake deletes those when
    # it reruns a failed job, this folder survives until the checkpoint is written.
    resume_dir = out_dir.parent / "resume"
    summary = train(
        TrainSettings(**values), str(start), training_table, texts, out_dir, loss_log, resume_dir
    )
    LOGGER.info("training summary: %s", json.dumps(summary))


def _rerank_run(
    model: Any,
    encoder: Any,
    manifests: Paths,
    dataset_id: str,
    first_stage_run: Path,
    out_run: Path,
    depth: int,
    batch_size: int,
    tag: str,
    device: str | None = None,
    precision: str = "auto",
) -> None:
    """``device``: ``cuda`` when a GPU is there, else ``cpu``, unless given; ``precision``
    as :func:`rank_distillm.model.precision.choose` reads it."""
    from rank_distillm.evaluation.rerank import default_device, rerank

    dataset = datasets.load(dataset_id, manifests)
    topics = datasets.topics(dataset)
    run = trec_io.truncate_run(trec_io.read_run(first_stage_run), depth)
    reranked = rerank(
        model,
        encoder,
        run,
        dict(zip(topics["query_id"], topics["text"], strict=True)),
        datasets.doc_texts(dataset, run["doc_id"], max_words=model.doc_length),
        depth=depth,
        batch_size=batch_size,
        device=device or default_device(),
        precision=precision,
    )
    trec_io.write_run(reranked, out_run, tag=tag)
    LOGGER.info("re-ranked %s (%s) -> %s", first_stage_run, dataset_id, out_run)


def rerank_first_stages(
    checkpoint: str,
    manifests: Paths,
    jobs: Sequence[Mapping[str, Any]],
    batch_size: int,
    tag: str,
    device: str | None = None,
    precision: str = "auto",
) -> None:
    """Re-rank several first-stage runs with one checkpoint, loaded once. Each job names
    ``dataset``, ``first_stage_run``, ``out_run`` and ``depth``; ``device`` and
    ``precision`` as in :func:`_rerank_run`."""
    from rank_distillm.model import numerics
    from rank_distillm.model.checkpoints import check_lengths, load_cross_encoder
    from rank_distillm.model.pair_encoder import PairEncoder

    numerics.enforce()
    model, tokenizer = load_cross_encoder(str(checkpoint))
    check_lengths(model, tokenizer, str(checkpoint))
    encoder = PairEncoder(tokenizer, model.query_length, model.doc_length)
    for job in jobs:
        _rerank_run(
            model,
            encoder,
            manifests,
            job["dataset"],
            Path(job["first_stage_run"]),
            Path(job["out_run"]),
            job["depth"],
            batch_size,
            tag,
            device,
            precision,
        )


def write_metrics(
    manifests: Paths,
    jobs: Sequence[Mapping[str, Any]],
    measures: Sequence[str],
) -> None:
    """Per-query measures of runs; each job names ``dataset``, ``run``, ``out_tsv`` and
    ``relevance_level``."""
    from rank_distillm.evaluation import measures as evaluate

    for job in jobs:
        qrels = datasets.qrels(datasets.load(job["dataset"], manifests))
        per_query = evaluate.evaluate_run(
            trec_io.read_run(job["run"]), qrels, measures, relevance_level=job["relevance_level"]
        )
        evaluate.write_per_query(per_query, Path(job["out_tsv"]))
        summary = evaluate.aggregate(per_query).to_string()
        LOGGER.info("%s on %s:\n%s", job["run"], job["dataset"], summary)


def write_model_readme(facts: Mapping[str, Any], out_card: Path) -> None:
    """A model's hub card (``report_plan.card_facts``) from its loss log, training-table
    statistics and metrics files."""
    from rank_distillm.report import model_card

    model_card.write_model_card(facts, out_card)
    LOGGER.info("model card of %s -> %s", facts["name"], out_card)
