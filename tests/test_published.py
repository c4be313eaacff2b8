"""The authors' published runs: the archive's layout, the notebook's evaluation rules and
the paper's tables, on an archive of the same layout that the tests build
(``tests/published_fixture.py``: the real TREC DL first-stage runs where ../shared has
them, generated runs elsewhere), checked cell by cell against an independent scoring
with PyTerrier's ``Experiment`` (``tests/notebook_oracle.py``) and, for the real runs,
against the figures the notebook printed. With the real archive
(``RANK_DISTILLM_ARCHIVE=/path/to/experiments.tar.gz``), every printed cell is checked.
"""

from __future__ import annotations

import io
import math
import os
import re
import shutil
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rank_distillm.data import paper_tables, published_archive
from rank_distillm.data.download import DownloadError, file_md5, read_checksum_file
from rank_distillm.data.published import PublishedSpec, tirex_group
from rank_distillm.data.published_archive import Entry
from rank_distillm.evaluation import published as published_eval
from rank_distillm.report import published_tables
from tests import notebook_oracle, published_fixture

ARCHIVE_ENV = "RANK_DISTILLM_ARCHIVE"
PAPER = paper_tables.load()
Cells = dict[tuple[str, str], tuple[float, bool]]


def make_spec(tirex: bool = True, **changes: object) -> PublishedSpec:
    settings = {
        "root": "results/test",
        "archive": "experiments.tar.gz",
        "md5": None,
        "checksum_file": "checksums/experiments.tar.gz.md5",
        "record": 15150456,
        "tirex": tirex,
        "map_cranfield_ids": True,
        **changes,
    }
    return PublishedSpec(**settings)


def run_all(spec: PublishedSpec, judgements: published_eval.Judgements) -> pd.DataFrame:
    published_archive.extract_runs(
        spec.archive, spec.run_files(), spec.md5, spec.checksum_file, spec.optional_entries()
    )
    published_eval.write_published_metrics(spec, judgements)
    return published_tables.write_published_tables(spec)


# --------------------------------------------------------------------------- the oracle


def trec_dl_columns() -> dict[str, list[tuple[str, str]]]:
    return {
        column: [(column.split("/")[0], PAPER.trec_dl[column.split("/")[1]][0])]
        for column in PAPER.tables["trec_dl"].columns
    }


def tirex_columns() -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for task in PAPER.tirex_tasks:
        found.setdefault(tirex_group(task), []).append(("bm25", task))
    return found


def oracle_tables(archive: Path, judgements: published_fixture.Judgements) -> dict[str, Cells]:
    """Every table as the oracle scores it (TIREx with AM, GM and the mapped Cranfield)."""
    runs = notebook_oracle.read_archive(archive, [d for _, d in PAPER.archive_pairs()])
    trec = trec_dl_columns()
    found = {
        name: notebook_oracle.table(runs, judgements, PAPER.tables[name].rows, trec)
        for name in ("trec_dl", "loss")
    }
    found["subsampling"] = notebook_oracle.table(
        runs, judgements, PAPER.subsampling_systems(), trec
    )
    groups = tirex_columns()
    tirex = notebook_oracle.table(runs, judgements, PAPER.tirex_systems(), groups)
    mapped = notebook_oracle.table(
        notebook_oracle.cranfield_mapped(runs),
        judgements,
        PAPER.tirex_systems(),
        {"cranfield, ids mapped": [("bm25", "cranfield")]},
    )
    swapped = ["cranfield, ids mapped" if g == "cranfield" else g for g in groups]
    both = {**tirex, **mapped}
    for system in PAPER.tirex_systems():
        for suffix, columns in (("", groups), (", ids mapped", swapped)):
            am, gm = notebook_oracle.means(both, columns, system)
            both[system, f"AM{suffix}"], both[system, f"GM{suffix}"] = (am, False), (gm, False)
    found["tirex"] = both
    return found


@dataclass
class Published:
    """The test archive, scored by the package and by the oracle."""

    folder: Path
    spec: PublishedSpec
    built: published_fixture.Builder
    comparison: pd.DataFrame
    oracle: dict[str, Cells]

    def table(self, name: str) -> pd.DataFrame:
        return pd.read_csv(self.folder / self.spec.table_files()[f"{name}.csv"], index_col="key")


