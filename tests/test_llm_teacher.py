"""Teacher generation with an open LLM: window, parsing, prompts (checked against what
rank_llm 0.25.7 itself produced, tests/data/rank_llm_reference.json, made by
tests/data/make_rank_llm_reference.py), resuming, and a tiny random LM end to end."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import pytest

from rank_distillm.data import trec as trec_io
from rank_distillm.data.texts import MappingTexts
from rank_distillm.teachers.llm.backends import Sampling
from rank_distillm.teachers.llm.generate import GenerationSettings, generate_teacher_run
from rank_distillm.teachers.llm.parsing import RepairCounts, identifiers, parse_permutation
from rank_distillm.teachers.llm.prompts import (
    PromptBuilder,
    default_passage_words,
    listwise_messages,
    passage_content,
)
from rank_distillm.teachers.llm.tiny_lm import byte_tokenizer
from rank_distillm.teachers.llm.window import apply_order, window_spans

REFERENCE = json.loads(
    (Path(__file__).parent / "data" / "rank_llm_reference.json").read_text(encoding="utf-8")
)


# --------------------------------------------------------------------------- window


@pytest.mark.parametrize(
    ("n", "window", "stride", "spans"),
    [
        (100, 20, 10, [(80 - 10 * k, 100 - 10 * k) for k in range(9)]),
        (30, 20, 10, [(10, 30), (0, 20)]),
        (25, 20, 10, [(5, 25), (0, 15)]),
        (15, 20, 10, [(0, 15)]),
        (10, 20, 10, [(0, 10)]),
        (7, 3, 2, [(4, 7), (2, 5), (0, 3)]),
        (40, 20, 20, [(20, 40), (0, 20)]),
        (0, 20, 10, []),
    ],
)
def test_window_spans_by_hand(n: int, window: int, stride: int, spans: list) -> None:
    assert window_spans(n, window, stride) == spans


@pytest.mark.parametrize("case", REFERENCE["windows"], ids=lambda c: f"{c['n']}-{c['window']}")
def test_window_spans_match_rank_llm(case: dict) -> None:
    expected = [tuple(span) for span in case["spans"]]
    assert window_spans(case["n"], case["window"], case["stride"]) == expected


def test_window_rejects_bad_stride() -> None:
    with pytest.raises(ValueError, match="stride"):
        window_spans(100, 20, 21)
    with pytest.raises(ValueError, match="stride"):
        window_spans(100, 20, 0)


def test_apply_order_moves_only_the_window() -> None:
    items = list("abcdef")
    apply_order(items, 2, [2, 0, 1])
    assert items == list("abecdf")
    with pytest.raises(ValueError, match="permutation"):
        apply_order(items, 0, [0, 0, 1])


# --------------------------------------------------------------------------- parsing


def test_parse_exact_answer() -> None:
    order, counts = parse_permutation("[2] > [3] > [1]", 3)
    assert order == [1, 2, 0]
    assert counts.as_dict() == RepairCounts(windows=1, exact=1).as_dict()


def test_parse_repairs_repeats_inventions_and_omissions() -> None:
    # 2 first, 2 again (repeat), 9 and 0 (invented), 1; 3 and 4 missing -> appended in order.
    order, counts = parse_permutation("[2] > [2] > [9] > [1] > [0]", 4)
    assert order == [1, 0, 2, 3]
    assert counts.repeated_ids == 1 and counts.repeated == 1
    assert counts.invented_ids == 2 and counts.invented == 1
    assert counts.missing_ids == 2 and counts.missing == 1
    assert counts.exact == 0 and counts.off_format == 0 and counts.no_identifiers == 0


def test_parse_answer_without_identifiers_keeps_the_order() -> None:
    order, counts = parse_permutation("I cannot rank these passages.", 3)
    assert order == [0, 1, 2]
    assert counts.no_identifiers == 1 and counts.missing_ids == 3 and counts.off_format == 1


def test_parse_counts_format_separately_from_content() -> None:
    order, counts = parse_permutation("Ranking: [3]>[1]>[2]", 3)
    assert order == [2, 0, 1]
    assert counts.exact == 1 and counts.off_format == 1


def test_parse_reads_look_alike_digits_and_skips_thinking() -> None:
    assert identifiers("[¹] > [２] > [③]") == [1, 2, 3]
    assert identifiers("<think>maybe [5]</think>[2] > [1]") == [2, 1]
    # rank_llm would fail on "⑴" (isdigit, but int() cannot read it) and keep the order.
    assert identifiers("⑴ [2]") == [2]


@pytest.mark.parametrize("case", REFERENCE["permutations"], ids=lambda c: repr(c["answer"]))
def test_parse_matches_rank_llm(case: dict) -> None:
    length = len(REFERENCE["prompts"][0]["passages"])
    order, _ = parse_permutation(case["answer"], length)
    assert order == case["order"]


def test_repair_counts_add_up_and_read_well() -> None:
    total = RepairCounts.total(
        [parse_permutation("[1] > [2]", 2)[1], parse_permutation("[1] > [1]", 2)[1]]
    )
    assert total.windows == 2 and total.exact == 1 and total.repeated_ids == 1
    assert total.summary().startswith("2 windows: 1 exact, 0 off-format, 1 with repeated ids")


# --------------------------------------------------------------------------- prompts


def test_passage_content_fixes_cuts_and_defuses_numbers() -> None:
    assert passage_content("  Donâ€™t  see [12] now  ", 3) == "Don't see (12)"
    assert default_passage_words(20) == 300 and default_passage_words(10) == 600


def test_rank_zephyr_messages_by_hand() -> None:
    messages = listwise_messages("rank_zephyr", "q [1]", ["first", "second"], 300)
    assert messages[0] == {
        "role": "system",
        "content": "You are RankLLM, an intelligent assistant that can rank passages based on "
        "their relevancy to the query",
    }
    user = messages[1]["content"]
    assert user.startswith(
        "I will provide you with 2 passages, each indicated by a numerical identifier []. "
        "Rank the passages based on their relevance to the search query: q (1).\n"
        "[1] first\n[2] second\nSearch Query: q (1).\nRank the 2 passages above"
    )
    assert user.endswith("do not say any word or explain.")


def test_rank_gpt_messages_alternate_turns() -> None:
    messages = listwise_messages("rank_gpt", "q", ["first", "second"], 300)
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert messages[3:5] == [
        {"role": "user", "content": "[1] first"},
        {"role": "assistant", "content": "Received passage [1]."},
    ]


@pytest.mark.parametrize(
    "case", REFERENCE["prompts"], ids=lambda c: f"{c['prompt_format']}-{c['context_size']}"
)
def test_prompts_match_rank_llm(case: dict) -> None:
    builder = PromptBuilder(byte_tokenizer(), case["prompt_format"], case["context_size"])
    answer_tokens = builder.answer_tokens(len(case["passages"]))
    assert answer_tokens == case["answer_tokens"]
    prompt = builder.build(case["query"], case["passages"], answer_tokens)
    assert prompt.text == case["prompt"]
    assert len(prompt.token_ids) == case["tokens"]
    assert len(prompt.token_ids) <= case["context_size"] - answer_tokens


def test_prompt_that_cannot_fit_is_an_error() -> None:
    builder = PromptBuilder(byte_tokenizer(), "rank_zephyr", context_size=200)
    with pytest.raises(ValueError, match="context_size 200"):
        builder.build("query", ["a passage"] * 4, 10)


# --------------------------------------------------------------------------- settings


def test_settings_from_config_names_unknown_and_missing_keys() -> None:
    with pytest.raises(ValueError, match=r"teachers.x.generate: unknown keys \['windw'\]"):
        GenerationSettings.from_config({"model": "m", "windw": 20}, "teachers.x.generate")
    with pytest.raises(ValueError, match="'model'"):
        GenerationSettings.from_config({"window": 20})
    with pytest.raises(ValueError, match="stride"):
        GenerationSettings(model="m", window=10, stride=11)
    settings = GenerationSettings.from_config({"model": "m", "batch_size": 4})
    assert settings.window == 20 and settings.stride == 10 and settings.depth == 100
    assert "batch_size" not in settings.fingerprint()


# --------------------------------------------------------------------------- generation

TOPICS = ["apple", "river", "piano", "comet", "tiger", "cedar"]


def write_first_stage(path: Path, depth: int) -> MappingTexts:
    """Six queries with ``depth`` candidates each (``<q>-d<k>``); their texts."""
    lines, queries, docs = [], {}, {}
    for q, topic in enumerate(TOPICS, start=1):
        queries[f"q{q}"] = f"facts about the {topic}"
        for k in range(1, depth + 1):
            doc_id = f"q{q}-d{k}"
            docs[doc_id] = f"passage {k} on the {topic}, part {k % 3}"
            lines.append(f"q{q} Q0 {doc_id} {k} {100 - k} bm25\n")
    path.write_text("".join(lines))
    return MappingTexts(queries, docs)


class ScriptedGenerator:
    """A stand-in model that answers every window with ``answer(window_length)``, counts the
    prompts it saw and can fail after some calls (a crash in the middle of a job)."""

    def __init__(self, answer: Callable[[int], str], fail_after_calls: int | None = None) -> None:
        self.tokenizer = byte_tokenizer()
        self.answer = answer
        self.fail_after_calls = fail_after_calls
        self.calls = 0
        self.prompts: list[str] = []

    def generate(self, prompts: Sequence[list[int]], sampling: Sampling) -> list[str]:
        if self.fail_after_calls is not None and self.calls >= self.fail_after_calls:
            raise RuntimeError("injected failure")
        self.calls += 1
        texts = [self.tokenizer.decode(ids) for ids in prompts]
        self.prompts.extend(texts)
        lengths = [text.count("\n[") for text in texts]  # "[k] passage" lines in the prompt
        return [self.answer(length) for length in lengths]


def reverse(length: int) -> str:
    return " > ".join(f"[{k}]" for k in range(length, 0, -1))


def test_reversing_teacher_gives_the_hand_computed_run(tmp_path: Path, caplog) -> None:
    # 5 candidates a..e (d1..d5), window 3, stride 2: windows [2,5) then [0,3).
    # Reversing [2,5): d1 d2 d5 d4 d3; reversing [0,3): d5 d2 d1 d4 d3.
    texts = write_first_stage(tmp_path / "bm25.run", depth=5)
    settings = GenerationSettings(model="scripted", window=3, stride=2, depth=5, batch_size=4)
    generator = ScriptedGenerator(reverse)
    with caplog.at_level(logging.INFO, logger="rank_distillm"):
        stats = generate_teacher_run(
            tmp_path / "bm25.run",
            texts,
            tmp_path / "teacher.run",
            settings,
            num_queries=None,
            tag="reverse",
            out_stats=tmp_path / "teacher.json",
            generator=generator,
        )
    lines = (tmp_path / "teacher.run").read_text().splitlines()
    assert lines[:5] == [
        "q1 Q0 q1-d5 1 5.0 reverse",
        "q1 Q0 q1-d2 2 4.0 reverse",
        "q1 Q0 q1-d1 3 3.0 reverse",
        "q1 Q0 q1-d4 4 2.0 reverse",
        "q1 Q0 q1-d3 5 1.0 reverse",
    ]
    assert len(lines) == 6 * 5
    # Two steps (windows) of six queries each, six queries per block of four -> 4 calls.
    assert generator.calls == 4 and len(generator.prompts) == 12
    assert stats["repairs"] == RepairCounts(windows=12, exact=12).as_dict()
    assert json.loads((tmp_path / "teacher.json").read_text())["repairs"]["exact"] == 12
    assert "12 windows: 12 exact" in caplog.text
    assert not (tmp_path / "teacher.run.partial.jsonl").exists()


def test_repairs_are_counted_in_stats_and_log(tmp_path: Path, caplog) -> None:
    texts = write_first_stage(tmp_path / "bm25.run", depth=3)
    settings = GenerationSettings(model="scripted", window=3, stride=2, depth=3)
    generator = ScriptedGenerator(lambda length: "[3] > [3] > [7]")
    with caplog.at_level(logging.INFO, logger="rank_distillm"):
        stats = generate_teacher_run(
            tmp_path / "bm25.run",
            texts,
            tmp_path / "teacher.run",
            settings,
            num_queries=4,
            generator=generator,
        )
    run = trec_io.read_run(tmp_path / "teacher.run")
    assert run["query_id"].nunique() == 4 and len(run) == 12
    # [3] first, then the missing 1 and 2 in their previous order.
    assert (
        run.groupby("query_id")["doc_id"].apply(lambda s: [d[-2:] for d in s]).tolist()
        == [["d3", "d1", "d2"]] * 4
    )
    assert stats["repairs"] == {
        "windows": 4,
        "exact": 0,
        "off_format": 0,
        "no_identifiers": 0,
        "repeated": 4,
        "repeated_ids": 4,
        "invented": 4,
        "invented_ids": 4,
        "missing": 4,
        "missing_ids": 8,
    }
    assert "4 with repeated ids (4 dropped), 4 with invented ids (4 dropped), " in caplog.text
    assert "4 with missing ids (8 appended in previous order)" in caplog.text


def test_candidates_read_in_chunks_are_the_sampled_top_depth(tmp_path: Path) -> None:
    from rank_distillm.data.query_sample import sample_query_ids
    from rank_distillm.teachers.llm.generate import select_candidates

    texts = write_first_stage(tmp_path / "bm25.run", depth=5)
    whole = select_candidates(tmp_path / "bm25.run", texts, 3, num_queries=4, seed=7)
    # Chunks of 4 lines split every query of 5 lines; the result must not change.
    chunked = select_candidates(tmp_path / "bm25.run", texts, 3, 4, 7, chunk_lines=4)
    assert chunked == whole
    sampled = sample_query_ids([f"q{q}" for q in range(1, 7)], 4, 7)
    assert [query.query_id for query in whole] == sorted(sampled, key=lambda q: int(q[1:]))
    assert whole[0].doc_ids == tuple(f"{whole[0].query_id}-d{k}" for k in (1, 2, 3))
    assert whole[0].text == texts.queries[whole[0].query_id]


def test_windows_cut_to_fit_the_context_are_counted(tmp_path: Path, caplog) -> None:
    texts = write_first_stage(tmp_path / "bm25.run", depth=3)
    texts.docs = {doc_id: text + " and more" * 40 for doc_id, text in texts.docs.items()}
    settings = GenerationSettings(model="scripted", window=3, stride=2, depth=3, context_size=900)
    with caplog.at_level(logging.INFO, logger="rank_distillm"):
        stats = generate_teacher_run(
            tmp_path / "bm25.run",
            texts,
            tmp_path / "teacher.run",
            settings,
            generator=ScriptedGenerator(reverse),
        )
    assert stats["windows_shortened_to_fit"] == 6
    assert "6 of 6 windows had their passages cut below the word budget" in caplog.text


def test_missing_texts_are_errors(tmp_path: Path) -> None:
    texts = write_first_stage(tmp_path / "bm25.run", depth=3)
    settings = GenerationSettings(model="scripted", window=3, stride=2, depth=3)
    without_query = MappingTexts({k: v for k, v in texts.queries.items() if k != "q2"}, texts.docs)
    with pytest.raises(KeyError, match="1 query ids have no text"):
        generate_teacher_run(
            tmp_path / "bm25.run",
            without_query,
            tmp_path / "teacher.run",
            settings,
            generator=ScriptedGenerator(reverse),
        )
    without_passage = MappingTexts(
        texts.queries, {k: v for k, v in texts.docs.items() if k != "q1-d2"}
    )
    with pytest.raises(KeyError, match=r"1 passage ids have no text \(first: \['q1-d2'\]\)"):
        generate_teacher_run(
            tmp_path / "bm25.run",
            without_passage,
            tmp_path / "teacher2.run",
            settings,
            generator=ScriptedGenerator(reverse),
        )


def test_resume_after_a_crash_redoes_nothing(tmp_path: Path, caplog) -> None:
    texts = write_first_stage(tmp_path / "bm25.run", depth=5)
    settings = GenerationSettings(model="scripted", window=3, stride=2, depth=5, batch_size=2)

    def run(out: Path, generator: ScriptedGenerator) -> dict:
        return generate_teacher_run(
            tmp_path / "bm25.run", texts, out, settings, generator=generator
        )

    uninterrupted = tmp_path / "straight" / "teacher.run"
    run(uninterrupted, ScriptedGenerator(reverse))

    out = tmp_path / "resumed" / "teacher.run"
    # Each block of two queries takes two calls (two windows); fail in the second block.
    with pytest.raises(RuntimeError, match="injected failure"):
        run(out, ScriptedGenerator(reverse, fail_after_calls=3))
    partial = out.with_name("teacher.run.partial.jsonl")
    assert len(partial.read_text().splitlines()) == 1 + 2  # header + the first block
    assert not out.exists()
    # A kill in the middle of an append leaves half a line: it is dropped on restart.
    with open(partial, "a") as handle:
        handle.write('{"query_id": "q3", "doc_')

    generator = ScriptedGenerator(reverse)
    with caplog.at_level(logging.INFO, logger="rank_distillm"):
        stats = run(out, generator)
    assert "dropping a half-written last line" in caplog.text
    assert stats["resumed_queries"] == 2 and stats["generated_queries"] == 4
    asked = {line.split("about the ")[1].split(".")[0] for line in generator.prompts}
    assert asked == set(TOPICS[2:])  # q1 and q2 were not asked again
    assert out.read_text() == uninterrupted.read_text()
    assert stats["repairs"]["windows"] == 12  # the resumed queries' counts are kept


def test_partial_file_from_other_settings_is_refused(tmp_path: Path) -> None:
    texts = write_first_stage(tmp_path / "bm25.run", depth=5)
    settings = GenerationSettings(model="scripted", window=3, stride=2, depth=5, batch_size=2)
    with pytest.raises(RuntimeError):
        generate_teacher_run(
            tmp_path / "bm25.run",
            texts,
            tmp_path / "teacher.run",
            settings,
            generator=ScriptedGenerator(reverse, fail_after_calls=2),
        )
    other = GenerationSettings(model="scripted", window=3, stride=1, depth=5)
    with pytest.raises(ValueError, match=r"other settings or candidates .*delete the file"):
        generate_teacher_run(
            tmp_path / "bm25.run",
            texts,
            tmp_path / "teacher.run",
            other,
            generator=ScriptedGenerator(reverse),
        )


# --------------------------------------------------------------------------- tiny LM


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rank_distillm.teachers.llm.tiny_lm import build_tiny_lm

    out = tmp_path_factory.mktemp("tiny-lm")
    build_tiny_lm(out)
    return out


def test_byte_tokenizer_round_trips_any_text() -> None:
    tokenizer = byte_tokenizer()
    text = "Donâ€™t [12] > ①  naïve\ttext"
    ids = tokenizer.encode(text)
    assert ids[0] == tokenizer.bos_token_id and len(ids) == 1 + len(text.encode("utf-8"))
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert chat == "<|user|>\nhi</s>\n<|assistant|>\n"


KILL_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import torch
    from rank_distillm.teachers.llm.backends import TransformersGenerator
    from rank_distillm.teachers.llm.generate import GenerationSettings, generate_teacher_run
    from rank_distillm.data.texts import MappingTexts

    torch.set_num_threads(1)
    data = json.loads(Path(sys.argv[1]).read_text())

    class Slow(TransformersGenerator):
        # Slow enough that the test can kill the job between two blocks.
        def generate(self, prompts, sampling):
            answers = super().generate(prompts, sampling)
            time.sleep(1.0)
            return answers

    settings = GenerationSettings(**data["settings"])
    generate_teacher_run(
        Path(data["first_stage"]), MappingTexts(data["queries"], data["docs"]),
        Path(data["out"]), settings, generator=Slow(settings.model),
    )
    """
)


