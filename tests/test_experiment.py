"""The experiment model: configs as data, grids expanded, impossible combinations refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rank_distillm.experiment import ConfigError, from_config
from tests.helpers import load_config
from tests.workflow_runner import REPO

SCHEMA = REPO / "schemas" / "config.schema.yaml"


@pytest.fixture(scope="module")
def paper_config() -> dict[str, Any]:
    return load_config([REPO / "configs" / "paper.yaml"], SCHEMA)


@pytest.fixture(scope="module")
def demo_config() -> dict[str, Any]:
    return load_config([REPO / "config.yaml"], SCHEMA)


def edited(config: dict[str, Any], edit) -> dict[str, Any]:
    config = copy.deepcopy(config)
    edit(config)
    return config


def test_demo_has_one_first_stage_and_the_simulated_teacher(demo_config) -> None:
    exp = from_config(demo_config)
    assert exp.root == "results/demo"
    assert exp.table_pairs == [("bm25", "dl19"), ("bm25", "dl20")]
    assert [row.key for row in exp.rows] == [
        "first-stage",
        "simulated-teacher",
        "tiny-electra.stage1",
        "tiny-electra.stage1.stage2-ranknet",
    ]
    assert exp.rows[0].label == "BM25"  # one first stage: the row is named after it
    stage2 = exp.models["tiny-electra.stage1.stage2-ranknet"]
    # The model takes all of the teacher's 2,000 queries; the depth is the teacher's.
    assert (stage2.queries, stage2.depth) == (2000, 30)
    assert exp.model_table(stage2.name) == (
        "results/demo/training/teachers/simulated-teacher.2000x30.parquet"
    )
    assert exp.model_start(stage2.name) == "results/demo/models/tiny-electra.stage1/checkpoint"
    assert exp.first_stage_run("bm25", "dl19") == "results/demo/runs/dl19/bm25/bm25.run"
    assert exp.system_run("dl20", "bm25", "simulated-teacher") == (
        "results/demo/runs/dl20/bm25/simulated-teacher.run"
    )
    # Settings layer: schema defaults < training_defaults < the model's own keys.
    assert stage2.settings["learning_rate"] == 3.0e-4
    assert stage2.settings["query_length"] == 16
    assert stage2.settings["weight_decay"] == 0.01
    assert stage2.settings["depth"] == 30


def test_paper_table_is_every_first_stage_by_every_set(paper_config) -> None:
    exp = from_config(paper_config)
    assert exp.table_pairs == [
        ("bm25", "dl19"),
        ("bm25", "dl20"),
        ("colbert", "dl19"),
        ("colbert", "dl20"),
    ]
    rows = {row.key: row for row in exp.rows}
    table = {
        pair: system
        for pair, system in rows["first-stage"].systems.items()
        if pair in exp.table_pairs
    }
    assert table == {
        ("bm25", "dl19"): "bm25",
        ("bm25", "dl20"): "bm25",
        ("colbert", "dl19"): "colbert",
        ("colbert", "dl20"): "colbert",
    }
    # The authors' runs from their archive on every set it holds, TIREx tasks included.
    assert exp.first_stage_run("bm25", "dl20") == (
        "resources/published/first_stage/bm25/msmarco-passage__trec-dl-2020__judged.run"
    )
    assert exp.first_stage_run("colbert", "dl19") == (
        "resources/published/first_stage/colbert/msmarco-passage__trec-dl-2019__judged.run"
    )
    assert exp.first_stage_run("bm25", "tirex-antique-test") == (
        "resources/published/first_stage/bm25/antique__test.run"
    )
    assert exp.first_stage_run("colbert", "train") == (
        "resources/__colbert__msmarco-passage-train-judged.run"
    )
    assert len(exp.published_first_stage_runs()) == 4 + len(exp.tirex_pairs)
    # Teachers without evaluation runs keep a row for the paper's figures.
    assert rows["rankgpt4"].systems == {}
    assert set(exp.checkpoints) == {"webis-monoelectra-base", "webis-monoelectra-large"}
    assert exp.model_start("electra-base.stage1") == "google/electra-base-discriminator"
    assert exp.model_table("electra-base.stage1") == (
        "results/paper/training/hard-negatives/colbert.parquet"
    )
    assert exp.models["electra-large.stage1"].settings["steps"] == 20000
    assert exp.models["electra-base.stage1.rankzephyr.ranknet"].settings["epochs"] == 3


def test_ablation_grid_expands_and_reuses_equal_models(paper_config) -> None:
    off = from_config(paper_config)
    assert not [row for row in off.rows if row.kind == "ablation"]
    exp = from_config(edited(paper_config, lambda c: c["ablations"].update(enabled=True)))
    ablation = {row.key: row for row in exp.rows if row.kind == "ablation"}
    queries = [f"electra-base.stage1.rankzephyr.ranknet.{n}x100" for n in (1000, 2000, 5000)]
    for name in queries:
        assert ablation[name].systems[("bm25", "dl19")] == name
        assert exp.models[name].queries == int(name.split(".")[-1].split("x")[0])
        assert exp.model_table(name).endswith(f"rankzephyr.{exp.models[name].queries}x100.parquet")
    # 10k x 100 with RankNet after stage 1 is the main model: reused, not trained again.
    full = ablation["electra-base.stage1.rankzephyr.ranknet.10000x100"]
    assert set(full.systems.values()) == {"electra-base.stage1.rankzephyr.ranknet"}
    assert "electra-base.stage1.rankzephyr.ranknet.10000x100" not in exp.models
    # Without stage 1, large: new; the depth-20 point cuts the 100-deep teacher run.
    assert exp.models["electra-large.rankzephyr.ranknet.10000x100"].start == "electra-large"
    assert exp.model_table("electra-base.stage1.rankzephyr.ranknet.10000x20").endswith(
        "rankzephyr.10000x20.parquet"
    )
    # Each point is one row, even when several grids contain it.
    keys = [row.key for row in exp.rows]
    assert len(keys) == len(set(keys))


PAPER_POINTS = {  # the authors' ablation runs and the main table's base models
    "electra-base.stage1.rankzephyr.ranknet.1000x100",
    "electra-base.stage1.rankzephyr.ranknet.2000x100",
    "electra-base.stage1.rankzephyr.ranknet.5000x100",
    "electra-base.stage1.rankzephyr.ranknet.10000x100",
    "electra-base.stage1.rankzephyr.ranknet.10000x10",
    "electra-base.stage1.rankzephyr.ranknet.10000x20",
    "electra-base.stage1.rankzephyr.ranknet.10000x50",
    "electra-base.stage1.rankzephyr.adr_mse.10000x100",
    "electra-base.rankzephyr.ranknet.10000x100",
    "electra-base.stage1.rankzephyr-bm25.ranknet.10000x100",
    "electra-base.rankzephyr-bm25.ranknet.10000x100",
}
BEYOND_POINTS = {
    *(
        f"electra-base.stage1.rankzephyr.{loss}.10000x100"
        for loss in ("listnet", "kl_divergence", "margin_mse", "approx_ndcg")
    ),
    "electra-large.rankzephyr.ranknet.10000x100",
}


def test_ablation_grids_are_the_papers_and_the_rest_is_labelled_beyond_it(paper_config) -> None:
    exp = from_config(edited(paper_config, lambda c: c["ablations"].update(enabled=True)))
    ablation = {row.key: row for row in exp.rows if row.kind == "ablation"}
    assert set(ablation) == PAPER_POINTS | BEYOND_POINTS
    for key, row in ablation.items():
        assert row.label.startswith("Beyond the paper") == (key in BEYOND_POINTS), row.label
        # Every point of the paper's grids has the authors' figures beside it.
        assert (key in exp.references) == (key in PAPER_POINTS), key
    # Depth 10 is sub-sampled from the depth-100 run like 20 and 50, and checked against
    # the authors' own depth-10 file.
    depth10 = exp.models["electra-base.stage1.rankzephyr.ranknet.10000x10"]
    assert (depth10.teacher, depth10.queries, depth10.depth) == ("rankzephyr", 10000, 10)
    assert exp.teacher_table_inputs("rankzephyr", 10000, 10) == {
        "teacher_run": (
            "resources/__rankzephyr-colbert-10000-sampled-100__msmarco-passage-train-judged.run"
        ),
        "first_stage": "resources/__colbert__msmarco-passage-train-judged.run",
        "published": (
            "resources/__rankzephyr-colbert-10000-sampled-10__msmarco-passage-train-judged.run"
        ),
    }
    assert set(exp.teacher_table_inputs("rankzephyr", 10000, 50)) == {"teacher_run", "first_stage"}
    assert set(exp.teacher_table_inputs("rankzephyr-bm25", 10000, 100)) == {"teacher_run"}
    new = {name for name in exp.models if name not in from_config(paper_config).models}
    assert new == {
        *(
            f"electra-base.stage1.rankzephyr.ranknet.{n}"
            for n in ("1000x100", "2000x100", "5000x100", "10000x10", "10000x20", "10000x50")
        ),
        "electra-base.stage1.rankzephyr-bm25.ranknet.10000x100",
        "electra-base.rankzephyr-bm25.ranknet.10000x100",
        *(BEYOND_POINTS - {"electra-large.rankzephyr.ranknet.10000x100"}),
        "electra-large.rankzephyr.ranknet.10000x100",
    }


def test_paper_references_are_the_notebooks_printed_figures(paper_config) -> None:
    exp = from_config(paper_config)
    main = exp.references["electra-base.stage1.rankzephyr.ranknet"]
    assert main["colbert"] == {"dl19": 0.768, "dl20": 0.770, "mean": 0.769099}
    bm25 = main["bm25"]
    assert (bm25["dl19"], bm25["dl20"], bm25["mean"]) == (0.720, 0.711, 0.715229)
    # TIREx (BM25 first stage): 13 groups, the arithmetic and the geometric mean.
    assert (bm25["tirex"], bm25["tirex:geomean"]) == (0.401, 0.309)
    assert (bm25["tirex:antique"], bm25["tirex:cranfield"], bm25["tirex:wapo"]) == (
        0.593,
        0.010,
        0.458,
    )
    assert len([key for key in bm25 if key.startswith("tirex:")]) == 14
    assert exp.references["first-stage"]["bm25"]["tirex"] == 0.361
    assert exp.references["electra-base.stage1"]["bm25"]["tirex"] == 0.355
    assert "tirex" not in exp.references["electra-base.stage1"]["colbert"]
    # Figures the notebook does not print stay in the config.
    assert exp.references["webis-monoelectra-base"]["bm25"] == {"dl19": 0.721, "dl20": 0.711}
    # Ablation means per first stage (the sub-sampling tables), ColBERTv2's too.
    assert exp.references["electra-base.stage1.rankzephyr.ranknet.1000x100"] == {
        "bm25": {"mean": 0.606080},
        "colbert": {"mean": 0.651966},
    }
    assert exp.references["electra-base.stage1.rankzephyr.ranknet.10000x10"]["colbert"] == {
        "mean": 0.733180
    }
    # The loss table gives the ADR-MSE model its TREC DL figures.
    assert exp.references["electra-base.stage1.rankzephyr.adr_mse"]["colbert"] == {
        "dl19": 0.770,
        "dl20": 0.765,
    }


def test_rankgpt4_is_an_evaluated_reranker_not_a_teacher(paper_config) -> None:
    rows = {row.key: row for row in from_config(paper_config).rows}
    assert (rows["rankgpt4"].kind, rows["rankgpt4"].label) == ("reranker", "RankGPT-4 (re-ranker)")
    assert (rows["rankzephyr"].kind, rows["rankzephyr"].label) == (
        "teacher",
        "RankZephyr (teacher)",
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["models"]["electra-base.stage1.rankzephyr.ranknet"].update(
                teacher="rankzefir"
            ),
            "models.electra-base.stage1.rankzephyr.ranknet.teacher: 'rankzefir' is not a teacher "
            "(did you mean 'rankzephyr'?)",
        ),
        (
            lambda c: c["models"]["electra-base.stage1.rankzephyr.ranknet"].update(depth=200),
            "depth: 200 is deeper than the teacher run (teachers.rankzephyr.depth: 100)",
        ),
        (
            lambda c: c["models"]["electra-base.stage1.rankzephyr.ranknet"].update(queries=20000),
            "queries: 20000 is more than the teacher run holds",
        ),
        (
            lambda c: c["models"]["electra-base.stage1"].update(start="electra-base.stage1"),
            "models.electra-base.stage1.start: the models start from each other "
            "(electra-base.stage1 -> electra-base.stage1)",
        ),
        (
            lambda c: c["models"]["electra-base.stage1"].update(first_stage="colbertv2"),
            "'colbertv2' is not a first stage",
        ),
        (
            lambda c: c["models"]["electra-base.stage1"].update(epochs=1),
            "models.electra-base.stage1: needs exactly one of `steps` and `epochs`",
        ),
        (
            lambda c: c["models"]["electra-base.rankzephyr.ranknet"].update(teacher="rankgpt4"),
            "'rankgpt4' has no training run",
        ),
        (
            lambda c: c["references"].update({"electra-bsae.stage1": {"bm25": {"dl19": 0.5}}}),
            "references.electra-bsae.stage1: no table row has this name",
        ),
        (
            lambda c: c["references"].update({"first-stage": {"bm25": {"dl21": 0.5}}}),
            "references.first-stage.bm25.dl21: not an evaluation set, 'mean', 'tirex', "
            "'tirex:geomean' or 'tirex:<corpus group>'",
        ),
        (
            lambda c: c["references"].update({"first-stage": {"bm25": {"tirex:gov3": 0.5}}}),
            "references.first-stage.bm25.tirex:gov3: not an evaluation set",
        ),
        (
            lambda c: c["references"].update({"electra-base.stage1": {"bm25": {"dl19": 0.5}}}),
            "references.electra-base.stage1.bm25.dl19: also the paper's printed figure (0.687) "
            "of paper_systems.electra-base.stage1; give each figure once",
        ),
        (
            lambda c: c["paper_systems"].update({"electra-base.stage2": "monoelectra-base"}),
            "paper_systems.electra-base.stage2: no table row has this name",
        ),
        (
            lambda c: c["paper_systems"].update({"electra-large.stage1": "monoelectra-lage"}),
            "paper_systems.electra-large.stage1: 'monoelectra-lage' is in none of the paper's "
            "tables (did you mean 'monoelectra-large'?)",
        ),
        (
            lambda c: c["first_stages"]["colbert"]["runs"].update(dl21="x.run"),
            "first_stages.colbert.runs.dl21: not a split",
        ),
        (
            lambda c: c["teachers"].update(colbert={"label": "x", "first_stage": "colbert"}),
            "the name 'colbert' is used by a first stage and a teacher",
        ),
        (
            lambda c: c["ablations"]["grids"]["queries"].update(teacher="rankzefir"),
            "ablations.grids.queries.teacher: 'rankzefir' is not a teacher",
        ),
    ],
)
def test_impossible_combinations_are_errors_naming_the_key(paper_config, edit, message) -> None:
    with pytest.raises(ConfigError) as error:
        from_config(edited(paper_config, edit))
    assert message in str(error.value)


def test_hard_negative_depth_above_bm25_training_depth_is_an_error(demo_config) -> None:
    config = edited(demo_config, lambda c: c["hard_negatives"].update(depth=150))
    expected = r"hard_negatives.depth: 150 is deeper than first_stages.bm25.train_depth \(100\)"
    with pytest.raises(ConfigError, match=expected):
        from_config(config)


def test_simulated_teacher_deeper_than_its_candidates_is_an_error(demo_config) -> None:
    config = edited(demo_config, lambda c: c["teachers"]["simulated-teacher"].update(depth=101))
    with pytest.raises(ConfigError, match=r"teachers.simulated-teacher.depth: 101 is deeper"):
        from_config(config)


def test_a_table_below_the_teachers_depth_reads_the_first_stage_run(demo_config) -> None:
    """Depth 10 of the demo's depth-30 teacher is the first stage's top 10 in teacher order,
    so its job also reads the BM25 training run; at depth 30 the run is used as it is, so
    the demo's table (and figures) cannot change."""
    config = edited(
        demo_config,
        lambda c: c["teachers"]["simulated-teacher"].update(
            published_subsamples={10: "authors-sampled-10.run"}
        ),
    )
    exp = from_config(config)
    teacher_run = "results/demo/runs/train/bm25/simulated-teacher.run"
    assert exp.teacher_table_inputs("simulated-teacher", 2000, 30) == {"teacher_run": teacher_run}
    assert exp.teacher_table_inputs("simulated-teacher", 2000, 10) == {
        "teacher_run": teacher_run,
        "first_stage": "results/demo/runs/train/bm25/bm25.run",
        "published": "authors-sampled-10.run",
    }
    # The published sub-sample holds all the teacher's queries: no check for a subset.
    assert "published" not in exp.teacher_table_inputs("simulated-teacher", 500, 10)
    assert "published" not in exp.teacher_table_inputs("simulated-teacher", 2000, 20)


