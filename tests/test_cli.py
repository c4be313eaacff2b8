"""Tests for the ``rank-distillm`` command line on a small demo collection: ``rerank``
writes the run the workflow's rerank step writes, ``evaluate`` the figures its evaluate
step computes, from a manifest or from files on disk; bad input fails naming the option
or the file and line."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import argparse  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from rank_distillm import cli, steps  # noqa: E402
from rank_distillm.data.datasets import iter_doc_texts, load  # noqa: E402
from rank_distillm.evaluation import measures as evaluate  # noqa: E402
from rank_distillm.model import numerics  # noqa: E402
from rank_distillm.model.checkpoints import load_cross_encoder, save_cross_encoder  # noqa: E402
from rank_distillm.model.tiny_backbone import build_tiny  # noqa: E402
from tests.helpers import TINY, one_torch_thread  # noqa: E402

DEMO = "anywhere-cli-demo"
SPLIT = f"{DEMO}/dl19"
SETTINGS = {
    "seed": 7,
    "topics": 4,
    "concepts_per_topic": 3,
    "passages_per_concept": 4,
    "filler_words": 30,
    "passage_words": [5, 8],
    "train_queries": 10,
    "eval_queries": {"dl19": 8},
}
MEASURES = ["nDCG@10", "RR@10", "AP@100"]

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small demo collection, its BM25 run, a checkpoint saved the pipeline's way, and
    the run and metrics the workflow's steps write from them."""
    root = tmp_path_factory.mktemp("cli-demo")
    manifest = root / "data" / "manifest.json"
    manifests = [manifest]
    with one_torch_thread():
        steps.make_demo(SETTINGS, manifest, DEMO)
        steps.build_bm25_index(manifests, DEMO, root / "index")
        steps.retrieve_bm25_run(
            manifests, SPLIT, root / "index", root / "bm25.run", {"k1": 0.9, "b": 0.4}, 20
        )
        texts = (text for _, text in iter_doc_texts(load(DEMO)))
        build_tiny(texts, TINY, root / "backbone")
        model, tokenizer = load_cross_encoder(str(root / "backbone"), 8, 24, seed=3)
        checkpoint = root / "models" / "tiny.demo" / "checkpoint"
        save_cross_encoder(model, tokenizer, checkpoint)
        job = {
            "dataset": SPLIT,
            "first_stage_run": root / "bm25.run",
            "out_run": root / "step.run",
            "depth": 10,
        }
        steps.rerank_first_stages(str(checkpoint), manifests, [job], 16, "tiny.demo")
        metrics = {
            "dataset": SPLIT,
            "run": root / "step.run",
            "out_tsv": root / "step.tsv",
            "relevance_level": 2,
        }
        steps.write_metrics(manifests, [metrics], MEASURES)
    return {
        "root": root,
        "manifest": manifest,
        "checkpoint": checkpoint,
        "bm25": root / "bm25.run",
        "data": manifest.parent,
    }


def rerank_args(demo: dict[str, Path], out: Path, *collection: str) -> list[str]:
    return [
        "rerank",
        "--checkpoint",
        str(demo["checkpoint"]),
        "--run",
        str(demo["bm25"]),
        "--out",
        str(out),
        "--depth",
        "10",
        "--batch-size",
        "16",
        *collection,
    ]


def printed_means(stdout: str) -> dict[str, float]:
    rows = [line.split() for line in stdout.splitlines() if line and not line.startswith("#")]
    assert rows[0] == ["measure", "value", "queries"]
    return {measure: float(value) for measure, value, _ in rows[1:]}