def test_tiny_lm_end_to_end_and_resume_after_kill(
    tmp_path: Path, tiny_lm: Path, torch_single_thread: None, caplog
) -> None:
    """The real path (transformers, the tiny LM's chat template and tokenizer): a job killed
    with SIGKILL resumes with the queries not yet done and writes the same run as a job that
    was never interrupted."""
    from rank_distillm.teachers.llm.backends import TransformersGenerator

    texts = write_first_stage(tmp_path / "bm25.run", depth=12)
    settings = GenerationSettings(
        model=str(tiny_lm), window=6, stride=3, depth=12, batch_size=1, context_size=2048
    )

    straight = tmp_path / "straight.run"
    with caplog.at_level(logging.INFO, logger="rank_distillm"):
        stats = generate_teacher_run(tmp_path / "bm25.run", texts, straight, settings)
    run = trec_io.read_run(straight)
    assert run["query_id"].unique().tolist() == list(texts.queries)
    for query_id, group in run.groupby("query_id", sort=False):
        assert sorted(group["doc_id"]) == sorted(f"{query_id}-d{k}" for k in range(1, 13))
        assert group["rank"].tolist() == list(range(1, 13))
        assert group["score"].tolist() == [float(13 - r) for r in range(1, 13)]
    repairs = RepairCounts(**stats["repairs"])
    assert repairs.windows == 6 * 3  # windows [6,12), [3,9), [0,6) per query
    assert repairs.exact + repairs.repeated + repairs.invented + repairs.missing >= repairs.windows
    assert repairs.missing_ids <= repairs.windows * 6
    assert repairs.summary() in caplog.text

    # A job killed after its first finished query, then restarted here.
    job = tmp_path / "job.json"
    out = tmp_path / "killed.run"
    job.write_text(
        json.dumps(
            {
                "settings": asdict(settings),
                "first_stage": str(tmp_path / "bm25.run"),
                "queries": texts.queries,
                "docs": texts.docs,
                "out": str(out),
            }
        )
    )
    partial = tmp_path / "killed.run.partial.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(job)],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if partial.exists() and len(partial.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the job ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    finished_before = partial.read_text().count("\n") - 1  # complete lines after the header
    assert 1 <= finished_before < len(texts.queries) and not out.exists()

    generator = TransformersGenerator(str(tiny_lm))
    calls: list[int] = []
    original = generator.generate

    def counting(prompts: Sequence[list[int]], sampling: Sampling) -> list[str]:
        calls.append(len(prompts))
        return original(prompts, sampling)

    generator.generate = counting  # type: ignore[method-assign]
    resumed = generate_teacher_run(tmp_path / "bm25.run", texts, out, settings, generator=generator)
    assert resumed["resumed_queries"] == finished_before
    assert sum(calls) == 3 * (len(texts.queries) - finished_before)  # three windows per query left
    assert out.read_text() == straight.read_text()
    assert resumed["repairs"] == stats["repairs"]


