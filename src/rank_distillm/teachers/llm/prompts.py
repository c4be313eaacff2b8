"""Listwise prompts in the RankZephyr and RankGPT formats, as castorini's rank_llm builds them.

The text is rank_llm 0.25.7's (``rank_llm/rerank/prompt_templates/rank_zephyr_template.yaml``
and ``rank_gpt_template.yaml``; the assembly follows ``SingleTurnListwiseInferenceHandler``,
``MultiTurnListwiseInferenceHandler``, ``BaseInferenceHandler._convert_doc_to_prompt_content``
and ``RankListwiseOSLLM.create_prompt``). tests/test_llm_teacher.py holds prompts that
rank_llm 0.25.7 itself produced, so a drift shows up as a failing test.

Passages are truncated the way rank_llm does it: to ``300 * 20 / window`` whitespace
separated *words* (not tokens); if the chat-formatted prompt then still exceeds the context
minus the answer's tokens, the word budget shrinks until it fits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ftfy import fix_text

PROMPT_FORMATS = ("rank_zephyr", "rank_gpt")

Messages = list[dict[str, str]]

RANK_ZEPHYR_SYSTEM = (
    "You are RankLLM, an intelligent assistant that can rank passages based on their "
    "relevancy to the query"
)
RANK_ZEPHYR_PREFIX = (
    "I will provide you with {num} passages, each indicated by a numerical identifier []. "
    "Rank the passages based on their relevance to the search query: {query}.\n"
)
RANK_ZEPHYR_BODY = "[{rank}] {candidate}\n"
RANK_ZEPHYR_SUFFIX = (
    "Search Query: {query}.\n"
    "Rank the {num} passages above based on their relevance to the search query. All the "
    "passages should be included and listed using identifiers, in descending order of "
    "relevance. The output format should be [] > [], e.g., [2] > [1], Answer concisely and "
    "directly and only respond with the ranking results, do not say any word or explain."
)

RANK_GPT_SYSTEM = (
    "You are RankGPT, an intelligent assistant that can rank passages based on their "
    "relevancy to the query."
)
RANK_GPT_PREFIX_USER = (
    "I will provide you with {num} passages, each indicated by number identifier [].\n"
    "Rank the passages based on their relevance to query: {query}."
)
RANK_GPT_PREFIX_ASSISTANT = "Okay, please provide the passages."
RANK_GPT_BODY_USER = "[{rank}] {candidate}"
RANK_GPT_BODY_ASSISTANT = "Received passage [{rank}]."
RANK_GPT_SUFFIX_USER = (
    "Search Query: {query}.\n"
    "Rank the {num} passages above based on their relevance to the search query. The passages "
    "should be listed in descending order using identifiers. The most relevant passages should "
    "be listed first. The output format should be [] > [], e.g., [1] > [2]. Only response the "
    "ranking results, do not say any word or explain."
)

_BRACKETED_NUMBER = re.compile(r"\[(\d+)\]")


class ChatTokenizer(Protocol):
    """The part of a Hugging Face tokenizer that prompts need."""

    bos_token: str | None

    def apply_chat_template(self, conversation: Messages, **kwargs: Any) -> Any: ...

    def encode(self, text: str, **kwargs: Any) -> list[int]: ...


def replace_number(text: str) -> str:
    """``[3]`` becomes ``(3)``, so passage and query text cannot mimic an identifier."""
    return _BRACKETED_NUMBER.sub(r"(\1)", text)


def passage_content(text: str, max_words: int) -> str:
    """rank_llm's passage text: ftfy-fixed, cut to ``max_words`` words, ids defused."""
    words = fix_text(text.strip()).split()
    return replace_number(" ".join(words[:max_words]))


def default_passage_words(window_length: int) -> int:
    """rank_llm's starting budget: 300 words per passage for a window of 20 (scaled)."""
    return int(300 * (20 / window_length))