def test_a_published_subsample_at_the_teachers_depth_is_an_error(demo_config) -> None:
    config = edited(
        demo_config,
        lambda c: c["teachers"]["simulated-teacher"].update(published_subsamples={30: "x.run"}),
    )
    with pytest.raises(ConfigError, match=r"published_subsamples.30: a depth between 2 and"):
        from_config(config)


def test_an_override_file_changes_single_values(tmp_path) -> None:
    """Mappings merge, so a size override names only what it changes."""
    override = tmp_path / "small.yaml"
    override.write_text(
        "models:\n  electra-base.stage1: {steps: 3}\n"
        "backbones:\n  electra-base: {hub: /models/tiny}\n"
        "teachers:\n  rankzephyr: {queries: 20}\n"
    )
    config = load_config([REPO / "configs" / "paper.yaml", override], SCHEMA)
    exp = from_config(config)
    assert exp.models["electra-base.stage1"].settings["steps"] == 3
    assert exp.models["electra-base.stage1"].label.startswith("monoELECTRA-base")
    assert exp.backbone_dir("electra-base") == "/models/tiny"
    assert exp.models["electra-base.stage1.rankzephyr.ranknet"].queries == 20


# --------------------------------------------------------------------------- TIREx


def test_tirex_tasks_are_evaluation_sets_of_their_own_table(demo_config) -> None:
    exp = from_config(demo_config)
    tasks = {name: spec for name, spec in exp.evaluation.items() if spec.tirex}
    assert list(tasks) == ["tirex-demo-news-2019", "tirex-demo-news-2020", "tirex-demo-args-test"]
    news = tasks["tirex-demo-news-2019"]
    assert (news.dataset, news.group, news.corpus) == ("demo-news/2019", "demo-news", "demo-news")
    # One index per corpus: both news tasks search demo-news.
    assert exp.index_dir(news.corpus) == exp.index_dir(tasks["tirex-demo-news-2020"].corpus)
    assert exp.tirex_first_stage == "bm25"
    assert exp.table_pairs == [("bm25", "dl19"), ("bm25", "dl20")]
    assert exp.tirex_pairs == [("bm25", name) for name in tasks]
    rows = {row.key: row for row in exp.rows}
    # Models and the first stage run on TIREx; the teacher is compared on DL only.
    assert ("bm25", "tirex-demo-args-test") in rows["tiny-electra.stage1"].systems
    assert ("bm25", "tirex-demo-args-test") in rows["first-stage"].systems
    assert set(rows["simulated-teacher"].systems) == {("bm25", "dl19"), ("bm25", "dl20")}
    assert exp.manifests()[1:] == [
        "results/demo/data/collections/demo-news/manifest.json",
        "results/demo/data/collections/demo-args/manifest.json",
    ]
    assert exp.text_inputs("tirex-demo-args-test") == exp.manifests()  # built with the data


