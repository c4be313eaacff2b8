"""The fault matrix for run, qrels and topics files (docs/reliability.md cites these tests).

Each bad input either fails with ``file:line`` and what to fix, or is handled by a
documented rule that is counted in the ReadReport and logged as a warning.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import re
from pathlib import Path

import pandas as pd
import pytest

from rank_distillm.data.trec import (
    TrecFormatError,
    read_qrels,
    read_qrels_with_report,
    read_run,
    read_run_with_report,
    read_topics,
    read_topics_with_report,
)

RUN = "q1 Q0 d1 1 1.5 tag\nq1 Q0 d2 2 1.0 tag\nq2 Q0 d1 1 0.5 tag\n"
QRELS = "q1 0 d1 1\nq1 0 d2 0\nq2 0 d1 3\n"
TOPICS = "q1\twhat is wifi\nq2\tdo goldfish grow\n"


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def fails_at(call, path: Path, line: int | None, message: str) -> None:
    """``call(path)`` raises a TrecFormatError that starts with ``path:line:``, with ``message``."""
    with pytest.raises(TrecFormatError) as info:
        call(path)
    text = str(info.value)
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    assert text.startswith(where), text
    assert message in text, text


# --------------------------------------------------------------------------- runs: refused

RUN_FAULTS = {
    "too-few-columns": (
        "q1 Q0 d3 3 0.5",
        "expected 6 whitespace-separated columns (query_id Q0 doc_id rank score tag), found 5",
    ),
    "too-many-columns": ("q1 Q0 d3 3 0.5 tag extra", "expected 6 whitespace-separated columns"),
    "one-column": ("q1", "found 1"),
    "rank-not-a-number": ("q1 Q0 d3 abc 0.5 tag", "rank 'abc' is not an integer"),
    "rank-not-an-integer": ("q1 Q0 d3 2.5 0.5 tag", "rank '2.5' is not an integer"),
    "rank-too-large": ("q1 Q0 d3 9223372036854775808 1 t", "is not an integer (64-bit)"),
    "score-not-a-number": ("q1 Q0 d3 3 x tag", "score 'x' is not a number"),
    "score-nan": ("q1 Q0 d3 3 nan tag", "score 'nan' is not a number"),
}


@pytest.mark.parametrize("blank_before", [False, True], ids=["plain", "after-blank-line"])
@pytest.mark.parametrize(("bad_line", "message"), RUN_FAULTS.values(), ids=RUN_FAULTS.keys())
def test_run_refused(tmp_path: Path, bad_line: str, message: str, blank_before: bool) -> None:
    prefix = "q1 Q0 d1 1 1.5 tag\n\nq1 Q0 d2 2 1.0 tag\n" if blank_before else RUN[:38]
    line = 4 if blank_before else 3
    path = write(tmp_path, "bad.run", prefix + bad_line + "\n" + RUN + "q1 Q0 d9 x y z w\n")
    fails_at(read_run, path, line, message)


def test_run_first_bad_line_is_named_even_if_pandas_names_a_later_one(tmp_path: Path) -> None:
    # pandas' ParserError only mentions the 7-field line; the 5-field one comes first.
    path = write(tmp_path, "x.run", RUN + "q1 Q0 d3 3 0.5\nq1 Q0 d4 4 0.5 t e\n")
    fails_at(read_run, path, 4, "expected 6")


@pytest.mark.parametrize("text", ["", "\n \t\n\n"], ids=["empty", "blank"])
def test_run_empty_file_refused(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "empty.run", text)
    fails_at(read_run, path, None, "has no data lines (it is empty or blank); expected lines")
    assert read_run(path, allow_empty=True).empty


def test_run_not_utf8_names_line_and_byte(tmp_path: Path) -> None:
    path = write(
        tmp_path, "latin1.run", "q1 Q0 d1 1 1 t\nq1 Q0 caf\xe9 2 0.5 t\n".encode("latin-1")
    )
    fails_at(
        read_run,
        path,
        2,
        "the byte at offset 24 (0xe9) is not valid UTF-8 (invalid continuation byte)",
    )


def test_run_not_utf8_inside_gzip_names_line_and_byte(tmp_path: Path) -> None:
    data = gzip.compress(b"q1 Q0 d1 1 1 t\n\nq1 Q0 \xff 2 0.5 t\n")
    fails_at(
        read_run,
        write(tmp_path, "x.run.gz", data),
        3,
        "the byte at offset 22 (0xff) is not valid UTF-8",
    )


def test_run_truncated_gzip_refused(tmp_path: Path) -> None:
    data = gzip.compress((RUN * 200).encode())
    path = write(tmp_path, "cut.run.gz", data[: len(data) // 2])
    fails_at(read_run, path, None, "the gzip stream is truncated or corrupt")


def test_run_zstd_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "x.run.zst", b"\x28\xb5\x2f\xfd\x00\x00")
    fails_at(read_run, path, None, "is zstd-compressed; decompress it")


# --------------------------------------------------------------------------- runs: handled


def _gzip_bom(text: str) -> bytes:
    return gzip.compress(b"\xef\xbb\xbf" + text.encode())


SAME_RUN = {
    "crlf": ("x.run", RUN.replace("\n", "\r\n").encode()),
    "byte-order-mark": ("x.run", b"\xef\xbb\xbf" + RUN.encode()),
    "blank-lines": ("x.run", ("\n\n" + RUN.replace("\n", "\n \t\n") + "\n").encode()),
    "trailing-whitespace": ("x.run", RUN.replace("\n", " \t \n").encode()),
    "tabs-and-zero": ("x.run", RUN.replace(" Q0 ", "\t0\t").replace(" ", "\t").encode()),
    "gzip": ("x.run.gz", gzip.compress(RUN.encode())),
    "gzip-without-suffix": ("x.run", gzip.compress(RUN.encode())),
    "gzip-bom-crlf": ("x", _gzip_bom(RUN.replace("\n", "\r\n"))),
    "bz2": ("x.run.bz2", bz2.compress(RUN.encode())),
    "xz-without-suffix": ("x.txt", lzma.compress(RUN.encode())),
    "plain-with-gz-suffix": ("x.run.gz", RUN.encode()),
    "no-final-newline": ("x.run", RUN.rstrip("\n").encode()),
}


@pytest.mark.parametrize(("name", "data"), SAME_RUN.values(), ids=SAME_RUN.keys())
def test_run_variants_read_as_the_plain_file(tmp_path, caplog, name: str, data: bytes) -> None:
    expected = read_run(write(tmp_path, "plain.run", RUN))
    with caplog.at_level(logging.INFO):
        run, report = read_run_with_report(write(tmp_path, name, data))
    pd.testing.assert_frame_equal(run, expected)
    assert (report.rows, report.kept, report.queries, report.findings) == (3, 3, 2, ())
    assert warnings(caplog) == []


def test_run_duplicates_keep_the_best_ranked_row_and_are_counted(tmp_path, caplog) -> None:
    text = "q1 Q0 a 3 1 t\nq1 Q0 b 2 2 t\nq1 Q0 a 1 3 t\nq2 Q0 a 1 1 t\nq1 Q0 a 5 0 t\n"
    path = write(tmp_path, "dup.run", text)
    with caplog.at_level(logging.INFO):
        run, report = read_run_with_report(path)
    assert run.values.tolist() == [["q1", "a", 1, 3.0], ["q1", "b", 2, 2.0], ["q2", "a", 1, 1.0]]
    assert (report.rows, report.kept, report.count("duplicate_rows")) == (5, 3, 2)
    assert warnings(caplog) == [
        f"{path}: dropped 2 duplicate (query_id, doc_id) rows; each pair keeps its best-ranked "
        "row (first dropped: query_id 'q1' doc_id 'a' rank 3)"
    ]


def test_run_rank_ties_follow_score_then_file_order_and_are_counted(tmp_path, caplog) -> None:
    text = "q Q0 b 1 1 t\nq Q0 a 1 2 t\nq Q0 d 1 1 t\nq Q0 c 0 3 t\nr Q0 x 1 1 t\n"
    path = write(tmp_path, "ties.run", text)
    with caplog.at_level(logging.INFO):
        run, report = read_run_with_report(path)
    assert run["doc_id"].tolist() == ["c", "a", "b", "d", "x"]
    assert run["rank"].tolist() == [0, 1, 1, 1, 1]  # ranks are kept as given
    assert report.count("rank_ties") == 2
    assert report.count("score_rank_conflicts") == 0
    [warning] = warnings(caplog)
    assert warning.startswith(f"{path}: 2 rows have the same rank as the row before them")
    assert "ordered by score (highest first), then by file order (first: query_id 'q' rank 1)" in (
        warning
    )


def test_run_score_ties_are_ordered_by_rank_without_a_warning(tmp_path, caplog) -> None:
    path = write(tmp_path, "t.run", "q Q0 c 3 1 t\nq Q0 a 1 1 t\nq Q0 b 2 1 t\n")
    with caplog.at_level(logging.INFO):
        run, report = read_run_with_report(path)
    assert run["doc_id"].tolist() == ["a", "b", "c"]
    assert report.findings == ()
    assert warnings(caplog) == []


def test_run_scores_rising_with_rank_are_counted(tmp_path, caplog) -> None:
    path = write(
        tmp_path, "r.run", "q Q0 a 1 0.1 t\nq Q0 b 2 0.2 t\nq Q0 c 3 0.3 t\nr Q0 x 1 9 t\n"
    )
    with caplog.at_level(logging.INFO):
        run, report = read_run_with_report(path)
    assert run["doc_id"].tolist() == ["a", "b", "c", "x"]
    assert report.count("score_rank_conflicts") == 2
    [warning] = warnings(caplog)
    assert "2 rows score higher than the row ranked before them; the rank column decides" in (
        warning
    )
    assert "(first: query_id 'q' rank 2 score 0.2)" in warning


def test_run_query_with_few_candidates_is_kept_and_reported(tmp_path, caplog) -> None:
    rows = [f"deep Q0 d{i} {i} {100 - i} t\n" for i in range(1, 11)]
    path = write(tmp_path, "d.run", "".join(rows) + "shallow Q0 d1 1 5 t\n")
    with caplog.at_level(logging.INFO):
        run, report = read_run_with_report(path)
    assert run["query_id"].value_counts().to_dict() == {"deep": 10, "shallow": 1}
    assert (report.min_depth, report.max_depth, report.shallowest) == (1, 10, "shallow")
    assert f"read {path}: run with 11 rows, 2 queries, 1-10 rows per query (fewest: query " in (
        caplog.text
    )


def test_run_rank_gaps_are_kept(tmp_path: Path) -> None:
    run, report = read_run_with_report(write(tmp_path, "g.run", "q Q0 a 10 1 t\nq Q0 b 3 2 t\n"))
    assert run[["doc_id", "rank"]].values.tolist() == [["b", 3], ["a", 10]]
    assert report.findings == ()


def test_paper_bm25_dl19_run_keeps_its_five_passage_query(shared_data: Path, caplog) -> None:
    path = shared_data / "trec-dl/runs/__bm25__msmarco-passage-trec-dl-2019-judged.run"
    with caplog.at_level(logging.INFO):
        run, report = read_run_with_report(path)
    assert (report.rows, report.kept, report.queries) == (42_005, 42_005, 43)
    assert (report.min_depth, report.max_depth, report.shallowest) == (5, 1000, "855410")
    assert (run["query_id"] == "855410").sum() == 5
    assert report.findings == () and warnings(caplog) == []


@pytest.mark.parametrize("year", ["2019", "2020"])
def test_paper_colbert_runs_read_without_findings(shared_data: Path, year: str) -> None:
    path = shared_data / f"trec-dl/runs/__colbert__msmarco-passage-trec-dl-{year}-judged.run"
    run, report = read_run_with_report(path)
    assert (report.queries, report.min_depth, report.max_depth) == (
        {"2019": 43, "2020": 54}[year],
        500,
        500,
    )
    assert report.findings == ()


# --------------------------------------------------------------------------- qrels

QRELS_FAULTS = {
    "too-few-columns": ("q1 0 d3", "expected 4 whitespace-separated columns"),
    "too-many-columns": ("q1 0 d3 1 x", "found 5"),
    "relevance-not-an-integer": ("q1 0 d3 high", "relevance 'high' is not an integer"),
}


@pytest.mark.parametrize(("bad_line", "message"), QRELS_FAULTS.values(), ids=QRELS_FAULTS.keys())
def test_qrels_refused(tmp_path: Path, bad_line: str, message: str) -> None:
    path = write(tmp_path, "q.txt", f"q1 0 d1 1\nq1 0 d2 0\n{bad_line}\nq1 0 d4 1\n")
    fails_at(read_qrels, path, 3, message)


def test_qrels_empty_and_not_utf8_refused(tmp_path: Path) -> None:
    fails_at(read_qrels, write(tmp_path, "e.txt", ""), None, "has no data lines")
    path = write(tmp_path, "l.txt", b"q1 0 d1 1\nq\xe9 0 d2 1\n")
    fails_at(read_qrels, path, 2, "the byte at offset 11 (0xe9) is not valid UTF-8")


def test_qrels_variants_read_as_the_plain_file(tmp_path: Path, caplog) -> None:
    expected = read_qrels(write(tmp_path, "plain.txt", QRELS))
    variants = {
        "crlf-q0.txt": QRELS.replace("\n", "\r\n").replace(" 0 ", " Q0 ").encode(),
        "bom-tabs.txt": b"\xef\xbb\xbf" + QRELS.replace(" ", "\t").encode(),
        "gzip": gzip.compress(QRELS.encode()),
    }
    with caplog.at_level(logging.INFO):
        for name, data in variants.items():
            pd.testing.assert_frame_equal(read_qrels(write(tmp_path, name, data)), expected)
    assert warnings(caplog) == []


def test_qrels_duplicates_keep_the_last_judgement_and_are_counted(tmp_path, caplog) -> None:
    path = write(tmp_path, "d.txt", "q1 0 a 0\nq1 0 b 1\nq1 0 a 2\nq1 0 b 1\nq2 0 a 1\n")
    with caplog.at_level(logging.INFO):
        qrels, report = read_qrels_with_report(path)
    assert qrels.values.tolist() == [["q1", "a", 2], ["q1", "b", 1], ["q2", "a", 1]]
    assert (report.rows, report.kept, report.count("duplicate_judgements")) == (5, 3, 2)
    assert warnings(caplog) == [
        f"{path}: dropped 2 duplicate (query_id, doc_id) judgements; each pair keeps its last "
        "one (pairs with conflicting labels: 1; first dropped: query_id 'q1' doc_id 'a' "
        "relevance 0)"
    ]


def test_paper_dl19_qrels_read_without_findings(shared_data: Path) -> None:
    qrels, report = read_qrels_with_report(shared_data / "trec-dl/qrels.dl19-passage.txt")
    assert (report.rows, report.queries, report.findings) == (9_260, 43, ())


# --------------------------------------------------------------------------- topics

TOPIC_FAULTS = {
    "no-tab": ("3 no tab here", 3, "expected 2 tab-separated columns (query_id text), found 1"),
    "two-tabs": ("3\ttext\tmore", 3, "found 3"),
    "empty-query-id": ("\ttext", 3, "query_id '' is empty"),
    "space-in-query-id": ("q 3\ttext", 3, "query_id 'q 3' is empty or has whitespace"),
    "same-id-other-text": (
        "q1\tanother text",
        3,
        "query_id 'q1' already has the text 'one' (line 1), here 'another text'",
    ),
}


@pytest.mark.parametrize(
    ("bad_line", "line", "message"), TOPIC_FAULTS.values(), ids=TOPIC_FAULTS.keys()
)
def test_topics_refused(tmp_path: Path, bad_line: str, line: int, message: str) -> None:
    path = write(tmp_path, "t.tsv", f"q1\tone\n\n{bad_line}\n")
    fails_at(read_topics, path, line, message)


def test_topics_empty_and_not_utf8_refused(tmp_path: Path) -> None:
    fails_at(read_topics, write(tmp_path, "e.tsv", "\n\n"), None, "has no data lines")
    path = write(tmp_path, "l.tsv", "q1\tone\nq2\tcaf\xe9\n".encode("latin-1"))
    fails_at(read_topics, path, 2, "the byte at offset 13 (0xe9) is not valid UTF-8")


def test_topics_variants_read_as_the_plain_file(tmp_path: Path, caplog) -> None:
    expected = read_topics(write(tmp_path, "plain.tsv", TOPICS))
    variants = {
        "crlf.tsv": TOPICS.replace("\n", "\r\n").encode(),
        "bom.tsv": b"\xef\xbb\xbf" + TOPICS.encode(),
        "gzip": gzip.compress(TOPICS.encode()),
        "blank-lines.tsv": ("\n" + TOPICS.replace("\n", "\n\n")).encode(),
    }
    with caplog.at_level(logging.INFO):
        for name, data in variants.items():
            pd.testing.assert_frame_equal(read_topics(write(tmp_path, name, data)), expected)
    assert warnings(caplog) == []


def test_topics_repeats_are_dropped_and_empty_texts_kept_and_counted(tmp_path, caplog) -> None:
    path = write(tmp_path, "t.tsv", "q1\tone\nq2\t\nq1\tone\nq3\t  \nq1\tone\n")
    with caplog.at_level(logging.INFO):
        topics, report = read_topics_with_report(path)
    assert topics.values.tolist() == [["q1", "one"], ["q2", ""], ["q3", "  "]]
    assert (report.rows, report.kept) == (5, 3)
    assert (report.count("duplicate_topics"), report.count("empty_texts")) == (2, 2)
    assert warnings(caplog) == [
        f"{path}: dropped 2 repeated lines of queries already read with the same text "
        "(first: query_id 'q1')",
        f"{path}: 2 queries have an empty text and are kept, so a model sees only the passage "
        "for them (first: query_id 'q2')",
    ]


def test_paper_dl20_topics_with_crlf_line_ends(shared_data: Path) -> None:
    topics, report = read_topics_with_report(shared_data / "trec-dl/topics.dl20.txt")
    assert (report.rows, report.queries, report.findings) == (200, 200, ())
    assert not topics["text"].str.contains("\r").any()
    assert topics.iloc[0].tolist() == ["1030303", "who is aziz hashim"]


def test_errors_are_value_errors_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "x.run", "q1 Q0 d1 one 1 t\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:1: rank 'one' is not an integer")):
        read_run(path)