@pytest.fixture(scope="module")
def published(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    folder = tmp_path_factory.mktemp("published")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # the spec's paths are relative, as in the workflow
        built = published_fixture.build(shared_data / "trec-dl", folder / "experiments.tar.gz")
        spec = make_spec()
        comparison = run_all(spec, built.judgements)
        oracle = oracle_tables(folder / "experiments.tar.gz", built.judgements)
        yield Published(folder, spec, built, comparison, oracle)


# --------------------------------------------------------------------------- every cell


def assert_cells(table: pd.DataFrame, oracle: Cells, tested: bool = True) -> int:
    """Every oracle cell equals ours (to 1e-9) with the same significance; returns how
    many were checked."""
    checked = 0
    for (row, column), (value, rejected) in oracle.items():
        ours = table.loc[row, f"nDCG@10 {column}"]
        assert ours == pytest.approx(value, abs=1e-9), (row, column)
        if tested and not column.startswith(("AM", "GM")):
            marker = table.loc[row, f"sig {column}"]
            assert (isinstance(marker, str) and marker != "") == rejected, (row, column)
        checked += 1
    return checked


def test_trec_dl_and_loss_tables_equal_the_notebooks_scoring(published: Published) -> None:
    for name, key in (("trec_dl", "trec-dl"), ("loss", "loss")):
        table = published.table(key)
        assert assert_cells(table, published.oracle[name]) == 4 * len(PAPER.tables[name].rows)
    markers = set(published.table("trec-dl").filter(like="sig ").stack().dropna())
    assert markers == {"▲", "▼"}  # both directions occur on the test archive


def test_tirex_table_equals_the_notebooks_scoring(published: Published) -> None:
    table = published.table("tirex")
    checked = assert_cells(table, published.oracle["tirex"])
    assert checked == 8 * (13 + 2 + 3)
    assert table.filter(like="sig ").notna().to_numpy().sum() > 0


def test_subsampling_tables_are_means_of_dl19_and_dl20(published: Published) -> None:
    oracle = published.oracle["subsampling"]
    for name, key in (("queries", "subsampling-queries"), ("depth", "subsampling-depth")):
        table = published.table(key)
        for stage in ("bm25", "colbert"):
            for column, system in PAPER.tables[name].systems_by_column.items():
                pairs = [c for c in trec_dl_columns() if c.startswith(stage)]
                expected = sum(oracle[system, c][0] for c in pairs) / 2
                assert table.loc[stage, f"nDCG@10 {column}"] == pytest.approx(expected, abs=1e-12)


def test_real_first_stage_cells_equal_the_printed_figures(published: Published) -> None:
    """BM25 DL19, ColBERTv2 DL19 and DL20 are the authors' real runs: 0.480, 0.732 and
    0.724 as printed (DL20 is 0.7254 in rank order; by score, ties as pytrec_eval breaks
    them, 0.7245)."""
    found = published.comparison.set_index(["table", "row", "column"])
    for column in ("bm25/dl19", "colbert/dl19", "colbert/dl20"):
        cell = found.loc[("trec_dl", "first_stage", column)]
        assert cell["value_equal"], (column, cell["ours"], cell["printed"])
    assert found.loc[("trec_dl", "first_stage", "colbert/dl20"), "value"] == pytest.approx(
        0.72448, abs=1e-5
    )


def test_comparison_lists_every_printed_cell(published: Published) -> None:
    counts = published.comparison.groupby("table").size().to_dict()
    assert counts == {"trec_dl": 60, "tirex": 120, "loss": 8, "queries": 8, "depth": 8}
    # Generated runs: far from the printed figures, and the tables say so.
    markdown = (published.folder / published.spec.table_files()["trec-dl.md"]).read_text()
    assert "cells equal the figures the authors' notebook printed" in markdown
    assert "they differ in" in markdown


def test_cranfield_shows_both_figures(published: Published) -> None:
    """The archive numbers Cranfield's queries by cran.qry's .I field, the qrels 1, 2, ...:
    scored as published, queries meet other queries' judgements; mapped, their own."""
    table = published.table("tirex")
    as_published = table["nDCG@10 cranfield"]
    mapped = table["nDCG@10 cranfield, ids mapped"]
    assert (as_published != mapped).all()
    assert (table["queries cranfield"] == 6).all()  # ids 1, 2, 4, 8, 9, 10 meet qrels
    assert (table["queries cranfield, ids mapped"] == 10).all()
    markdown = (published.folder / published.spec.table_files()["tirex.md"]).read_text()
    assert "cranfield, ids mapped" in markdown and "cran.qry" in markdown


def test_every_system_on_tirex_where_the_archive_has_it(published: Published) -> None:
    """Systems outside the TIREx table are scored per task and group for comparisons
    when the archive holds their runs; an absent one has metrics without rows."""
    from rank_distillm.evaluation.measures import read_per_query

    spec, folder = published.spec, published.folder
    system = published_fixture.OPTIONAL_TIREX
    held = read_per_query(folder / spec.metrics_file(system, "bm25", "vaswani"))
    topics = published.built.judgements.topics_by_dataset["vaswani"]
    assert len(held) == len(topics) and held["in_run"].all()
    group = read_per_query(folder / spec.group_metrics_file(system, "medline"))
    assert len(group) == 8  # 1, 2, 3, 100, 101 and 1, 2, 4, 5, 6: shared ids merged
    absent = folder / spec.metrics_file("rankgpt-4", "bm25", "vaswani")
    assert read_per_query(absent).empty
    assert (folder / "resources/published/rankgpt-4/bm25/vaswani.run").stat().st_size == 0


def test_tables_in_three_formats_and_the_figure(published: Published) -> None:
    files = published.spec.table_files()
    for key in ("trec-dl", "tirex", "loss", "subsampling-queries", "subsampling-depth"):
        markdown = (published.folder / files[f"{key}.md"]).read_text()
        latex = (published.folder / files[f"{key}.tex"]).read_text()
        assert markdown.startswith("# ") and "\\begin{tabular}" in latex
        assert "checksum recorded on first download" in markdown
    figure = (published.folder / files["figure"]).read_bytes()
    assert figure.startswith(b"\x89PNG") and len(figure) > 10_000


def test_checksum_recorded_at_first_use(published: Published) -> None:
    archive = published.folder / "experiments.tar.gz"
    recorded = read_checksum_file(published.folder / published.spec.checksum_file)
    assert recorded == file_md5(archive)


# --------------------------------------------------------------------------- the archive


@pytest.mark.parametrize(
    ("member", "entry"),
    [
        (
            "data/experiments/bm25/msmarco-passage-trec-dl-2019-judged.run",
            ("first_stage", "bm25", "msmarco-passage/trec-dl-2019/judged"),
        ),
        (
            "data/experiments/colbert-v2/msmarco-passage-trec-dl-2020-judged.run",
            ("first_stage", "colbert", "msmarco-passage/trec-dl-2020/judged"),
        ),
        (
            "x/chatnoir/clueweb09-en-trec-web-2009.run.txt.run",
            ("first_stage", "bm25", "clueweb09/en/trec-web-2009"),
        ),
        (
            "data/experiments/monoelectra-base-dual-rank-distillm-bm25/"
            "colbert_msmarco-passage-trec-dl-2020-judged.run",
            (
                "monoelectra-base-dual-rank-distillm-bm25",
                "colbert",
                "msmarco-passage/trec-dl-2020/judged",
            ),
        ),
        (
            "data/experiments/rankzephyr/tirex-rerank_argsme-2020-04-01-touche-2020-task-1.run",
            ("rankzephyr", "bm25", "argsme/2020-04-01/touche-2020-task-1"),
        ),
    ],
)
def test_member_names_as_the_notebook_reads_them(member: str, entry: tuple) -> None:
    assert published_archive.parse_member(member) == Entry(*entry)


def test_unknown_dataset_is_an_error_naming_the_member() -> None:
    with pytest.raises(ValueError, match="no-such-dataset"):
        published_archive.parse_member("data/experiments/rankzephyr/bm25_no-such-dataset.run")


def small_archive(path: Path) -> Path:
    members = {
        "data/experiments/bm25/vaswani.run": b"1 Q0 a 1 2.0 x\n1 Q0 b 2 3.0 x\n1 Q0 c 3 3.0 x\n",
        "data/experiments/rankzephyr/tirex-rerank_vaswani.run": b"1 Q0 a 9 1.0 y\n",
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_extraction_ranks_by_score_ties_in_file_order(tmp_path: Path) -> None:
    archive = small_archive(tmp_path / "a.tar.gz")
    out = tmp_path / "first.run"
    published_archive.extract_runs(
        archive, {Entry("first_stage", "bm25", "vaswani"): out}, None, tmp_path / "a.md5"
    )
    assert [line.split()[2:4] for line in out.read_text().splitlines()] == [
        ["b", "1"],
        ["c", "2"],
        ["a", "3"],
    ]
    assert read_checksum_file(tmp_path / "a.md5") == file_md5(archive)


def test_extraction_keeps_nothing_on_a_checksum_mismatch(tmp_path: Path) -> None:
    archive = small_archive(tmp_path / "a.tar.gz")
    (tmp_path / "a.md5").write_text(f"{'0' * 32}  a.tar.gz\n")
    out = tmp_path / "runs" / "first.run"
    with pytest.raises(DownloadError, match="does not match the one recorded"):
        published_archive.extract_runs(
            archive, {Entry("first_stage", "bm25", "vaswani"): out}, None, tmp_path / "a.md5"
        )
    assert not out.exists() and os.listdir(tmp_path / "runs") == []


def test_extraction_names_what_the_archive_lacks(tmp_path: Path) -> None:
    archive = small_archive(tmp_path / "a.tar.gz")
    wanted = {
        Entry("first_stage", "bm25", "vaswani"): tmp_path / "one.run",
        Entry("monot5-3b", "bm25", "vaswani"): tmp_path / "two.run",
    }
    with pytest.raises(ValueError, match="no run for 1 of the 2 wanted"):
        published_archive.extract_runs(archive, wanted, None, tmp_path / "a.md5")
    assert not (tmp_path / "one.run").exists()


# --------------------------------------------------------------------------- the rules


def test_ids_as_pandas_reads_them_without_a_dtype() -> None:
    ids = published_eval.notebook_ids
    assert list(ids(pd.Series(["001", "20", "-3"]))) == ["1", "20", "-3"]
    assert list(ids(pd.Series(["001", "MED-10"]))) == ["001", "MED-10"]


def test_cran_qry_numbers_in_file_order() -> None:
    lines = [".I 001", ".W", "what similarity laws", ".I 002", ".W", "x", ".I 004", ".W", "y"]
    assert published_eval.cran_qry_numbers(lines) == ["1", "2", "4"]


def test_cranfield_first_stage_gets_ir_datasets_query_ids(tmp_path: Path) -> None:
    """The archive's Cranfield run (cran.qry's .I numbers, zero-padded here) re-ranked by
    the pipeline: query ids 1, 2, 3 for .I 001, 002, 004, rows and scores kept."""
    source, target = tmp_path / "cranfield.run", tmp_path / "mapped.run"
    source.write_text(
        "001 Q0 d7 1 9.5 bm25\n001 Q0 d3 2 8.0 bm25\n004 Q0 d1 1 7.0 bm25\n002 Q0 d2 1 6.0 bm25\n"
    )
    published_eval.write_ids_mapped(source, target, ["1", "2", "4", "8"])
    assert target.read_text().split("\n")[:4] == [
        "1 Q0 d7 1 9.5 first_stage",
        "1 Q0 d3 2 8.0 first_stage",
        "3 Q0 d1 1 7.0 first_stage",
        "2 Q0 d2 1 6.0 first_stage",
    ]
    source.write_text("001 Q0 d7 1 9.5 bm25\n365 Q0 d1 1 7.0 bm25\n")
    with pytest.raises(ValueError, match="cranfield.run: its query ids are no cran.qry .I"):
        published_eval.write_ids_mapped(source, tmp_path / "other.run", ["1", "2", "4"])
    assert not (tmp_path / "other.run").exists()


def test_repeated_pairs_keep_their_last_row_as_ir_measures_does() -> None:
    run = pd.DataFrame(
        {"query_id": ["q"] * 3, "doc_id": ["d1", "d2", "d1"], "score": [3.0, 2.0, 1.0]}
    )
    qrels = pd.DataFrame(
        {
            "query_id": ["q", "q", "q", "x"],
            "doc_id": ["d1", "d2", "d2", "d1"],
            "relevance": [1, 1, 0, 1],
        }
    )
    found = published_eval.per_query(run, published_eval.scorer(qrels, {"q"}))
    # d1's last score (1.0) puts it below d2, whose last label is 0: nDCG@10 = 1/log2(3);
    # query x has no topic, so it is not judged.
    assert list(found["query_id"]) == ["q"]
    assert found["value"].iloc[0] == pytest.approx(1 / math.log2(3))


# --------------------------------------------------------------------------- the real archive


def test_every_printed_cell_from_the_real_archive(tmp_path: Path, monkeypatch) -> None:
    """The authors' archive, scored by the package, equals every cell their notebook
    printed (3 decimals, significance stars; the sub-sampling tables to 6 decimals).
    Needs the archive and the qrels and topics through ir_datasets (network or cache)."""
    archive = os.environ.get(ARCHIVE_ENV)
    if not archive or not Path(archive).is_file():
        pytest.skip(
            f"set {ARCHIVE_ENV} to experiments.tar.gz of Zenodo record 15150456 to check every "
            "cell against the notebook's printed tables (not downloadable here)"
        )
    monkeypatch.chdir(tmp_path)
    spec = make_spec(archive=str(Path(archive).resolve()))
    compared = run_all(spec, published_eval.IrDatasetsJudgements())
    differ = compared[~compared["equal"]]
    assert differ.empty, differ.to_string()


# --------------------------------------------------------------------------- the workflow


@pytest.fixture
def archive_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict]]:
    """A server on 127.0.0.1 (tests/test_download.py's) serving what the test puts in."""
    from tests.test_download import serving

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    resources: dict = {}
    with serving(resources) as base:
        yield base, resources