def test_paper_tirex_catalogue_skips_licensed_corpora(paper_config) -> None:
    exp = from_config(paper_config)
    assert len(exp.tirex.catalogue) == 29
    assert len({task.group for task in exp.tirex.catalogue}) == 13
    used = [spec for spec in exp.evaluation.values() if spec.tirex]
    assert [spec.label for spec in used] == [
        "antique/test",
        "argsme/2020-04-01/touche-2020-task-1",
        "argsme/2020-04-01/touche-2021-task-1",
        "cord19/fulltext/trec-covid",
        "cranfield",
        "medline/2004/trec-genomics-2004",
        "medline/2004/trec-genomics-2005",
        "medline/2017/trec-pm-2017",
        "medline/2017/trec-pm-2018",
        "nfcorpus/test",
        "vaswani",
    ]
    corpora = {spec.label: spec.corpus for spec in used}
    # medline forms one group but searches two corpora.
    assert corpora["medline/2004/trec-genomics-2005"] == "medline/2004"
    assert corpora["medline/2017/trec-pm-2017"] == "medline/2017"
    assert corpora["argsme/2020-04-01/touche-2021-task-1"] == "argsme/2020-04-01"
    assert "needs the ClueWeb09 licence" in exp.tirex.skipped["clueweb09/en/trec-web-2009"]
    # ColBERTv2 has no TIREx runs: TIREx is re-ranked from BM25 only.
    assert {stage for stage, _ in exp.tirex_pairs} == {"bm25"}


