"""Record what castorini's rank_llm itself makes of fixed examples, for test_llm_teacher.py.

rank_llm cannot be a dependency (see docs/teacher-generation.md: it requires vLLM, which pins
another transformers), so its behaviour is recorded once, in a throwaway environment:

    python3 -m venv /tmp/rankllm && . /tmp/rankllm/bin/activate
    pip install rank-llm==0.25.7 torch==2.13.0 && pip uninstall -y torchvision
    PYTHONPATH=src python tests/data/make_rank_llm_reference.py tests/data/rank_llm_reference.json

(torchvision from PyPI does not load next to the CPU torch build; rank_llm's FiD re-rankers
do not import under transformers 5 and are stubbed below: they are not used here.)

The prompts use the tiny LM's byte tokenizer and chat template (rank_distillm.teachers.llm
.tiny_lm), so no hub model is needed; ``create_prompt`` is rank_llm's own, including its
passage truncation and the loop that shrinks passages until the prompt fits the context.
"""

from __future__ import annotations

import json
import sys
import types
from importlib.metadata import version
from importlib.resources import files

_fid = types.ModuleType("rank_llm.rerank.listwise.rank_fid")
_fid.RankFiDDistill = _fid.RankFiDScore = type("Unavailable", (), {})
sys.modules["rank_llm.rerank.listwise.rank_fid"] = _fid

from rank_llm.data import Candidate, Query, Request, Result  # noqa: E402
from rank_llm.rerank.listwise.rank_listwise_os_llm import RankListwiseOSLLM  # noqa: E402
from rank_llm.rerank.rankllm import RankLLM  # noqa: E402

from rank_distillm.teachers.llm.tiny_lm import byte_tokenizer  # noqa: E402

TEMPLATES = files("rank_llm.rerank.prompt_templates")

QUERY = "what does [2] mean in a citation"
PASSAGES = [
    "A citation such as [2] points to the second entry of the reference list.",
    "  Donâ€™t   confuse “footnotes” with endnotes; see [12] and [3].  ",
    "Short passage.",
    " ".join(f"word{i}" for i in range(60)),
]
ANSWERS = [
    "[2] > [1] > [3] > [4]",
    "[4] > [2]",
    "[2] > [2] > [9] > [1] > [0] > [3]",
    "I cannot rank these passages.",
    "</think>[3] > [1] thinking [4]",
    "①②",
    "",
]


def make_ranker(template: str, context_size: int) -> RankListwiseOSLLM:
    ranker = RankListwiseOSLLM.__new__(RankListwiseOSLLM)
    RankLLM.__init__(ranker, "tiny", context_size, prompt_template_path=TEMPLATES / template)
    ranker._tokenizer = byte_tokenizer()
    ranker._use_alpha = False
    ranker._window_size = 20
    ranker._stride = 10
    ranker._is_thinking = False
    ranker._output_token_estimate = None
    return ranker


def result(passages: list[str]) -> Result:
    candidates = [
        Candidate(docid=f"d{i}", score=float(-i), doc={"text": text})
        for i, text in enumerate(passages)
    ]
    return Result(query=Query(text=QUERY, qid="q"), candidates=candidates)


def prompts() -> list[dict]:
    cases = []
    # The smaller contexts force rank_llm's loop that shortens passages until the prompt fits
    # (a context too small for even one word per passage makes that loop run forever).
    formats = [
        ("rank_zephyr_template.yaml", "rank_zephyr", (4096, 1100)),
        ("rank_gpt_template.yaml", "rank_gpt", (4096, 1300)),
    ]
    for template, name, context_sizes in formats:
        for context_size in context_sizes:
            ranker = make_ranker(template, context_size)
            prompt, tokens = ranker.create_prompt(result(PASSAGES), 0, len(PASSAGES))
            cases.append(
                {
                    "prompt_format": name,
                    "context_size": context_size,
                    "query": QUERY,
                    "passages": PASSAGES,
                    "prompt": prompt,
                    "tokens": tokens,
                    "answer_tokens": ranker.num_output_tokens(len(PASSAGES)),
                }
            )
    return cases


def permutations() -> list[dict]:
    ranker = make_ranker("rank_zephyr_template.yaml", 4096)
    cases = []
    for answer in ANSWERS:
        out = ranker.receive_permutation(result(PASSAGES), answer, 0, len(PASSAGES))
        cases.append({"answer": answer, "order": [int(c.docid[1:]) for c in out.candidates]})
    return cases


class SpanRecorder(RankListwiseOSLLM):
    """rank_llm's sliding window, recording the windows instead of ranking them."""

    def permutation_pipeline(self, result, rank_start, rank_end, *args, **kwargs):
        self.spans.append([rank_start, rank_end])
        return result


def windows() -> list[dict]:
    cases = []
    for n, window, stride in [
        (100, 20, 10),
        (30, 20, 10),
        (25, 20, 10),
        (15, 20, 10),
        (7, 3, 2),
        (40, 20, 20),
    ]:
        recorder = SpanRecorder.__new__(SpanRecorder)
        recorder._window_size, recorder._stride, recorder.spans = window, stride, []
        request = Request(query=Query(text="q", qid="q"), candidates=result(["x"] * n).candidates)
        # top_k_retrieve = n: the window is cut to the list length, as the Reranker API does.
        recorder.sliding_windows(request, 0, n, top_k_retrieve=n)
        cases.append({"n": n, "window": window, "stride": stride, "spans": recorder.spans})
    return cases


if __name__ == "__main__":
    reference = {
        "rank_llm_version": version("rank_llm"),
        "prompts": prompts(),
        "permutations": permutations(),
        "windows": windows(),
    }
    with open(sys.argv[1], "w", encoding="utf-8") as handle:
        json.dump(reference, handle, indent=1, ensure_ascii=False)
        handle.write("\n")
