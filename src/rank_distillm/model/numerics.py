"""Portable numerics: the same CPU results, bit for bit, on every x86-64 CPU with AVX2.

A CPU job's floating-point order is decided by four things; with the switch on
(config ``compute.portable_numerics``), each is fixed by a documented control:

- **Threads**: training uses ``compute.train_threads``, re-ranking one thread, whatever
  the machine (unchanged by this module).
- **ATen's own kernels** (layer norm, softmax, GELU, the attention kernel around its
  matrix products, AdamW's element-wise updates, random initialisation): compiled once
  per vector width and chosen at first use from ``ATEN_CPU_CAPABILITY``, or else from
  the CPU (AVX512 where it has AVX512 VL, BW, DQ and FMA, as Intel Xeons since Skylake
  and AMD Zen 4 do; AVX2 where it has AVX2 and FMA). Wider vectors sum in another
  order, so the pin is ``avx2``: the widest set that every AVX2 x86-64 CPU runs.
- **MKL** (every fp32 matrix product: linear layers, attention's two products):
  conditional numerical reproducibility, ``MKL_CBWR=COMPATIBLE``. MKL's AVX2 and
  AVX-512 branches are "available only for Intel processors" (on an AMD CPU,
  ``MKL_CBWR=AVX2`` silently falls back to the AUTO branch); COMPATIBLE (SSE2 without
  the approximate ``rcpps``/``rsqrtps``) is the one branch MKL documents to return the
  same results on Intel and Intel-compatible CPUs, given a fixed thread count, which
  its reproducibility conditions ask to hold with ``MKL_DYNAMIC=FALSE`` and
  ``OMP_DYNAMIC=FALSE``. MKL's vector math (VML), to which ATen hands some element-wise
  functions, is not covered: its square root is not correctly rounded and gave other
  bits on an AMD EPYC than under QEMU emulating an Intel or an AMD CPU, CNR or not (and
  the demo's table, with AdamW's roots, differed between a Xeon and that EPYC). So no
  portable run takes ``torch.sqrt``: the only square root in training is AdamW's, and
  portable mode trains with torch's fused AdamW, whose kernel is ATen's own vector code
  (``rank_distillm.training.loop``).
- **oneDNN** has no such guarantee (its JIT kernels follow the CPU's ISA, its matrix
  blocking the cache sizes), so nothing runs through it: ATen's oneDNN switch is
  turned off (ATen hands GELU to oneDNN otherwise), and the lean re-ranking pass asks
  :func:`portable_numerics_enabled` and computes its linear layers with MKL instead.

bf16 is not covered: ``precision: auto`` resolves to fp32 on a CPU in portable mode
(:mod:`rank_distillm.model.precision`). The variables must be in place before torch loads
its libraries, so :func:`pin` is called first thing in a process; it sets them, marks
the environment (inherited by training subprocesses), and fails if torch is already
running with other settings. :func:`enforce`, called once torch is imported, turns
ATen's oneDNN switch off, checks what torch and MKL actually use and says it in the job
log. Evidence and measurements: docs/benchmarks.md ("Portable numerics across CPU
makers"); the two-capability and emulated-CPU tests: tests/test_portable_numerics.py.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import re
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

LOGGER = logging.getLogger(__name__)

#: What portable mode sets in the environment, before torch is imported.
PINS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
    "MKL_DYNAMIC": "FALSE",
    "OMP_DYNAMIC": "FALSE",
}
#: Set by :func:`pin` when portable mode is on; child processes inherit it.
MARKER = "RANK_DISTILLM_PORTABLE_NUMERICS"
REQUIRED_FLAGS = ("avx2", "fma")
X86_64 = ("x86_64", "amd64")


class PortableNumericsError(RuntimeError):
    """Portable mode was asked for, but this process cannot compute with its settings."""


def portable_numerics_enabled() -> bool:
    """Whether this process runs under portable numerics: the one place kernel choices
    (e.g. the re-ranking pass's oneDNN kernels) consult; portable mode wins over speed."""
    return os.environ.get(MARKER) == "1"


def cpuinfo_field(names: Iterable[str], cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The first processor's value of the first field named one of ``names`` (e.g.
    ``vendor_id``, ``model name``); None where there is none or /proc/cpuinfo is unreadable."""
    wanted = frozenset(names)
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in wanted:
            return value.strip()
    return None


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first processor's feature flags (empty where /proc/cpuinfo is unreadable)."""
    return frozenset((cpuinfo_field(("flags", "Features"), cpuinfo) or "").split())


def natural_capability(flags: Iterable[str]) -> str:
    """The kernels ATen picks on a CPU with ``flags`` when nothing is pinned (its
    dispatch rule, aten/src/ATen/native/DispatchStub.cpp)."""
    present = frozenset(flags)
    if {"avx512vl", "avx512bw", "avx512dq", "fma"} <= present:
        return "AVX512"
    if {"avx2", "fma"} <= present:
        return "AVX2"
    return "DEFAULT"


def unsupported(flags: Iterable[str], machine: str | None = None) -> str | None:
    """Why this CPU cannot compute the portable results (``None`` when it can)."""
    machine = (machine or platform.machine()).lower()
    if machine not in X86_64:
        return f"the CPU is {machine}, not x86-64"
    missing = [flag for flag in REQUIRED_FLAGS if flag not in frozenset(flags)]
    if missing:
        return f"the CPU lacks {' and '.join(missing)}"
    return None


def pin(enabled: bool) -> None:
    """Put portable mode's settings in this process's environment, or leave them out.

    Call it before anything imports torch (workflow scripts do so first thing): ATen,
    MKL and OpenMP read the variables when they start. Fails if the environment sets
    one of them to another value, or if torch already runs with other settings. On a
    CPU that cannot honour the pins (not x86-64, or no AVX2), it warns and goes on
    unpinned: the run works, but its figures are that CPU's own.
    """
    if not enabled:
        os.environ.pop(MARKER, None)
        return
    reason = unsupported(cpu_flags())
    if reason is not None:
        os.environ.pop(MARKER, None)
        LOGGER.warning(
            "compute.portable_numerics is on, but %s: the results are this CPU's own and "
            "may differ from other machines' in the last digits",
            reason,
        )
        return
    conflicts = {
        name: os.environ[name]
        for name, value in PINS.items()
        if os.environ.get(name, value).strip().upper() != value.upper()
    }
    if conflicts:
        settings = ", ".join(f"{name}={value!r}" for name, value in conflicts.items())
        raise PortableNumericsError(
            f"compute.portable_numerics pins {', '.join(f'{n}={PINS[n]}' for n in conflicts)}, "
            f"but the environment sets {settings}: unset them, or turn portable numerics off"
        )
    os.environ.update(PINS)
    os.environ[MARKER] = "1"
    if "torch" in sys.modules:  # started before the variables were there: check it
        _effective_settings()


def enforce() -> str:
    """Make this process's torch follow portable mode, check that ATen and MKL do, and
    log what it computes with; returns the log line. Called by every step that computes
    (in each training process too), after torch is imported.

    Under portable mode, ATen's switch for oneDNN is turned off: ATen otherwise hands
    some fp32 operations to oneDNN itself (GELU forward and backward), whose JIT kernels
    follow the CPU. A setting that differs from its pin (torch was started before
    :func:`pin`, or a child process lost the environment) is an error.
    """
    if portable_numerics_enabled():
        import torch

        torch.backends.mkldnn.enabled = False
        line = f"portable numerics on (compute.portable_numerics): {_effective_settings()}"
    else:
        line = (
            "portable numerics off (compute.portable_numerics): kernels chosen for this "
            f"CPU ({_describe_unpinned()}); figures may differ on another CPU"
        )
    LOGGER.info(line)
    return line


def _effective_settings() -> str:
    """What ATen, MKL and OpenMP use in this process, checked against the pins."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    mkl = _mkl_state()
    dynamic = _omp_dynamic()
    problems = []
    if capability != PINS["ATEN_CPU_CAPABILITY"].upper():
        problems.append(f"ATen runs {capability} kernels")
    if mkl.get("CNR") != PINS["MKL_CBWR"] or mkl.get("Dyn") != "0":
        problems.append(f"MKL reports CNR:{mkl.get('CNR')} Dyn:{mkl.get('Dyn')}")
    if dynamic:
        problems.append("OpenMP adjusts its thread count dynamically")
    if problems:
        raise PortableNumericsError(
            "compute.portable_numerics is on, but "
            + "; ".join(problems)
            + ": torch was started before rank_distillm.model.numerics.pin() set "
            + ", ".join(f"{n}={v}" for n, v in PINS.items())
        )
    natural = natural_capability(cpu_flags())
    return (
        f"ATen kernels AVX2 (ATEN_CPU_CAPABILITY=avx2; this CPU would run {natural}), MKL "
        f"CNR branch {mkl['CNR']} with a fixed thread count (MKL_CBWR={PINS['MKL_CBWR']}, "
        "MKL_DYNAMIC=FALSE, OMP_DYNAMIC=FALSE), no oneDNN kernels (ATen's oneDNN switch "
        "off; re-ranking's linear layers run through MKL), "
        f"{torch.get_num_threads()} torch threads, "
        "bf16 autocast not used on the CPU"
    )


def _describe_unpinned() -> str:
    import torch

    mkl = _mkl_state()
    return (
        f"ATen {torch.backends.cpu.get_cpu_capability()} kernels, MKL CNR:{mkl.get('CNR')}, "
        f"oneDNN {'on' if torch.backends.mkldnn.enabled else 'off'}, "
        f"{torch.get_num_threads()} torch threads"
    )


def _mkl_state() -> dict[str, str]:
    """MKL's own account of its CNR branch and dynamic threading (``CNR``, ``Dyn``),
    from its verbose line for one small matrix product; empty without MKL."""
    import torch

    if not torch.backends.mkl.is_available():
        return {}
    a = torch.ones(8, 8)

    def product() -> None:
        with torch.backends.mkl.verbose(1):
            torch.mm(a, a)

    return dict(re.findall(r"\b(CNR|Dyn):(\S+)", _printed_by(product)))


def _printed_by(function: Callable[[], object]) -> str:
    """What ``function`` prints to file descriptor 1 (MKL prints from C, unbuffered
    only at exit, hence the flush of C's streams)."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        try:
            function()
        finally:
            libc.fflush(None)
            os.dup2(saved, 1)
            os.close(saved)
        sink.seek(0)
        return sink.read().decode(errors="replace")


def _omp_dynamic() -> bool:
    """Whether OpenMP (torch's libgomp) may change its thread count at run time."""
    try:
        return bool(ctypes.CDLL("libgomp.so.1").omp_get_dynamic())
    except (OSError, AttributeError):
        return False