def test_tirex_task_without_a_first_stage_run_is_an_error(paper_config) -> None:
    def edit(config):
        config["tirex"]["first_stage"] = "colbert"

    with pytest.raises(ConfigError, match="tirex task antique/test: no first stage has a run"):
        from_config(edited(paper_config, edit))


def test_unknown_tirex_dataset_is_an_error(demo_config) -> None:
    def edit(config):
        config["tirex"]["tasks"].append({"id": "no-such/collection"})

    with pytest.raises(ConfigError, match="'no-such/collection' is neither an ir_datasets id"):
        from_config(edited(demo_config, edit))


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        (
            "msmarco-passage/trec-dl-2021",
            "'msmarco-passage/trec-dl-2021' is neither an ir_datasets id",
        ),
        ("msmarco-passage/eval/small", "'msmarco-passage/eval/small' has no qrels"),
    ],
)
def test_an_evaluation_set_needs_qrels(paper_config, dataset: str, message: str) -> None:
    def edit(config):
        config["evaluation"]["dl20"]["dataset"] = dataset

    with pytest.raises(ConfigError, match=f"evaluation.dl20.dataset: {message}"):
        from_config(edited(paper_config, edit))


# --------------------------------------------------------------------------- published runs


def test_cranfield_first_stage_is_the_authors_run_with_ir_datasets_ids(paper_config) -> None:
    """The archive numbers Cranfield's queries by cran.qry's .I field; the pipeline
    re-ranks the run with ir_datasets' ids, or PISA's run without the mapping."""
    exp = from_config(paper_config)
    split = next(name for name, spec in exp.evaluation.items() if spec.label == "cranfield")
    assert exp.first_stage_run("bm25", split) == (
        "resources/published/first_stage/bm25/cranfield.ids-mapped.run"
    )
    unmapped = from_config(
        edited(paper_config, lambda c: c["published"].update(map_cranfield_ids=False))
    )
    assert split not in unmapped.first_stages["bm25"].published_splits
    assert unmapped.first_stage_run("bm25", split) == f"results/paper/runs/{split}/bm25/bm25.run"


