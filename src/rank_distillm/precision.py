"""Choosing fp32 or bf16 autocast, and saying why.

``precision: auto`` picks bf16 autocast where the hardware runs it faster than fp32:
every CUDA GPU this pipeline targets, and CPUs with bf16 matrix instructions. Measured
on the development machine (AMD EPYC with ``avx512_bf16``, no AMX; docs/benchmarks.md):
bf16 autocast re-ranked ~1.5x and trained ~1.8x faster than fp32; the issue's Xeon with
AMX-BF16 measured 2.25x and ~2x. Without either instruction set, bf16 runs through
conversions and is several times slower than fp32, so ``auto`` stays at fp32 there.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

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


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first processor's feature flags (empty where /proc/cpuinfo is unreadable)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def choose(
    setting: str,
    device: str | torch.device = "cpu",
    flags: Iterable[str] | None = None,
) -> Precision:
    """Resolve a config's ``precision`` (``auto``, ``fp32``, ``bf16``, ``fp16``) for ``device``.

    ``flags`` are the CPU's feature flags (read from /proc/cpuinfo when ``None``).
    """
    setting = ALIASES.get(setting, setting)
    if setting not in SETTINGS:
        raise ValueError(
            f"precision must be one of {', '.join(SETTINGS)} (or 'no' for fp32), got {setting!r}"
        )
    if setting != "auto":
        return Precision(setting, f"precision: {setting} was configured")
    kind = torch.device(device).type
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