def test_rerank_and_evaluate_round_trip(
    demo: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.run"
    manifest = ["--dataset", SPLIT, "--manifest", str(demo["manifest"])]
    assert cli.main(rerank_args(demo, out, *manifest)) == 0
    # The rule's step wrote the same file, byte for byte (tag: the model's folder name).
    assert out.read_bytes() == (demo["root"] / "step.run").read_bytes()
    assert out.read_text().split("\n", 1)[0].endswith(" tiny.demo")

    per_query = tmp_path / "cli.tsv"
    capsys.readouterr()
    arguments = ["evaluate", "--run", str(out), "--relevance-level", "2"]
    assert cli.main([*arguments, *manifest, "--per-query", str(per_query)]) == 0
    assert per_query.read_bytes() == (demo["root"] / "step.tsv").read_bytes()
    expected = evaluate.aggregate(evaluate.read_per_query(per_query)).set_index("measure")
    means = printed_means(capsys.readouterr().out)
    assert list(means) == ["nDCG@10", "RR@10", "MAP@100"]
    for measure, label in zip(MEASURES, means, strict=True):
        assert means[label] == pytest.approx(expected.loc[measure, "value"], abs=5e-5)
    assert 0 < means["nDCG@10"] < 1

    # qrels from a file give the same figures as qrels from the dataset.
    qrels = demo["data"] / "qrels-dl19.txt"
    assert cli.main([*arguments, "--qrels", str(qrels)]) == 0
    assert printed_means(capsys.readouterr().out) == means


def test_rerank_with_a_collection_on_disk(demo: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "files.run"
    files = [
        "--docs",
        str(demo["data"] / "docs.tsv"),
        "--queries",
        str(demo["data"] / "queries-dl19.tsv"),
        "--dataset",
        "local/anywhere-cli-files",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert cli.main(rerank_args(demo, out, *files)) == 0
    assert out.read_bytes() == (demo["root"] / "step.run").read_bytes()
    stores = list((tmp_path / "cache" / "collections").glob("local__anywhere-cli-files-*"))
    assert len(stores) == 1 and (stores[0] / "manifest.json").is_file()
    # The docstore is built once and reused.
    assert cli.main(rerank_args(demo, tmp_path / "again.run", *files)) == 0
    assert list((tmp_path / "cache" / "collections").iterdir()) == stores


@pytest.mark.skipif(
    numerics.unsupported(numerics.cpu_flags()) is not None, reason="needs an AVX2 CPU"
)
def test_rerank_with_portable_numerics_pins_them_before_torch(
    demo: dict[str, Path], tmp_path: Path
) -> None:
    """As the demo's rerank rule computes (compute.portable_numerics), in a fresh process."""
    out = tmp_path / "portable.run"
    manifest = ["--dataset", SPLIT, "--manifest", str(demo["manifest"])]
    result = subprocess.run(
        [shutil.which("rank-distillm"), *rerank_args(demo, out, *manifest), "--portable-numerics"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "portable numerics on" in result.stderr
    assert "MKL CNR branch COMPATIBLE" in result.stderr
    assert len(out.read_text().splitlines()) == len(
        (demo["root"] / "step.run").read_text().splitlines()
    )


def test_console_script_is_installed_and_explains_every_option() -> None:
    script = shutil.which("rank-distillm")
    assert script is not None, "pip install -e . installs the rank-distillm console script"
    result = subprocess.run(
        [script, "rerank", "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    for option in ("--checkpoint", "--run", "--out", "--depth", "--dataset", "--docs"):
        assert option in result.stdout
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) == {"rerank", "evaluate"}
    for name, command in commands.choices.items():
        for action in command._actions:
            assert action.help, f"{name} {action.option_strings} has no help text"


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"--run": "missing.run"}, 2, r"--run: .*missing\.run does not exist"),
        ({"--depth": "0"}, 2, r"--depth must be >= 1, got 0"),
        ({"--checkpoint": "no-such-org/no-such-model"}, 2, r"--checkpoint: 'no-such-org/no-such"),
        ({"--checkpoint": "."}, 2, r"--checkpoint: \. has no config\.json"),
        ({"--dataset": None}, 2, r"give --dataset"),
        ({"--dataset": "no-such/id"}, 2, r"--dataset: 'no-such/id' is neither an ir_datasets id"),
        ({"--manifest": "missing.json"}, 2, r"--manifest: missing\.json does not exist"),
        ({"--run": "bad.run"}, 1, r"bad\.run:2: expected 6 whitespace-separated columns"),
    ],
)
def test_bad_input_fails_naming_the_option_or_file(
    demo: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str | None],
    code: int,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.run").write_text("q1 Q0 d1 1 2.0 bm25\nq1 Q0 d2 2\n")
    arguments = rerank_args(demo, tmp_path / "out.run", "--dataset", SPLIT)
    arguments += ["--manifest", str(demo["manifest"])]
    for option, value in change.items():
        index = arguments.index(option)
        if value is None:
            del arguments[index : index + 2]
        else:
            arguments[index + 1] = value
    capsys.readouterr()
    assert cli.main(arguments) == code
    error = capsys.readouterr().err
    print(error)
    assert re.search(message, error), error
    assert not (tmp_path / "out.run").exists()


def test_docs_need_queries_and_evaluate_needs_qrels(
    demo: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.run"
    assert cli.main(rerank_args(demo, out, "--docs", str(demo["data"] / "docs.tsv"))) == 2
    assert "--docs and --queries go together" in capsys.readouterr().err
    both = ["--qrels", str(demo["data"] / "qrels-dl19.txt"), "--dataset", SPLIT]
    assert cli.main(["evaluate", "--run", str(demo["bm25"]), *both]) == 2
    assert "either --qrels or --dataset" in capsys.readouterr().err