# --------------------------------------------------------------------------- shards


def test_shards_are_whole_blocks_spread_evenly() -> None:
    from rank_distillm.teachers.llm.shards import Shard, block_bounds, largest_shard

    # 10 queries in blocks of 2: blocks [0,2) [2,4) [4,6) [6,8) [8,10); 3 shards get 1, 2, 2.
    assert [block_bounds(10, 2, Shard(i, 3)) for i in (1, 2, 3)] == [(0, 2), (2, 6), (6, 10)]
    # 7 queries in blocks of 3: [0,3) [3,6) [6,7); the last block is short.
    assert [block_bounds(7, 3, Shard(i, 2)) for i in (1, 2)] == [(0, 3), (3, 7)]
    assert block_bounds(7, 3, Shard(1, 1)) == (0, 7)
    assert largest_shard(10, 2, 3) == 4 and largest_shard(10_000, 16, 32) == 320
    with pytest.raises(
        ValueError, match=r"make 3 blocks, fewer than the 4 shards: use shards <= 3"
    ):
        block_bounds(7, 3, Shard(1, 4))
    with pytest.raises(ValueError, match="shard 3 of 2"):
        Shard(3, 2)


def test_shards_cut_the_same_sample_whatever_their_number(tmp_path: Path) -> None:
    from rank_distillm.teachers.llm.generate import select_candidates
    from rank_distillm.teachers.llm.shards import Shard

    texts = write_first_stage(tmp_path / "bm25.run", depth=3)
    whole = select_candidates(tmp_path / "bm25.run", texts, 3, num_queries=5, seed=7)
    for count in (1, 2, 5):
        shards = [
            select_candidates(
                tmp_path / "bm25.run", texts, 3, 5, 7, shard=Shard(i, count), batch_size=1
            )
            for i in range(1, count + 1)
        ]
        assert [query for shard in shards for query in shard] == whole
    # Blocks of two: shard 1 of 2 is the first block, shard 2 the other two.
    two = select_candidates(tmp_path / "bm25.run", texts, 3, 5, 7, shard=Shard(1, 2), batch_size=2)
    assert two == whole[:2]


