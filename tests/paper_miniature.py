"""A miniature of the paper that runs offline under the real ir_datasets ids.

It fabricates an ``IR_DATASETS_HOME`` that ir_datasets accepts for ``msmarco-passage``,
``msmarco-passage/train/judged`` and ``msmarco-passage/trec-dl-{2019,2020}/judged``: the
real TREC DL topics and qrels from ``../shared/data/trec-dl``, generated texts for exactly
the passages the runs need, and small generated training runs and qrels. The paper's
published first-stage runs go where the download rule would put them, so
``configs/paper.yaml`` runs with overrides only for size.
"""

from __future__ import annotations

import gzip
import random
import shutil
from pathlib import Path

import yaml

from rank_distillm import io as trec_io

TRAIN_QUERIES = 40
TEACHER_QUERIES = 20
CANDIDATES = 100
RERANK_DEPTH = 100
WORDS = [f"w{i}" for i in range(600)]

#: The paper's published TREC DL runs (in ../shared/data/trec-dl/runs), which the paper
#: config downloads to resources/ under the same names.
PUBLISHED_RUNS = [
    "__bm25__msmarco-passage-trec-dl-2019-judged.run",
    "__colbert__msmarco-passage-trec-dl-2019-judged.run",
    "__colbert__msmarco-passage-trec-dl-2020-judged.run",
]
TRAIN_RUN = "__colbert__msmarco-passage-train-judged.run"
TEACHER_RUN = "__rankzephyr-colbert-10000-sampled-100__msmarco-passage-train-judged.run"


def _text(rng: random.Random, words: list[str] = WORDS) -> str:
    return " ".join(rng.choices(words, k=rng.randint(8, 30)))


def _write_lines(path: Path, lines: list[str], compress: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)


def build(shared_data: Path, workdir: Path, home: Path, seed: int = 0) -> Path:
    """Fabricate the data, tiny models and the size overrides; return the override file."""
    rng = random.Random(seed)
    trec_dl = shared_data / "trec-dl"
    resources = workdir / "resources"
    resources.mkdir(parents=True, exist_ok=True)
    needed: set[str] = set()
    for name in PUBLISHED_RUNS:
        shutil.copyfile(trec_dl / "runs" / name, resources / name)
        run = trec_io.truncate_run(trec_io.read_run(resources / name), RERANK_DEPTH)
        needed.update(run["doc_id"])

    # Training queries, each with one relevant passage among 100 ColBERTv2 candidates.
    train_ids = [str(9_000_000 + i) for i in range(TRAIN_QUERIES)]
    train_run, train_qrels, train_docs = [], [], []
    for number, query_id in enumerate(train_ids):
        docs = [str(20_000_000 + number * CANDIDATES + k) for k in range(CANDIDATES)]
        train_docs += docs
        relevant = docs[rng.randrange(10)]
        train_qrels.append(f"{query_id} 0 {relevant} 1")
        train_run += [
            f"{query_id}\t0\t{d}\t{r}\t{100 - r / 10}\tColBERT" for r, d in enumerate(docs, 1)
        ]
    teacher_run = []
    for query_id in rng.sample(train_ids, TEACHER_QUERIES):
        lines = [line.split("\t") for line in train_run if line.startswith(query_id + "\t")]
        order = rng.sample([fields[2] for fields in lines], CANDIDATES)
        teacher_run += [f"{query_id} Q0 {d} {r} {101 - r} rank" for r, d in enumerate(order, 1)]
    _write_lines(resources / TRAIN_RUN, train_run)
    _write_lines(resources / TEACHER_RUN, teacher_run)

    base = home / "msmarco-passage"
    base.mkdir(parents=True)
    # ir_datasets' migration marker (exactly "v2"); without it, it deletes collection.tsv.
    (base / "irds_version.txt").write_text("v2")
    # Passages mix filler with the TREC DL topics' words, so BM25 (PISA over this
    # collection, the paper config's DL20 BM25) retrieves something for most queries.
    topic_words = sorted(
        {
            w
            for name in ("topics.dl19-passage.txt", "topics.dl20.txt")
            for line in (trec_dl / name).read_text().splitlines()
            for w in line.split("\t")[1].split()
        }
    )
    vocabulary = WORDS + topic_words
    passages = sorted(needed | set(train_docs), key=int)
    _write_lines(base / "collection.tsv", [f"{d}\t{_text(rng, vocabulary)}" for d in passages])
    _write_lines(base / "train" / "queries.tsv", [f"{q}\t{_text(rng)}" for q in train_ids])
    _write_lines(base / "train" / "qrels", train_qrels)
    for year in ("2019", "2020"):
        (base / f"trec-dl-{year}").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(trec_dl / "qrels.dl19-passage.txt", base / "trec-dl-2019" / "qrels")
    shutil.copyfile(trec_dl / "topics.dl19-passage.txt", base / "trec-dl-2019" / "queries.tsv")
    shutil.copyfile(trec_dl / "qrels.dl20-passage.txt", base / "trec-dl-2020" / "qrels")
    topics20 = (trec_dl / "topics.dl20.txt").read_text().splitlines()
    _write_lines(base / "trec-dl-2020" / "queries.tsv.gz", topics20, compress=True)

    models = _tiny_models(workdir / "miniature-models", passages_texts(base / "collection.tsv"))
    overrides = {
        "backbones": {
            "electra-base": {"hub": str(models["base"]), "train_pairs_per_second": 100},
            "electra-large": {"hub": str(models["large"]), "train_pairs_per_second": 100},
        },
        "checkpoints": {
            "webis-monoelectra-base": {"path": str(models["published-base"])},
            "webis-monoelectra-large": {"path": str(models["published-large"])},
        },
        "teachers": {"rankzephyr": {"queries": TEACHER_QUERIES}},
        # TIREx's corpora are not here offline (its path is tested on the demo's corpora
        # and on Vaswani): no tasks.
        "tirex": {"tasks": []},
        "models": {"electra-base.stage1": {"steps": 4}, "electra-large.stage1": {"steps": 4}},
        "training_defaults": {
            "device": "cpu",
            "queries_per_step": 4,
            "query_length": 16,
            "doc_length": 48,
        },
        "rerank": {"batch_size": 256},
        "compute": {"train_mem_mb": 2000, "rerank_mem_mb": 2000, "prepare_mem_mb": 2000},
    }
    path = workdir / "miniature.yaml"
    path.write_text(yaml.safe_dump(overrides, sort_keys=False))
    return path


def passages_texts(collection: Path) -> list[str]:
    return [line.split("\t", 1)[1] for line in collection.read_text().splitlines()]


def _tiny_models(root: Path, texts: list[str]) -> dict[str, Path]:
    """Tiny stand-ins for google/electra-{base,large}-discriminator and the published
    webis/monoelectra checkpoints (lightning-ir layout), built offline."""
    from rank_distillm.backbone import TinyElectraSettings, build_tiny_electra
    from rank_distillm.model import load_cross_encoder, save_cross_encoder

    shapes = {"base": (16, 1), "large": (24, 2)}
    out = {}
    for name, (hidden, layers) in shapes.items():
        settings = TinyElectraSettings(
            vocab_size=700,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=2,
            intermediate_size=2 * hidden,
            max_position_embeddings=80,
        )
        out[name] = root / name
        build_tiny_electra(texts, settings, out[name])
        model, tokenizer = load_cross_encoder(str(out[name]), 16, 48)
        out[f"published-{name}"] = root / f"published-{name}"
        save_cross_encoder(model, tokenizer, out[f"published-{name}"])
    return out
