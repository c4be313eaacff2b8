"""Choosing fp32 or bf16 autocast, and saying why.

``precision: auto`` picks bf16 autocast where the hardware runs it faster than fp32:
every CUDA GPU this pipeline targets, and CPUs with bf16 matrix instructions. Measured
on the development machine (AMD EPYC with ``avx512_bf16``, no AMX; docs/benchmarks.md):
bf16 autocast re-ranked ~1.5x and trained ~1.8x faster than fp32; the issue's Xeon with
AMX-BF16 measured 2.25x and ~2x. Without either instruction set, bf16 runs through
conversions and is several times slower than fp32, so ``auto`` stays at fp32 there.
Under portable numerics (:mod:`rank_distillm.model.numerics`) a CPU job's results must not
depend on the CPU, and bf16 kernels do: ``auto`` is fp32 there, and bf16 is an error.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from rank_distillm.model.numerics import cpu_flags, portable_numerics_enabled

LOGGER = logging.getLogger(__name__)

#: ``/proc/cpuinfo`` flags that give a CPU fast bf16 matrix products.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
SETTINGS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: Older spellings accepted from configs: accelerate's "no" means fp32.
ALIASES = {"no": "fp32"}


@dataclass(frozen=True)
class Precision:
    """The precision a job runs in, and the reason, for its log."""

    dtype: str  # "fp32", "bf16" or "fp16"
    reason: str

    @property
    def accelerate(self) -> str:
        """accelerate's ``mixed_precision`` value."""
        return "no" if self.dtype == "fp32" else self.dtype

    def autocast(self, device: str | torch.device) -> contextlib.AbstractContextManager:
        """Autocast to bf16/fp16 on ``device``, or nothing for fp32."""
        if self.dtype == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(torch.device(device).type, dtype=DTYPES[self.dtype])


def normalized(setting: str) -> str:
    """A config's ``precision`` in this module's spelling; an unknown value is an error."""
    setting = ALIASES.get(setting, setting)
    if setting not in SETTINGS:
        raise ValueError(
            f"precision must be one of {', '.join(SETTINGS)} (or 'no' for fp32), got {setting!r}"
        )
    return setting


def choose(
    setting: str,
    device: str | torch.device = "cpu",
    flags: Iterable[str] | None = None,
) -> Precision:
    """Resolve a config's ``precision`` (``auto``, ``fp32``, ``bf16``, ``fp16``) for ``device``.

    ``flags`` are the CPU's feature flags (read from /proc/cpuinfo when ``None``).
    """
    setting = normalized(setting)
    kind = torch.device(device).type
    portable = kind == "cpu" and portable_numerics_enabled()
    if portable and setting in ("bf16", "fp16"):
        raise ValueError(
            f"precision: {setting} on a CPU cannot give portable results (bf16 kernels "
            "differ between CPUs); set precision: fp32, or compute.portable_numerics: false"
        )
    if setting != "auto":
        return Precision(setting, f"precision: {setting} was configured")
    if portable:
        return Precision("fp32", "auto: portable numerics on a CPU, fp32")
    if kind == "cuda":
        return Precision("bf16", "auto: CUDA device, bf16 autocast")
    if kind != "cpu":
        return Precision("fp32", f"auto: {kind} device, fp32")
    present = cpu_flags() if flags is None else frozenset(flags)
    found = [flag for flag in BF16_CPU_FLAGS if flag in present]
    if found:
        return Precision("bf16", f"auto: CPU has {' and '.join(found)}, bf16 autocast is faster")
    return Precision(
        "fp32", f"auto: CPU lacks {' and '.join(BF16_CPU_FLAGS)}, bf16 would be slower than fp32"
    )


def log_choice(precision: Precision, job: str) -> None:
    LOGGER.info("%s runs in %s (%s)", job, precision.dtype, precision.reason)


@contextlib.contextmanager
def tf32(device: str | torch.device) -> Iterator[None]:
    """TF32 matrix products on a CUDA device (the fp32 parts of a bf16 run, and fp32
    runs: ~8x an fp32 product's speed on tensor cores, with a 10-bit mantissa);
    nothing elsewhere. The previous setting comes back afterwards."""
    if torch.device(device).type != "cuda":
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