def generate_shard(
    folder: Path,
    texts: MappingTexts,
    settings: GenerationSettings,
    index: int,
    count: int,
    generator: object,
) -> dict:
    """Shard ``index`` of ``count`` of ``folder/bm25.run``, to ``folder/<index>-of-<count>.*``."""
    from rank_distillm.teachers.llm.shards import Shard

    return generate_teacher_run(
        folder / "bm25.run",
        texts,
        folder / f"{index}-of-{count}.run",
        settings,
        tag="t",
        out_stats=folder / f"{index}-of-{count}.json",
        generator=generator,
        shard=Shard(index, count),
    )


def generate_shards(
    folder: Path,
    texts: MappingTexts,
    settings: GenerationSettings,
    count: int,
    generator: Callable[[], object],
) -> list[tuple[Path, Path]]:
    """Every shard of ``count``, each with a fresh generator; their (run, stats) files."""
    for index in range(1, count + 1):
        generate_shard(folder, texts, settings, index, count, generator())
    return [
        (folder / f"{i}-of-{count}.run", folder / f"{i}-of-{count}.json")
        for i in range(1, count + 1)
    ]


def test_tiny_lm_shards_merge_into_the_unsharded_run_byte_for_byte(
    tmp_path: Path, tiny_lm: Path, torch_single_thread: None
) -> None:
    """Greedy decoding on the CPU: three shards of two-query blocks (the model pads each
    batch) merge into exactly the bytes of the one job's run."""
    from rank_distillm.teachers.llm.backends import TransformersGenerator
    from rank_distillm.teachers.llm.merge import merge_shard_runs

    texts = write_first_stage(tmp_path / "bm25.run", depth=8)
    settings = GenerationSettings(
        model=str(tiny_lm), window=5, stride=3, depth=8, batch_size=2, context_size=2048
    )
    model = TransformersGenerator(str(tiny_lm))
    one = tmp_path / "one.run"
    generate_teacher_run(tmp_path / "bm25.run", texts, one, settings, tag="t", generator=model)
    files = generate_shards(tmp_path, texts, settings, 3, lambda: model)
    assert [trec_io.read_run(run)["query_id"].nunique() for run, _ in files] == [2, 2, 2]
    merged = merge_shard_runs(
        tmp_path / "bm25.run", files, tmp_path / "merged.run", settings, None, "t"
    )
    assert (tmp_path / "merged.run").read_bytes() == one.read_bytes()
    assert merged["queries"] == 6 and merged["shards"] == 3
    assert merged["repairs"]["windows"] == 6 * 2  # windows [3,8) and [0,5) per query


