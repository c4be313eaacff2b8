"""Text generation for listwise prompts: transformers everywhere, vLLM on a GPU.

Both backends take token ids (built by ``prompts.PromptBuilder`` with the model's own
tokenizer) and return the decoded answers, so the prompt text a model sees does not depend
on the backend. vLLM is used when it is importable and CUDA is available (``backend:
auto``); it is not a dependency of this package and its path is not exercised by the tests
(it does not install next to the pinned transformers, see docs/teacher-generation.md).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

LOGGER = logging.getLogger(__name__)

BACKENDS = ("auto", "transformers", "vllm")
DTYPES = ("auto", "bfloat16", "float16", "float32")


@dataclass(frozen=True)
class Sampling:
    """Decoding settings; ``temperature`` 0 is greedy decoding (rank_llm's default)."""

    max_new_tokens: int
    min_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0


class Generator(Protocol):
    """What the sliding window needs from a model."""

    tokenizer: Any

    def generate(self, prompts: Sequence[list[int]], sampling: Sampling) -> list[str]:
        """One decoded answer per prompt (special tokens removed)."""
        ...


def vllm_usable() -> bool:
    """vLLM is importable and a CUDA device is present."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return "vllm" if vllm_usable() else "transformers"
    if backend == "vllm" and not vllm_usable():
        raise RuntimeError("backend 'vllm' needs the vllm package and a CUDA device")
    return backend


def load_generator(
    model: str, backend: str = "auto", dtype: str = "auto", context_size: int = 4096, seed: int = 0
) -> Generator:
    """The model at ``model`` (hub id or local folder) behind the chosen backend."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    chosen = resolve_backend(backend)
    LOGGER.info("loading %s with the %s backend (dtype %s)", model, chosen, dtype)
    if chosen == "vllm":
        return VllmGenerator(model, dtype, context_size, seed)
    return TransformersGenerator(model, dtype, seed)


class TransformersGenerator:
    """Batched ``generate`` with left padding; bf16 on a GPU, fp32 on a CPU by default."""

    def __init__(self, model: str, dtype: str = "auto", seed: int = 0) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if dtype == "auto":
            dtype = "bfloat16" if self.device.type == "cuda" else "float32"
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype))
        self.model.to(self.device).eval()
        self.seed = seed
        self._torch = torch

    def generate(self, prompts: Sequence[list[int]], sampling: Sampling) -> list[str]:
        torch = self._torch
        batch = self.tokenizer.pad(
            {"input_ids": [list(ids) for ids in prompts]}, padding=True, return_tensors="pt"
        ).to(self.device)
        options: dict[str, Any] = {
            "max_new_tokens": sampling.max_new_tokens,
            "min_new_tokens": sampling.min_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "do_sample": sampling.temperature > 0,
        }
        if sampling.temperature > 0:
            options.update(temperature=sampling.temperature, top_p=sampling.top_p)
            torch.manual_seed(self.seed)
        with torch.inference_mode():
            output = self.model.generate(**batch, **options)
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)


class VllmGenerator:
    """vLLM's offline engine; it schedules all prompts of a call itself (continuous batching)."""

    def __init__(self, model: str, dtype: str, context_size: int, seed: int) -> None:
        import vllm

        self._vllm = vllm
        self.llm = vllm.LLM(model=model, dtype=dtype, max_model_len=context_size, seed=seed)
        self.tokenizer = self.llm.get_tokenizer()
        self.seed = seed

    def generate(self, prompts: Sequence[list[int]], sampling: Sampling) -> list[str]:
        params = self._vllm.SamplingParams(
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_new_tokens,
            min_tokens=sampling.min_new_tokens,
            seed=self.seed if sampling.temperature > 0 else None,
        )
        requests = [{"prompt_token_ids": list(ids)} for ids in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [output.outputs[0].text for output in outputs]