def test_published_first_stage_serves_the_sets_its_archive_holds(demo_config) -> None:
    """The demo's BM25 with `published: bm25`: the archive has the TREC DL ids, not the
    demo's own sets, which PISA's BM25 keeps serving."""

    def edit(config: dict[str, Any]) -> None:
        config["downloads"] = {"a.tar.gz": {"url": "http://127.0.0.1/a.tar.gz"}}
        config["published"] = {"archive": "resources/a.tar.gz"}
        config["first_stages"]["bm25"]["published"] = "bm25"
        config["evaluation"]["dl19"]["dataset"] = "msmarco-passage/trec-dl-2019/judged"
        config["evaluation"]["dl19"]["corpus"] = "msmarco-passage"

    exp = from_config(edited(demo_config, edit))
    stage = exp.first_stages["bm25"]
    assert stage.published_splits == ("dl19",)
    assert exp.first_stage_run("bm25", "dl19").startswith("resources/published/first_stage/")
    assert exp.first_stage_run("bm25", "dl20") == "results/demo/runs/dl20/bm25/bm25.run"
    assert any("the authors' published run" in note for note in exp.table_notes())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["first_stages"]["bm25"].update(published="bm25"),
            "first_stages.bm25.published: the authors' runs come from their archive",
        ),
        (
            lambda c: c.update(
                downloads={
                    "x.run": {"url": "https://zenodo.org/records/1/files/x.run", "record": 2}
                }
            ),
            "downloads.x.run: the url is not a file of Zenodo record 2",
        ),
        (
            lambda c: c.update(published={"archive": "resources/missing.tar.gz"}),
            "published.archive: 'resources/missing.tar.gz' is not a download",
        ),
        (
            lambda c: c.update(paper_systems={"tiny-electra.stage1": "monoelectra-bas"}),
            "did you mean 'monoelectra-base'",
        ),
    ],
)
def test_published_settings_refused_with_the_key(demo_config, edit, message) -> None:
    with pytest.raises(ConfigError, match=message):
        from_config(edited(demo_config, edit))