def test_a_failed_shard_resumes_alone_and_the_merge_equals_one_job(tmp_path: Path) -> None:
    from rank_distillm.teachers.llm.merge import merge_shard_runs

    texts = write_first_stage(tmp_path / "bm25.run", depth=5)
    # Blocks of one query, two windows each: shard 1 is q1-q3, shard 2 is q4-q6.
    settings = GenerationSettings(model="scripted", window=3, stride=2, depth=5, batch_size=1)
    one = tmp_path / "one.run"
    generate_teacher_run(
        tmp_path / "bm25.run", texts, one, settings, tag="t", generator=ScriptedGenerator(reverse)
    )
    (run_1, stats_1), (run_2, stats_2) = files = [
        (tmp_path / f"{i}-of-2.run", tmp_path / f"{i}-of-2.json") for i in (1, 2)
    ]

    def shard(index: int, generator: ScriptedGenerator) -> dict:
        return generate_shard(tmp_path, texts, settings, index, 2, generator)

    shard(1, ScriptedGenerator(reverse))
    finished = run_1.read_bytes()
    with pytest.raises(RuntimeError, match="injected failure"):
        shard(2, ScriptedGenerator(reverse, fail_after_calls=3))  # q4 done, q5 half
    assert run_1.read_bytes() == finished and not run_2.exists()
    with pytest.raises(ValueError, match=r"shard 2 of 2 \(.*2-of-2.json\): no readable stat"):
        merge_shard_runs(tmp_path / "bm25.run", files, tmp_path / "merged.run", settings, None, "t")
    assert not (tmp_path / "merged.run").exists()

    generator = ScriptedGenerator(reverse)
    resumed = shard(2, generator)
    assert resumed["resumed_queries"] == 1 and resumed["generated_queries"] == 2
    asked = {line.split("about the ")[1].split(".")[0] for line in generator.prompts}
    assert asked == set(TOPICS[4:])  # only q5 and q6, the shard's queries not done
    assert resumed["shard"] == {"index": 2, "count": 2}
    merged = merge_shard_runs(
        tmp_path / "bm25.run",
        files,
        tmp_path / "merged.run",
        settings,
        None,
        "t",
        tmp_path / "m.json",
    )
    assert (tmp_path / "merged.run").read_bytes() == one.read_bytes()
    assert merged["queries"] == 6 and merged["resumed_queries"] == 1
    assert merged["generated_queries"] == 5 and merged["passages"] == 30
    assert merged["repairs"] == RepairCounts(windows=12, exact=12).as_dict()
    assert json.loads((tmp_path / "m.json").read_text())["shards"] == 2


