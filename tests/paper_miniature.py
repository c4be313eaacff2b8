"""A miniature of the paper that runs offline under the real ir_datasets ids.

It fabricates an ``IR_DATASETS_HOME`` that ir_datasets accepts for ``msmarco-passage``,
``msmarco-passage/train/judged`` and ``msmarco-passage/trec-dl-{2019,2020}/judged``: the
real TREC DL topics and qrels from ``../shared/data/trec-dl``, generated texts for exactly
the passages the runs need, and small generated training runs and qrels. An archive of
the layout of the authors' evaluation runs (``tests/published_fixture.py``: their real
first-stage runs where ../shared has them) goes where the download rule would put it, so
``configs/paper.yaml`` runs with overrides only for size (and without the TIREx tasks,
whose qrels are not here).
"""

from __future__ import annotations

import gzip
import random
import shutil
from pathlib import Path

import yaml

from tests import published_fixture

TRAIN_QUERIES = 40
TEACHER_QUERIES = 20
CANDIDATES = 100
RERANK_DEPTH = 100
WORDS = [f"w{i}" for i in range(600)]

TRAIN_RUN = "__colbert__msmarco-passage-train-judged.run"
TEACHER_RUN = "__rankzephyr-colbert-10000-sampled-100__msmarco-passage-train-judged.run"
ARCHIVE = "experiments.tar.gz"


def _text(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(8, 30)))


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
    built = published_fixture.build(trec_dl, resources / ARCHIVE, seed=seed, tirex=False)
    needed: set[str] = set()
    for run in built.first_stages.values():  # ranked as the extraction ranks them
        needed.update(run.groupby("query_id", sort=False).head(RERANK_DEPTH)["doc_id"])

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

    base = write_trec_dl_home(trec_dl, home)
    passages = sorted(needed | set(train_docs), key=int)
    _write_lines(base / "collection.tsv", [f"{d}\t{_text(rng)}" for d in passages])
    _write_lines(base / "train" / "queries.tsv", [f"{q}\t{_text(rng)}" for q in train_ids])
    _write_lines(base / "train" / "qrels", train_qrels)

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
        # TIREx's corpora and qrels are not here offline (its path is tested on the demo's
        # corpora and on Vaswani, the published TIREx table in tests/test_published.py).
        "tirex": {"tasks": []},
        "published": {"tirex": False},
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


def write_trec_dl_home(trec_dl: Path, home: Path) -> Path:
    """``msmarco-passage``'s folder in ``home`` (an ``IR_DATASETS_HOME``) with the real TREC
    DL 2019/2020 topics and qrels, which serve ``msmarco-passage/trec-dl-{2019,2020}/judged``
    without the corpus; returns the folder."""
    base = home / "msmarco-passage"
    base.mkdir(parents=True)
    # ir_datasets' migration marker (exactly "v2"); without it, it deletes collection.tsv.
    (base / "irds_version.txt").write_text("v2")
    for year in ("2019", "2020"):
        (base / f"trec-dl-{year}").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(trec_dl / "qrels.dl19-passage.txt", base / "trec-dl-2019" / "qrels")
    shutil.copyfile(trec_dl / "topics.dl19-passage.txt", base / "trec-dl-2019" / "queries.tsv")
    shutil.copyfile(trec_dl / "qrels.dl20-passage.txt", base / "trec-dl-2020" / "qrels")
    topics20 = (trec_dl / "topics.dl20.txt").read_text().splitlines()
    _write_lines(base / "trec-dl-2020" / "queries.tsv.gz", topics20, compress=True)
    return base


def passages_texts(collection: Path) -> list[str]:
    return [line.split("\t", 1)[1] for line in collection.read_text().splitlines()]


def _tiny_models(root: Path, texts: list[str]) -> dict[str, Path]:
    """Tiny stand-ins for google/electra-{base,large}-discriminator and the published
    webis/monoelectra checkpoints (lightning-ir layout), built offline."""
    from rank_distillm.model.checkpoints import load_cross_encoder, save_cross_encoder
    from rank_distillm.model.tiny_backbone import TinySettings, build_tiny

    shapes = {"base": (16, 1), "large": (24, 2)}
    out = {}
    for name, (hidden, layers) in shapes.items():
        settings = TinySettings(
            vocab_size=700,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=2,
            intermediate_size=2 * hidden,
            max_position_embeddings=80,
        )
        out[name] = root / name
        build_tiny(texts, settings, out[name])
        model, tokenizer = load_cross_encoder(str(out[name]), 16, 48)
        out[f"published-{name}"] = root / f"published-{name}"
        save_cross_encoder(model, tokenizer, out[f"published-{name}"])
    return out
