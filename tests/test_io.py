"""Tests for rank_distillm.data.trec: TREC runs, qrels and topics."""

from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rank_distillm.data import trec as trec_io
from rank_distillm.data.atomic import atomic_output, atomic_write_text
from rank_distillm.data.trec import (
    rank_by_score,
    read_qrels,
    read_run,
    read_topics,
    truncate_run,
    write_qrels,
    write_run,
    write_topics,
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run_frame(rows: list[tuple[str, str, int, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["query_id", "doc_id", "rank", "score"])
    return frame.astype({"query_id": "str", "doc_id": "str", "rank": "int64", "score": "float64"})


def no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.rglob("*") if p.name.startswith(".tmp-")]


# --------------------------------------------------------------------------- read_run

SPACE_RUN = """\
007 Q0 0042 1 32.25 pyterrier.default_pipelines.wmodel_batch_retrieve
007 Q0 17 2 28.5 pyterrier.default_pipelines.wmodel_batch_retrieve
19335 Q0 8412684 1 -1.5e-3 pyterrier.default_pipelines.wmodel_batch_retrieve
"""
TAB_RUN = "007\t0\t0042\t1\t32.25\tColBERT\n007\t0\t17\t2\t28.5\tColBERT\n"
TAB_RUN += "19335\t0\t8412684\t1\t-0.0015\tColBERT\n"


def test_both_flavours_parse_to_the_same_frame(tmp_path: Path) -> None:
    space = read_run(write(tmp_path, "space.run", SPACE_RUN))
    tab = read_run(write(tmp_path, "tab.run", TAB_RUN))
    pd.testing.assert_frame_equal(space, tab)
    assert list(space.columns) == ["query_id", "doc_id", "rank", "score"]
    assert space["query_id"].tolist() == ["007", "007", "19335"]
    assert space["doc_id"].tolist() == ["0042", "17", "8412684"]
    assert space["rank"].tolist() == [1, 2, 1]
    assert space["score"].tolist() == [32.25, 28.5, -0.0015]
    assert space["query_id"].dtype == "str"
    assert space["doc_id"].dtype == "str"
    assert space["rank"].dtype == np.int64
    assert space["score"].dtype == np.float64
    assert isinstance(space.index, pd.RangeIndex)


def test_any_whitespace_and_blank_lines_and_na_like_ids(tmp_path: Path) -> None:
    text = "  NA   x  null  1\t 2.5  tag  \n\n \t \nnan Q0 None 1 1 tag\n"
    run = read_run(write(tmp_path, "messy.run", text))
    assert run["query_id"].tolist() == ["NA", "nan"]
    assert run["doc_id"].tolist() == ["null", "None"]
    assert run["score"].tolist() == [2.5, 1.0]


def test_rank_not_score_orders_and_duplicates_keep_best_rank(tmp_path: Path) -> None:
    text = """\
q2 Q0 a 2 9.0 t
q1 Q0 c 3 0.5 t
q2 Q0 b 1 1.0 t
q1 Q0 d 1 0.1 t
q1 Q0 c 2 0.2 t
q1 Q0 e 5 7.0 t
"""
    run = read_run(write(tmp_path, "order.run", text))
    expected = run_frame(
        [
            ("q2", "b", 1, 1.0),
            ("q2", "a", 2, 9.0),
            ("q1", "d", 1, 0.1),
            ("q1", "c", 2, 0.2),
            ("q1", "e", 5, 7.0),
        ]
    )
    pd.testing.assert_frame_equal(run, expected)


# --------------------------------------------------------------------------- write_run


def test_write_read_round_trip_exact_scores(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scores = [0.1 + 0.2, 1 / 3, 1e-300, -2.5e200, 32.25045041042719, 0.0]
    scores += (rng.standard_normal(200) * 10.0 ** rng.integers(-30, 30, 200)).tolist()
    run = run_frame([("007", f"{i:05d}", i + 1, s) for i, s in enumerate(scores)])
    path = tmp_path / "deep" / "er" / "out.run"
    write_run(run, path, tag="my-tag")
    first = path.read_text().splitlines()[0]
    assert first == "007 Q0 00000 1 0.30000000000000004 my-tag"
    back = read_run(path)
    pd.testing.assert_frame_equal(back, run)
    assert back["score"].tolist() == scores  # bit-exact
    assert no_temp_files(tmp_path)


def test_write_run_keeps_frame_order(tmp_path: Path) -> None:
    run = run_frame([("b", "x", 2, 1.0), ("a", "y", 1, 2.0), ("b", "z", 1, 3.0)])
    path = tmp_path / "o.run"
    write_run(run, path, tag="t")
    assert path.read_text() == "b Q0 x 2 1.0 t\na Q0 y 1 2.0 t\nb Q0 z 1 3.0 t\n"


def test_write_run_gzip_round_trip(tmp_path: Path) -> None:
    run = run_frame([("1", "2", 1, 0.5)])
    path = tmp_path / "o.run.gz"
    write_run(run, path, tag="t")
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    pd.testing.assert_frame_equal(read_run(path), run)


def test_write_run_rejects_bad_ranks_and_tokens(tmp_path: Path) -> None:
    path = tmp_path / "o.run"
    with pytest.raises(ValueError, match=re.escape(str(path))):
        write_run(run_frame([("q", "d", 0, 1.0)]), path, tag="t")
    with pytest.raises(ValueError, match="whitespace"):
        write_run(run_frame([("q", "d", 1, 1.0)]), path, tag="two words")
    with pytest.raises(ValueError, match="doc_id"):
        write_run(run_frame([("q", "d 1", 1, 1.0)]), path, tag="t")
    with pytest.raises(ValueError, match="integers"):
        write_run(
            run_frame([("q", "d", 1, 1.0)]).astype({"rank": float}).assign(rank=1.5), path, "t"
        )
    assert not path.exists()
    assert no_temp_files(tmp_path)


def test_write_run_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "o.run"
    path.write_text("old\n")
    write_run(run_frame([("q", "d", 1, 1.0)]), path, tag="t")
    assert path.read_text() == "q Q0 d 1 1.0 t\n"


# --------------------------------------------------------------------------- atomic output


def test_atomic_output_failure_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        assert tmp.parent == target.parent
        assert tmp.exists() and not target.exists()
        raise RuntimeError("crash midway")
    assert not target.exists()
    assert no_temp_files(tmp_path)


def test_atomic_output_failure_keeps_old_content(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("new")
        raise RuntimeError
    assert target.read_text() == "old"
    assert no_temp_files(tmp_path)


def test_atomic_write_text(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.txt"
    atomic_write_text(target, "héllo\n")
    assert target.read_text(encoding="utf-8") == "héllo\n"
    assert no_temp_files(tmp_path)


# ------------------------------------------------------------------------ rank_by_score / truncate


def test_rank_by_score_with_ties() -> None:
    run = pd.DataFrame(
        {
            "query_id": ["q2", "q1", "q2", "q1", "q1", "q1"],
            "doc_id": ["a", "b", "c", "d", "e", "f"],
            "score": [1.0, 0.5, 3.0, 0.5, 0.9, 0.5],
        }
    )
    ranked = rank_by_score(run)
    expected = run_frame(
        [
            ("q2", "c", 1, 3.0),
            ("q2", "a", 2, 1.0),
            ("q1", "e", 1, 0.9),
            ("q1", "b", 2, 0.5),
            ("q1", "d", 3, 0.5),
            ("q1", "f", 4, 0.5),
        ]
    )
    pd.testing.assert_frame_equal(ranked, expected)
    assert run.columns.tolist() == ["query_id", "doc_id", "score"]  # input untouched


def test_rank_by_score_replaces_existing_ranks() -> None:
    run = run_frame([("q", "a", 1, 0.1), ("q", "b", 2, 0.7)])
    assert rank_by_score(run)[["doc_id", "rank"]].values.tolist() == [["b", 1], ["a", 2]]


def test_truncate_run_with_rank_gaps() -> None:
    run = run_frame(
        [
            ("q1", "a", 10, 1.0),
            ("q2", "x", 3, 1.0),
            ("q1", "b", 2, 2.0),
            ("q1", "c", 7, 3.0),
            ("q2", "y", 1, 2.0),
        ]
    )
    top2 = truncate_run(run, 2)
    expected = run_frame(
        [("q1", "b", 2, 2.0), ("q1", "c", 7, 3.0), ("q2", "y", 1, 2.0), ("q2", "x", 3, 1.0)]
    )
    pd.testing.assert_frame_equal(top2, expected)
    assert len(truncate_run(run, 0)) == 0
    assert len(truncate_run(run, 100)) == 5
    with pytest.raises(ValueError):
        truncate_run(run, -1)


# --------------------------------------------------------------------------- qrels


def test_read_qrels_both_flavours_and_duplicates_keep_last(tmp_path: Path) -> None:
    text = "19335 Q0 1017759 0\n1 0 01239 1\n\n19335 Q0 1017759 3\n1 0 7 -2\n"
    qrels = read_qrels(write(tmp_path, "q.txt", text))
    assert qrels.values.tolist() == [["1", "01239", 1], ["19335", "1017759", 3], ["1", "7", -2]]
    assert qrels.columns.tolist() == ["query_id", "doc_id", "relevance"]
    assert qrels["relevance"].dtype == np.int64
    assert qrels["query_id"].dtype == "str"


def test_write_qrels_round_trip(tmp_path: Path) -> None:
    qrels = pd.DataFrame({"query_id": ["01", "2"], "doc_id": ["a", "b"], "relevance": [3, -1]})
    path = tmp_path / "x" / "qrels.txt"
    write_qrels(qrels, path)
    assert path.read_text() == "01 0 a 3\n2 0 b -1\n"
    back = read_qrels(path)
    assert back.values.tolist() == [["01", "a", 3], ["2", "b", -1]]
    assert no_temp_files(tmp_path)


# --------------------------------------------------------------------------- topics


def test_read_topics(tmp_path: Path) -> None:
    path = write(tmp_path, "t.tsv", "156493\tdo goldfish grow\n\n007\t  spaced  text \n")
    topics = read_topics(path)
    assert topics.values.tolist() == [["156493", "do goldfish grow"], ["007", "  spaced  text "]]
    assert topics.columns.tolist() == ["query_id", "text"]
    assert topics["query_id"].dtype == "str"


def test_write_topics_round_trip_and_refusals(tmp_path: Path) -> None:
    topics = pd.DataFrame({"query_id": ["007", "8"], "text": ["what is wifi", "x  y"]})
    path = tmp_path / "d" / "topics.tsv"
    write_topics(topics, path)
    assert path.read_text() == "007\twhat is wifi\n8\tx  y\n"
    pd.testing.assert_frame_equal(read_topics(path), topics.astype("str"))
    for text in ["a\tb", "a\nb"]:
        bad = pd.DataFrame({"query_id": ["q42"], "text": [text]})
        with pytest.raises(ValueError, match="q42"):
            write_topics(bad, tmp_path / "bad.tsv")
    assert not (tmp_path / "bad.tsv").exists()
    assert no_temp_files(tmp_path)


# --------------------------------------------------------------------------- shared TREC DL files


def test_shared_trec_dl_2019_runs(shared_data: Path) -> None:
    runs = shared_data / "trec-dl" / "runs"
    colbert = read_run(runs / "__colbert__msmarco-passage-trec-dl-2019-judged.run")
    bm25 = read_run(runs / "__bm25__msmarco-passage-trec-dl-2019-judged.run")
    assert colbert["query_id"].nunique() == 43
    assert bm25["query_id"].nunique() == 43
    assert colbert.iloc[0].tolist() == ["156493", "2928707", 1, 27.796875]
    for run in (colbert, bm25):
        assert (run.groupby("query_id", sort=False)["rank"].diff().dropna() > 0).all()


def test_reading_a_large_file_is_announced_in_the_log(tmp_path, monkeypatch, caplog) -> None:
    path = tmp_path / "big.run"
    path.write_bytes(gzip.compress(SPACE_RUN.encode()))
    monkeypatch.setattr(trec_io, "_ANNOUNCE_BYTES", 10)
    with caplog.at_level(logging.INFO, logger="rank_distillm.data.trec"):
        read_run(path)
    assert caplog.messages[0] == f"reading {path} (0.0 GiB, gzip)"


# --------------------------------------------------------------------------- streaming runs


SPLIT_RUN = """\
q2 Q0 a 2 1.0 t
q2 Q0 b 1 2.0 t
q2 Q0 b 3 0.5 t
q1 Q0 c 1 9.0 t
q3 Q0 d 1 1.0 t
q3 Q0 e 2 0.9 t
q3 Q0 f 3 0.8 t
"""


@pytest.mark.parametrize("chunk_lines", [1, 2, 3, 100])
def test_chunks_hold_whole_queries_and_read_as_read_run_does(
    tmp_path: Path, chunk_lines: int, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, "run.txt", SPLIT_RUN)
    with caplog.at_level(logging.WARNING, logger="rank_distillm.data.trec"):
        chunks = list(trec_io.iter_run_chunks(path, chunk_lines))
    for chunk in chunks:
        assert list(chunk.columns) == trec_io.RUN_COLUMNS
    # No query is cut between two chunks.
    seen = [set(chunk["query_id"]) for chunk in chunks]
    assert sum(len(ids) for ids in seen) == 3
    streamed = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(streamed, read_run(path))
    assert streamed["doc_id"].tolist() == ["b", "a", "c", "d", "e", "f"]  # q2's b keeps rank 1
    assert "dropped 1 duplicate (query_id, doc_id) rows" in caplog.text


def test_run_query_ids_in_first_appearance_order(tmp_path: Path) -> None:
    path = write(tmp_path, "run.txt", SPLIT_RUN)
    assert trec_io.run_query_ids(path, chunk_lines=2) == ["q2", "q1", "q3"]


def test_a_query_that_comes_back_cannot_be_streamed(tmp_path: Path) -> None:
    path = write(tmp_path, "run.txt", "q1 Q0 a 1 1 t\nq2 Q0 b 1 1 t\n\nq1 Q0 c 2 1 t\n")
    for chunk_lines in (1, 10):
        with pytest.raises(trec_io.RunNotGrouped, match=r"run\.txt:4: query q1 appears again"):
            list(trec_io.iter_run_chunks(path, chunk_lines))


def test_streaming_names_the_bad_line(tmp_path: Path) -> None:
    path = write(tmp_path, "run.txt", "q1 Q0 a 1 1 t\nq1 Q0 b two 1 t\n")
    with pytest.raises(trec_io.TrecFormatError, match=r"run\.txt:2: rank 'two' is not an integer"):
        list(trec_io.iter_run_chunks(path, 1))


def test_streaming_reads_gzip_whatever_the_name(tmp_path: Path) -> None:
    path = tmp_path / "run.txt"
    path.write_bytes(gzip.compress(SPLIT_RUN.encode()))
    assert pd.concat(trec_io.iter_run_chunks(path, 2))["doc_id"].tolist()[:2] == ["b", "a"]