@pytest.mark.parametrize(
    ("change", "differs"),
    [
        ({"model": "another"}, "settings.model"),
        ({"prompt_format": "rank_gpt"}, "settings.prompt_format"),
        ({"window": 4}, "settings.window"),
        ({"depth": 4}, "settings.depth"),
        ({"batch_size": 2}, "'batch_size'"),  # cut another partition
    ],
)
def test_merge_refuses_a_shard_made_with_other_settings(
    tmp_path: Path, change: dict, differs: str
) -> None:
    from rank_distillm.teachers.llm.merge import merge_shard_runs

    texts = write_first_stage(tmp_path / "bm25.run", depth=5)
    settings = GenerationSettings(model="scripted", window=3, stride=2, depth=5, batch_size=1)
    files = generate_shards(tmp_path, texts, settings, 2, lambda: ScriptedGenerator(reverse))
    # Shard 2 made again under other settings (as after a config change between its jobs).
    other = GenerationSettings(**{**asdict(settings), **change})
    (tmp_path / "other").mkdir()
    write_first_stage(tmp_path / "other" / "bm25.run", depth=5)
    redone = generate_shards(
        tmp_path / "other", texts, other, 2, lambda: ScriptedGenerator(reverse)
    )
    for made, kept in zip(redone[1], files[1], strict=True):
        made.replace(kept)
    with pytest.raises(ValueError, match="shard 2 of 2") as error:
        merge_shard_runs(tmp_path / "bm25.run", files, tmp_path / "merged.run", settings, None, "t")
    assert "2-of-2.json) was generated with other settings (differs in [" in str(error.value)
    assert differs in str(error.value)
    assert not (tmp_path / "merged.run").exists()