def listwise_messages(
    prompt_format: str, query: str, passages: Sequence[str], max_words: int
) -> Messages:
    """The chat messages that ask to rank ``passages`` (1-based identifiers) for ``query``."""
    query = replace_number(query)
    num = len(passages)
    contents = [passage_content(text, max_words) for text in passages]
    if prompt_format == "rank_zephyr":
        body = "".join(
            RANK_ZEPHYR_BODY.format(rank=rank, candidate=content)
            for rank, content in enumerate(contents, start=1)
        )
        user = (
            RANK_ZEPHYR_PREFIX.format(num=num, query=query)
            + body
            + RANK_ZEPHYR_SUFFIX.format(num=num, query=query)
        )
        return [
            {"role": "system", "content": RANK_ZEPHYR_SYSTEM},
            {"role": "user", "content": user},
        ]
    if prompt_format == "rank_gpt":
        messages = [
            {"role": "system", "content": RANK_GPT_SYSTEM},
            {"role": "user", "content": RANK_GPT_PREFIX_USER.format(num=num, query=query)},
            {"role": "assistant", "content": RANK_GPT_PREFIX_ASSISTANT},
        ]
        for rank, content in enumerate(contents, start=1):
            # rank_llm's multi-turn handler defuses bracketed numbers a second time (a no-op).
            candidate = replace_number(content)
            messages.append(
                {
                    "role": "user",
                    "content": RANK_GPT_BODY_USER.format(rank=rank, candidate=candidate),
                }
            )
            messages.append(
                {"role": "assistant", "content": RANK_GPT_BODY_ASSISTANT.format(rank=rank)}
            )
        messages.append(
            {"role": "user", "content": RANK_GPT_SUFFIX_USER.format(num=num, query=query)}
        )
        return messages
    raise ValueError(f"prompt_format must be one of {list(PROMPT_FORMATS)}, got {prompt_format!r}")


def ideal_answer(window_length: int) -> str:
    """The answer a perfect model gives, ``[1] > [2] > ... > [n]``; its length in tokens is the
    number of tokens rank_llm lets the model generate."""
    return " > ".join(f"[{rank}]" for rank in range(1, window_length + 1))


@dataclass(frozen=True)
class Prompt:
    """One window's prompt: its text after the chat template, its token ids, and whether its
    passages had to be cut below the word budget to fit the context."""

    text: str
    token_ids: list[int]
    shortened: bool


class PromptBuilder:
    """Formats windows with a model's chat template and fits them into its context."""

    def __init__(
        self,
        tokenizer: ChatTokenizer,
        prompt_format: str,
        context_size: int,
        passage_words: int | None = None,
    ) -> None:
        if prompt_format not in PROMPT_FORMATS:
            raise ValueError(
                f"prompt_format must be one of {list(PROMPT_FORMATS)}, got {prompt_format!r}"
            )
        self.tokenizer = tokenizer
        self.prompt_format = prompt_format
        self.context_size = context_size
        self.passage_words = passage_words
        self._answer_tokens: dict[int, int] = {}

    def answer_tokens(self, window_length: int) -> int:
        """Tokens in :func:`ideal_answer` (rank_llm counts them with the BOS token and then
        subtracts one; counting without special tokens gives the same figure where the
        tokenizer adds exactly one BOS, and the right one where it adds none)."""
        if window_length not in self._answer_tokens:
            ids = self.tokenizer.encode(ideal_answer(window_length), add_special_tokens=False)
            self._answer_tokens[window_length] = len(ids)
        return self._answer_tokens[window_length]

    def encode(self, text: str) -> list[int]:
        """Token ids of a chat-formatted prompt. The tokenizer's BOS token is added unless the
        chat template already wrote it (Llama 3, Qwen), which avoids a doubled BOS."""
        bos = self.tokenizer.bos_token
        add_special = not (bos and text.startswith(bos))
        return list(self.tokenizer.encode(text, add_special_tokens=add_special))

    def build(self, query: str, passages: Sequence[str], answer_tokens: int) -> Prompt:
        """The prompt for one window, with passages shortened until prompt + answer fit."""
        length = len(passages)
        words = budget_words = self.passage_words or default_passage_words(length)
        budget = self.context_size - answer_tokens
        while True:
            messages = listwise_messages(self.prompt_format, query, passages, words)
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
            )
            text = fix_text(text)
            ids = self.encode(text)
            if len(ids) <= budget:
                return Prompt(text=text, token_ids=ids, shortened=words < budget_words)
            if words <= 1:
                raise ValueError(
                    f"a {length}-passage prompt for the query {query!r} needs {len(ids)} tokens "
                    f"with one word per passage, more than context_size {self.context_size} minus "
                    f"{answer_tokens} answer tokens; raise context_size or lower the window"
                )
            # rank_llm's step: shrink each passage by a share of the overflow (at least a word).
            words = max(1, words - max(1, (len(ids) - budget) // (length * 4)))
