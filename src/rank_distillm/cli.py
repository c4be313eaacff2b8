"""The ``rank-distillm`` command line: re-rank a run with a checkpoint, evaluate a run.

Both subcommands call the functions the workflow's rules call
(``steps.rerank_first_stages``, ``evaluate.evaluate_run``), so a run re-ranked here is the
run the pipeline would write, and the figures are the ones its tables report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

LOGGER = logging.getLogger("rank_distillm.cli")
PROG = "rank-distillm"


class UsageError(ValueError):
    """A bad option value; the message names the option."""


# --------------------------------------------------------------------------- collections


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rank-distillm"


def local_collection_manifest(
    name: str,
    docs: Path,
    queries: Path,
    docs_format: str | None,
    queries_format: str | None,
    cache_dir: Path,
) -> Path:
    """Describe documents and topics on disk as a local collection (``datasets.Manifest``)
    whose manifest and docstore live in ``cache_dir``. The folder is keyed by the files'
    paths, sizes and modification times, so a changed file gets a new docstore."""
    from rank_distillm.data import datasets
    from rank_distillm.experiment import slug

    for option, path in (("--docs", docs), ("--queries", queries)):
        if not path.exists():
            raise UsageError(f"{option}: {path} does not exist")
    entry = {"docs": str(docs), "queries": str(queries)}
    if docs_format:
        entry["docs_format"] = docs_format
    if queries_format:
        entry["queries_format"] = queries_format
    stamp = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in (docs, queries)]
    digest = hashlib.sha1(json.dumps([entry, stamp]).encode()).hexdigest()[:10]
    folder = cache_dir / "collections" / f"{slug(name)}-{digest}"
    try:
        manifest = datasets.Manifest.from_config(name, entry, folder)
    except ValueError as error:
        raise UsageError(f"--docs/--queries: {error}") from error
    path = folder / "manifest.json"
    if not path.exists():
        manifest.write(path)
    return path


def collection(args: argparse.Namespace) -> tuple[str, list[str]]:
    """The dataset id and the manifests to register, from ``--dataset``, ``--manifest``
    and (for ``rerank``) ``--docs``/``--queries``."""
    import ir_datasets

    from rank_distillm.data import datasets

    manifests = [str(path) for path in args.manifest]
    for path in manifests:
        if not Path(path).is_file():
            raise UsageError(f"--manifest: {path} does not exist")
    dataset_id = args.dataset
    docs, queries = getattr(args, "docs", None), getattr(args, "queries", None)
    if (docs is None) != (queries is None):
        raise UsageError("--docs and --queries go together (a collection on disk)")
    if docs is not None:
        dataset_id = dataset_id or f"local/{docs.name.split('.')[0]}"
        manifests.append(
            str(
                local_collection_manifest(
                    dataset_id, docs, queries, args.docs_format, args.queries_format, args.cache_dir
                )
            )
        )
    if dataset_id is None:
        raise UsageError("give --dataset (an ir_datasets id or a --manifest's id) or --docs")
    for path in manifests:
        datasets.register_manifest(path)
    if dataset_id not in ir_datasets.registry:
        raise UsageError(
            f"--dataset: {dataset_id!r} is neither an ir_datasets id nor the id of a local "
            "collection from --manifest"
        )
    return dataset_id, manifests


def add_collection_options(parser: argparse.ArgumentParser, files: bool) -> None:
    """``--dataset`` and ``--manifest``; with ``files``, also documents and topics on disk."""
    group = parser.add_argument_group(
        "collection",
        "Where texts (rerank) or qrels (evaluate) come from: an ir_datasets id or a local "
        "collection described by a manifest (the pipeline writes them under "
        "results/<experiment>/data/)" + (", or documents and topics on disk." if files else "."),
    )
    group.add_argument(
        "--dataset",
        metavar="ID",
        help="ir_datasets id (e.g. msmarco-passage/trec-dl-2019/judged) or the id of a local "
        "collection from --manifest"
        + (
            "; with --docs, the id to register the files under (default: local/<docs name>)"
            if files
            else ""
        ),
    )
    group.add_argument(
        "--manifest",
        metavar="FILE",
        action="append",
        default=[],
        type=Path,
        help="a local collection's manifest.json to register first (repeatable)",
    )
    if not files:
        return
    group.add_argument(
        "--docs",
        metavar="PATH",
        type=Path,
        help="documents on disk: a TREC SGML, TSV (doc_id<TAB>text) or JSONL file or folder, "
        "gzip allowed",
    )
    group.add_argument(
        "--docs-format",
        choices=["trec", "tsv", "jsonl"],
        help="format of --docs (default: from the file name)",
    )
    group.add_argument(
        "--queries",
        metavar="FILE",
        type=Path,
        help="topics for --docs: TREC <top> or TSV (query_id<TAB>text)",
    )
    group.add_argument(
        "--queries-format",
        choices=["trec", "tsv"],
        help="format of --queries (default: from the file name)",
    )
    group.add_argument(
        "--cache-dir",
        metavar="DIR",
        type=Path,
        default=default_cache_dir(),
        help="where the docstore of --docs is built, once per file version (default: %(default)s)",
    )


# --------------------------------------------------------------------------- rerank


def existing_file(option: str, path: Path) -> Path:
    if not path.is_file():
        raise UsageError(f"{option}: {path} does not exist or is not a file")
    return path


def checkpoint_path(name_or_path: str) -> str:
    """A local checkpoint folder (checked for its ``config.json``), else a hub id that
    ``model.resolve`` fetches (or finds in the hub cache)."""
    from rank_distillm.model.checkpoints import resolve

    path = Path(name_or_path)
    if path.exists():
        if not (path / "config.json").is_file():
            raise UsageError(f"--checkpoint: {path} has no config.json; is it a checkpoint folder?")
        return str(path)
    try:
        return str(resolve(name_or_path))
    except Exception as error:  # huggingface_hub raises many kinds
        raise UsageError(
            f"--checkpoint: {name_or_path!r} is neither a folder here nor a model the Hugging "
            f"Face hub gave ({type(error).__name__}: {error})"
        ) from error


def default_tag(checkpoint: str) -> str:
    """The model's name: a pipeline checkpoint's folder is ``models/<name>/checkpoint``."""
    path = Path(checkpoint)
    name = path.parent.name if path.name == "checkpoint" and path.parent.name else path.name
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in name) or "rank-distillm"


def run_rerank(args: argparse.Namespace) -> int:
    from rank_distillm.model import numerics

    numerics.pin(args.portable_numerics)  # first: before anything starts torch
    from rank_distillm import steps

    run = existing_file("--run", args.run)
    if args.depth < 1:
        raise UsageError(f"--depth must be >= 1, got {args.depth}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    checkpoint = checkpoint_path(args.checkpoint)
    dataset_id, manifests = collection(args)
    import torch

    torch.set_num_threads(args.threads)
    device = None if args.device == "auto" else args.device
    tag = args.tag or default_tag(args.checkpoint)
    LOGGER.info(
        "re-ranking the top %d of %s with %s on %s", args.depth, run, checkpoint, dataset_id
    )
    job = {"dataset": dataset_id, "first_stage_run": run, "out_run": args.out, "depth": args.depth}
    steps.rerank_first_stages(
        checkpoint,
        manifests,
        [job],
        batch_size=args.batch_size,
        tag=tag,
        device=device,
        precision=args.precision,
    )
    LOGGER.info("wrote %s", args.out)
    return 0


# --------------------------------------------------------------------------- evaluate


def run_evaluate(args: argparse.Namespace) -> int:
    from rank_distillm.data import datasets
    from rank_distillm.data import trec as trec_io
    from rank_distillm.evaluation import measures as evaluate

    run = trec_io.read_run(existing_file("--run", args.run))
    if args.qrels is not None:
        if args.dataset is not None:
            raise UsageError("give either --qrels or --dataset, not both")
        qrels = trec_io.read_qrels(existing_file("--qrels", args.qrels))
        source = str(args.qrels)
    else:
        dataset_id, _ = collection(args)
        qrels = datasets.qrels(datasets.load(dataset_id))
        source = dataset_id
    if qrels.empty:
        raise UsageError(f"no qrels in {source}")
    per_query = evaluate.evaluate_run(run, qrels, args.measures, args.relevance_level)
    if args.per_query is not None:
        evaluate.write_per_query(per_query, args.per_query)
        LOGGER.info("per-query values in %s", args.per_query)
    table = evaluate.aggregate(per_query)
    table["measure"] = table["measure"].map(evaluate.display_name)
    print(f"# {args.run} against {source}")
    print(table.to_string(index=False, float_format=lambda value: f"{value:.4f}"))
    for note in evaluate.relevance_notes(args.measures, {source: args.relevance_level}):
        print(f"# {note}")
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The ``rank-distillm`` parser: logging options and the two subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Use a Rank-DistiLLM cross-encoder outside the workflow: re-rank a "
        "first-stage run with a checkpoint, and evaluate runs with the measures the "
        "pipeline reports.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_rerank_command(commands)
    add_evaluate_command(commands)
    return parser


def add_rerank_command(commands: argparse._SubParsersAction) -> None:
    """``rerank``: the checkpoint, the run in and out, and how to compute the scores."""
    rerank = commands.add_parser(
        "rerank",
        help="re-rank a TREC run with a checkpoint",
        description="Score each query's top --depth passages of a first-stage TREC run with a "
        "monoELECTRA checkpoint (the pipeline's or a lightning-ir one) and write the re-ranked "
        "TREC run, exactly as the workflow's rerank stage does.",
    )
    rerank.add_argument(
        "--checkpoint",
        required=True,
        metavar="PATH_OR_ID",
        help="checkpoint folder (results/<experiment>/models/<name>/checkpoint) or Hugging Face "
        "hub id (e.g. webis/monoelectra-base)",
    )
    rerank.add_argument(
        "--run",
        required=True,
        type=Path,
        metavar="FILE",
        help="first-stage TREC run (qid Q0 docno rank score tag; .gz allowed)",
    )
    rerank.add_argument(
        "--out", required=True, type=Path, metavar="FILE", help="re-ranked TREC run to write"
    )
    rerank.add_argument(
        "--depth",
        type=int,
        default=100,
        help="passages re-ranked per query, by first-stage rank (default: %(default)s)",
    )
    rerank.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="pairs per forward pass, in order of length; the rerank rule uses config "
        "rerank.batch_size, and the same size gives the rule's run byte for byte (another "
        "size pads differently, which moves scores in the last digits) (default: %(default)s)",
    )
    rerank.add_argument(
        "--device",
        default="auto",
        help="torch device: cpu, cuda, cuda:1, ... (default: cuda when there is a GPU, else cpu)",
    )
    rerank.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="auto",
        help="auto: bf16 autocast on a GPU and on CPUs with AMX-BF16 or AVX512-BF16, fp32 "
        "elsewhere, as config rerank.precision; the log says which (default: %(default)s)",
    )
    rerank.add_argument(
        "--portable-numerics",
        action="store_true",
        help="the same bits on every x86-64 CPU with AVX2, as config "
        "compute.portable_numerics (on in the demo): give it to reproduce a demo run's file",
    )
    rerank.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads, as the rerank rule sets them (default: %(default)s)",
    )
    rerank.add_argument(
        "--tag",
        help="run tag, the last column (default: the model's folder name)",
    )
    add_collection_options(rerank, files=True)
    rerank.set_defaults(handler=run_rerank)


def add_evaluate_command(commands: argparse._SubParsersAction) -> None:
    """``evaluate``: the run, its qrels and the measures."""
    from rank_distillm.evaluation.measures import DEFAULT_MEASURES

    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a TREC run against qrels",
        description="Evaluate a TREC run with ir_measures in rank order, as the pipeline does: "
        "judged queries missing from the run score 0, unjudged run queries are dropped "
        "(both counted in the log). Prints the mean of each measure.",
    )
    evaluate.add_argument("--run", required=True, type=Path, metavar="FILE", help="TREC run")
    evaluate.add_argument(
        "--qrels",
        type=Path,
        metavar="FILE",
        help="TREC qrels (qid iter docno relevance); or take them from --dataset",
    )
    evaluate.add_argument(
        "--measures",
        nargs="+",
        default=list(DEFAULT_MEASURES),
        metavar="MEASURE",
        help=f"ir_measures names (default: {' '.join(DEFAULT_MEASURES)}; AP@100 is "
        "printed as MAP@100)",
    )
    evaluate.add_argument(
        "--relevance-level",
        type=int,
        default=1,
        help="binary measures (RR, AP) count grade >= this as relevant, as trec_eval -l; "
        "2 for TREC DL passage judgements (default: %(default)s)",
    )
    evaluate.add_argument(
        "--per-query",
        type=Path,
        metavar="FILE",
        help="also write per-query values (TSV: query_id measure value), the pipeline's "
        "metrics format",
    )
    add_collection_options(evaluate, files=False)
    evaluate.set_defaults(handler=run_evaluate)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, OSError, RuntimeError) as error:
        if args.verbose:
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