def test_paper_downloads_name_the_record_their_url_is_from(paper_config) -> None:
    for name, spec in paper_config["downloads"].items():
        assert f"zenodo.org/records/{spec['record']}/files/{name}" in spec["url"], name
    assert paper_config["downloads"]["experiments.tar.gz"]["record"] == 15150456
    assert "md5" not in paper_config["downloads"]["experiments.tar.gz"]  # none published


def test_paper_models_name_the_published_system_they_reproduce(paper_config) -> None:
    from rank_distillm.data import paper_tables

    exp = from_config(paper_config)
    published = {name: exp.paper_systems.get(name) for name in exp.models}
    assert published["electra-base.stage1.rankzephyr.ranknet"] == (
        "monoelectra-base-dual-rank-distillm-colbert"
    )
    assert published["electra-large.stage1"] is None  # the authors published no large stage 1
    paper = paper_tables.load()
    assert {p for p in published.values() if p} <= set(paper.systems)
    # The config's TIREx catalogue is the notebook's, in its order.
    assert [task["id"] for task in paper_config["tirex"]["tasks"]] == list(paper.tirex_tasks)


def test_published_models_fall_back_to_the_printed_figures(paper_config) -> None:
    """A model naming its published system (`paper_systems`) gets that system's printed
    figures as references without the config giving any; they are the printed ones."""
    from rank_distillm.data import paper_tables

    bare = edited(paper_config, lambda c: c.update(references={}))
    exp = from_config(bare)
    large = exp.references["electra-large.stage1.rankzephyr.ranknet"]
    assert {
        stage: {key: value for key, value in cells.items() if not key.startswith("tirex:")}
        for stage, cells in large.items()
    } == {
        "bm25": {"dl19": 0.733, "dl20": 0.727, "tirex": 0.418},
        "colbert": {"dl19": 0.765, "dl20": 0.799},
    }
    assert "electra-large.stage1" not in exp.references  # no published system
    paper = paper_tables.load()
    full = from_config(paper_config)
    sets = {spec.dataset: name for name, spec in full.evaluation.items()}
    for name, system in full.paper_systems.items():
        if name not in full.models:
            continue
        for (stage, dataset), value in paper.figures(system).items():
            if stage in full.first_stages and dataset in sets:
                assert full.references[name][stage][sets[dataset]] == value, (name, stage)


@pytest.mark.parametrize("sampler", ["single_relevant", "any_relevant"])
def test_stage_1_pairs_are_steps_by_queries_by_one_positive_and_its_negatives(
    demo_config, sampler
) -> None:
    """Both stage-1 samplers size a job as 1 positive + ``negatives`` per query (here 1,000
    steps x 64 queries x (1 + 3)); stage 2 as its teacher's depth (2 epochs x 2,000 x 30)."""
    stage1 = {"sampler": sampler, "negatives": 3}
    exp = from_config(
        edited(demo_config, lambda c: c["models"]["tiny-electra.stage1"].update(stage1))
    )
    assert exp.train_pairs("tiny-electra.stage1") == 1000 * 64 * 4
    assert exp.train_pairs("tiny-electra.stage1.stage2-ranknet") == 2 * 2000 * 30