def test_merge_refuses_an_incomplete_shard_naming_it(tmp_path: Path) -> None:
    from rank_distillm.teachers.llm.merge import merge_shard_runs

    texts = write_first_stage(tmp_path / "bm25.run", depth=5)
    settings = GenerationSettings(model="scripted", window=3, stride=2, depth=5, batch_size=1)
    files = generate_shards(tmp_path, texts, settings, 3, lambda: ScriptedGenerator(reverse))
    run_2 = files[1][0]
    lines = run_2.read_text().splitlines(keepends=True)
    run_2.write_text("".join(lines[:5]))  # q3 only: q4 is lost
    with pytest.raises(
        ValueError,
        match=r"shard 2 of 3 \(.*2-of-3.run\) is incomplete or not this shard's: it ranks 1 "
        r"queries, the shard has 2; missing \['q4'\]",
    ):
        merge_shard_runs(tmp_path / "bm25.run", files, tmp_path / "merged.run", settings, None, "t")
    run_2.write_text("".join(lines[:9]))  # q4 lost one passage
    with pytest.raises(ValueError, match="shard 2 of 3 .*query q4 does not rank exactly its 5"):
        merge_shard_runs(tmp_path / "bm25.run", files, tmp_path / "merged.run", settings, None, "t")
    assert not (tmp_path / "merged.run").exists()
