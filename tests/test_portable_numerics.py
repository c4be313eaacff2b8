"""Portable numerics (compute.portable_numerics): the same bits whatever the CPU offers.

The two-capability test trains a shortened demo (the tiny backbone, then each model for
10 steps from the previous one; tests/portable_run.py) and re-ranks the first evaluation
set with it, in fresh processes, once on this CPU as it is and once capped like a weaker
x86-64 CPU with AVX2. The cap is set from outside, with the controls that limit what
each library may use (``ATEN_CPU_CAPABILITY=avx2``, ``MKL_ENABLE_INSTRUCTIONS``,
``ONEDNN_MAX_CPU_ISA``), never with the variables portable mode pins (``MKL_CBWR``).
With the switch on, the backbone, both checkpoints and the run are byte-identical under
both; without it they are not. Measured on the development machine (Intel Sapphire
Rapids, AVX-512 and AMX, against an AVX2 cap; the demo's config.yaml): without the
switch, both trained checkpoints and the run differed (the freshly initialised backbone
did not: no arithmetic has run yet), the re-ranked scores by up to 2.3e-4 (of scores
up to 0.45 in magnitude); with it, every score was equal.

Capping one CPU cannot show what another maker's CPU computes: the same instruction set
still runs the maker's own approximations (``rcpps``/``rsqrtps``) and the libraries'
vendor checks. So the shortened demo also runs under QEMU's user-mode emulator, as a CPU
of the other maker (an Intel Haswell on an AMD machine, an AMD EPYC Rome on an Intel
one): QEMU computes every IEEE operation exactly as hardware does, and anything else
its own way. Measured on an AMD EPYC (Zen 4) against an emulated Haswell, before
portable mode used torch's fused AdamW: the default AdamW takes its square roots from
MKL's vector math library (not correctly rounded, and not the same on the EPYC and the
emulator), so both checkpoints and the run differed after 10 steps, the scores by up to
1.3e-3; the demo's table moved by up to 0.04 between a real Xeon and this EPYC.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rank_distillm.model import numerics
from tests.ci import skip_or_fail_in_ci
from tests.workflow_runner import REPO, isolated_env


def weaker_cpu(flags: frozenset[str]) -> dict[str, str]:
    """Caps that make this CPU compute like a weaker AVX2 one: an AVX-512 CPU is capped
    at AVX2 (an AMD Zen 3 or Intel Haswell to Comet Lake); an AVX2 CPU keeps its AVX2
    kernels in ATen (portable mode's floor) and is capped at SSE4.2 in MKL and oneDNN."""
    if numerics.natural_capability(flags) == "AVX512":
        return {
            "ATEN_CPU_CAPABILITY": "avx2",
            "MKL_ENABLE_INSTRUCTIONS": "AVX2",
            "ONEDNN_MAX_CPU_ISA": "AVX2",
        }
    return {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41"}


#: QEMU's model of a CPU of the other maker than this one's (both have AVX2 and FMA).
OTHER_MAKER = {"AuthenticAMD": "Haswell-v4", "GenuineIntel": "EPYC-Rome"}
EMULATED_STEPS = 2  # the emulator runs ~150x slower; the first step already uses every kernel


def short_run(
    demo: Path,
    out: Path,
    portable: bool,
    caps: dict[str, str],
    steps: int | None = None,
    emulator: tuple[str, ...] = (),
) -> dict:
    env = {**isolated_env(demo), **caps, "OMP_WAIT_POLICY": "PASSIVE"}
    for name in (*numerics.PINS, numerics.MARKER):
        env.pop(name, None)  # only the caps, and what pin() sets, decide
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    command = [*emulator, sys.executable, "-m", "tests.portable_run", str(demo), str(out)]
    command += ["on" if portable else "off", *([str(steps)] if steps else [])]
    result = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads((out / "result.json").read_text())


@pytest.fixture(scope="module")
def short_runs(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple, dict]:
    """Four shortened demos: switch on and off, this CPU and the weaker one (two at a time)."""
    flags = numerics.cpu_flags()
    reason = numerics.unsupported(flags)
    if reason is not None:
        skip_or_fail_in_ci(reason)
    variants = [(on, cpu) for on in (True, False) for cpu in ("this", "weaker")]
    caps = {"this": {}, "weaker": weaker_cpu(flags)}
    root = tmp_path_factory.mktemp("portable")

    def run(variant: tuple[bool, str]) -> dict:
        on, cpu = variant
        return short_run(demo, root / f"{cpu}-{'on' if on else 'off'}", on, caps[cpu])

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(variants, pool.map(run, variants), strict=True))


def fingerprints(result: dict) -> dict[str, str]:
    return {key: value for key, value in result.items() if key.startswith(("backbone", "model"))}


def test_portable_numerics_give_the_same_bits_on_a_weaker_cpu(short_runs: dict) -> None:
    this, weaker = short_runs[True, "this"], short_runs[True, "weaker"]
    assert "portable numerics on" in this["numerics"]
    assert fingerprints(this) == fingerprints(weaker)
    assert this["run"] == weaker["run"]
    assert this["scores"] == weaker["scores"]


def test_without_portable_numerics_the_two_cpus_differ(short_runs: dict) -> None:
    """The caps change this CPU's results, so the test above can fail: without the
    switch the weaker CPU trains other weights and scores other values."""
    this, weaker = short_runs[False, "this"], short_runs[False, "weaker"]
    assert "portable numerics off" in this["numerics"]
    assert this["run"] != weaker["run"]
    assert fingerprints(this) != fingerprints(weaker)
    largest = max(abs(this["scores"][k] - weaker["scores"][k]) for k in this["scores"])
    assert largest > 0


@pytest.fixture(scope="module")
def emulator() -> tuple[str, ...]:
    """``qemu-x86_64 -cpu MODEL`` for a CPU of the other maker (Debian's qemu-user, which
    .ci/run installs); skips (fails in CI) where it is missing or the maker unknown."""
    vendor = numerics.cpuinfo_field(["vendor_id"])
    model = OTHER_MAKER.get(vendor)
    if model is None:
        skip_or_fail_in_ci(f"no emulated counterpart for a {vendor!r} CPU")
    if shutil.which("qemu-x86_64") is None:
        skip_or_fail_in_ci("qemu-x86_64 (Debian's qemu-user) is not installed")
    return ("qemu-x86_64", "-cpu", model)


def test_portable_numerics_give_the_same_bits_on_the_other_makers_cpu(
    demo: Path, emulator: tuple[str, ...], tmp_path: Path
) -> None:
    native = short_run(demo, tmp_path / "native", True, {}, EMULATED_STEPS)
    emulated = short_run(demo, tmp_path / "emulated", True, {}, EMULATED_STEPS, emulator)
    assert "portable numerics on" in emulated["numerics"]
    assert fingerprints(native) == fingerprints(emulated)
    assert native["run"] == emulated["run"]
    assert native["scores"] == emulated["scores"]


def test_the_emulated_cpu_exposes_a_maker_dependent_kernel(emulator: tuple[str, ...]) -> None:
    """The test above can fail: even with every pin in place, MKL's vector math square
    root (what ``torch.sqrt`` runs, and torch's default AdamW with it) gives other bits
    under the emulator than on this CPU (the demo's table, with it, differed between a Xeon
    and an EPYC)."""
    code = (
        "from rank_distillm.model import numerics\n"
        "numerics.pin(True)\n"
        "import torch\n"
        "x = torch.rand(4096, generator=torch.Generator().manual_seed(0))\n"
        "print(torch.sqrt(x).numpy().tobytes().hex())\n"
    )
    native, emulated = python(code), python(code, emulator=emulator)
    assert native.returncode == 0, native.stderr[-4000:]
    assert emulated.returncode == 0, emulated.stderr[-4000:]
    assert native.stdout != emulated.stdout


# ------------------------------------------------------------------ the switch itself


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No pins or marker in the environment, and whatever pin() sets is undone after."""
    for name in (*numerics.PINS, numerics.MARKER):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("flags", "capability"),
    [
        ({"avx2", "fma", "avx512f", "avx512vl", "avx512bw", "avx512dq"}, "AVX512"),
        ({"avx2", "fma", "avx512f"}, "AVX2"),  # AVX-512 without VL/BW/DQ: ATen stays at AVX2
        ({"avx2", "fma"}, "AVX2"),
        ({"avx", "sse4_2"}, "DEFAULT"),
    ],
)
def test_the_kernels_aten_would_pick(flags: set[str], capability: str) -> None:
    assert numerics.natural_capability(flags) == capability


def test_cpus_that_cannot_compute_the_portable_results() -> None:
    assert numerics.unsupported({"avx2", "fma"}, "x86_64") is None
    assert numerics.unsupported({"avx", "fma"}, "x86_64") == "the CPU lacks avx2"
    assert numerics.unsupported({"avx2", "fma"}, "arm64") == "the CPU is arm64, not x86-64"


def test_a_conflicting_setting_in_the_environment_is_an_error(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("MKL_CBWR", "AVX2")
    with pytest.raises(numerics.PortableNumericsError, match="MKL_CBWR='AVX2'"):
        numerics.pin(True)
    assert not numerics.portable_numerics_enabled()


def test_switched_off_nothing_is_pinned(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv(numerics.MARKER, "1")  # e.g. inherited from a parent process
    numerics.pin(False)
    assert not numerics.portable_numerics_enabled()
    assert all(name not in os.environ for name in numerics.PINS)


def test_a_cpu_without_avx2_runs_unpinned_with_a_warning(
    clean_environment: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clean_environment.setattr(numerics, "cpu_flags", lambda: frozenset({"avx", "sse4_2"}))
    numerics.pin(True)
    assert not numerics.portable_numerics_enabled()
    assert "ATEN_CPU_CAPABILITY" not in os.environ
    assert "the CPU lacks avx2 and fma" in caplog.text


def python(
    code: str, emulator: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter (under ``emulator`` if given), without the pins."""
    clean = {k: v for k, v in os.environ.items() if k not in (*numerics.PINS, numerics.MARKER)}
    return subprocess.run(
        [*emulator, sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.skipif(numerics.unsupported(numerics.cpu_flags()) is not None, reason="no AVX2")
def test_pinned_before_torch_starts_and_said_in_the_log() -> None:
    result = python(
        "import logging; logging.basicConfig(level=logging.INFO)\n"
        "from rank_distillm.model import numerics\n"
        "numerics.pin(True)\n"
        "import torch\n"
        "assert torch.backends.cpu.get_cpu_capability() == 'AVX2'\n"
        "numerics.enforce()\n"
    )
    assert result.returncode == 0, result.stderr
    assert "portable numerics on" in result.stderr
    assert "MKL CNR branch COMPATIBLE" in result.stderr


@pytest.mark.skipif(numerics.unsupported(numerics.cpu_flags()) is not None, reason="no AVX2")
def test_torch_started_before_the_pins_is_an_error() -> None:
    """MKL and ATen read their settings once: pinning after they ran cannot work."""
    result = python(
        "import torch\n"
        "torch.mm(torch.ones(4, 4), torch.ones(4, 4))\n"
        "from rank_distillm.model import numerics\n"
        "numerics.pin(True)\n"
    )
    assert result.returncode != 0
    assert "PortableNumericsError" in result.stderr
    assert "MKL reports CNR:OFF" in result.stderr
    assert "torch was started before rank_distillm.model.numerics.pin()" in result.stderr


def test_the_reranking_pass_leaves_onednn_under_portable_numerics(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    import torch

    from rank_distillm.model import lean_encoder as encoder

    x = torch.ones(2, 4)
    onednn = "onednn" in encoder.candidates(x)
    clean_environment.setenv(numerics.MARKER, "1")
    assert encoder.candidates(x) == ("aten",)  # MKL only: nothing is timed, nothing chosen
    assert onednn == (torch.backends.mkldnn.is_available() and sys.platform == "linux")


def test_precision_under_portable_numerics(clean_environment: pytest.MonkeyPatch) -> None:
    from rank_distillm.model import precision

    clean_environment.setenv(numerics.MARKER, "1")
    assert precision.choose("auto", "cpu", flags={"amx_bf16"}).dtype == "fp32"
    assert precision.choose("auto", "cuda").dtype == "bf16"  # GPUs are not pinned
    with pytest.raises(ValueError, match="compute.portable_numerics"):
        precision.choose("bf16", "cpu")