@pytest.mark.slow
def test_published_target_downloads_checks_and_regenerates(
    shared_data: Path, tmp_path: Path, archive_server
) -> None:
    """`snakemake published --configfile configs/paper.yaml`: the archive downloaded (its
    MD5 recorded, none being published), the runs extracted, scored and laid out, and
    nothing else (no GPU, no corpus); a changed archive is refused afterwards."""
    from tests.paper_miniature import write_trec_dl_home
    from tests.test_download import Resource
    from tests.workflow_runner import copy_workflow, snakemake

    base, resources = archive_server
    local = tmp_path / "experiments.tar.gz"
    published_fixture.build(shared_data / "trec-dl", local, tirex=False)
    resources["/experiments.tar.gz"] = Resource(local.read_bytes())
    workdir = copy_workflow(tmp_path / "workflow")
    home = write_trec_dl_home(shared_data / "trec-dl", tmp_path / "irds").parent
    overrides = {  # no TIREx here: the test archive and qrels have only TREC DL
        "downloads": {"local.tar.gz": {"url": f"{base}/experiments.tar.gz"}},
        "published": {"archive": "resources/local.tar.gz", "tirex": False},
        "tirex": {"tasks": []},
    }
    (workdir / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    args = ["published", "--cores", "2", "--configfile", "configs/paper.yaml", "overrides.yaml"]
    env = {"IR_DATASETS_HOME": str(home)}
    started = time.perf_counter()
    result = snakemake(workdir, *args, env=env)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-5000:]
    jobs = set(re.findall(r"^(?:local)?rule (\w+):$", result.stderr, flags=re.MULTILINE))
    assert jobs == {
        "download",
        "published_runs",
        "published_metrics",
        "published_tables",
        "published",
    }
    recorded = read_checksum_file(workdir / "checksums" / "local.tar.gz.md5")
    assert recorded == file_md5(local)
    folder = workdir / "results" / "paper" / "published"
    comparison = pd.read_csv(folder / "comparison.csv").set_index(["table", "row", "column"])
    for column in ("bm25/dl19", "colbert/dl19", "colbert/dl20"):
        assert comparison.loc[("trec_dl", "first_stage", column), "value_equal"], column
    print(f"snakemake published on the test archive: {seconds:.0f} s")  # docs/benchmarks.md

    # The archive changes on disk: its next use is refused and nothing is extracted.
    (workdir / "resources" / "local.tar.gz").write_bytes(local.read_bytes()[:-1] + b"\0")
    shutil.rmtree(workdir / "resources" / "published")
    again = snakemake(workdir, *args, env=env)
    assert again.returncode != 0
    log = (workdir / "resources" / "logs" / "published-runs.log").read_text()
    assert "does not match the one recorded in checksums/local.tar.gz.md5" in log
    assert not list((workdir / "resources").glob("published/**/*.run"))
