"""Tests for rank_distillm.model.precision: what ``precision: auto`` picks, and why."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rank_distillm.model import numerics, precision

EPYC_GENOA = ["fpu", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni"]
SAPPHIRE_RAPIDS = ["fpu", "avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"]
OLD_XEON = ["fpu", "sse4_2", "avx", "avx2", "fma", "avx512f"]


@pytest.mark.parametrize(
    ("flags", "dtype", "named"),
    [
        (SAPPHIRE_RAPIDS, "bf16", "amx_bf16 and avx512_bf16"),
        (EPYC_GENOA, "bf16", "avx512_bf16"),
        (OLD_XEON, "fp32", "lacks amx_bf16 and avx512_bf16"),
        ([], "fp32", "lacks"),
    ],
)
def test_auto_on_cpu_follows_the_bf16_flags(flags: list[str], dtype: str, named: str) -> None:
    chosen = precision.choose("auto", "cpu", flags=flags)
    assert chosen.dtype == dtype
    assert named in chosen.reason


def test_auto_on_cuda_is_bf16_whatever_the_cpu() -> None:
    chosen = precision.choose("auto", "cuda", flags=OLD_XEON)
    assert chosen.dtype == "bf16"
    assert chosen.accelerate == "bf16"


@pytest.mark.parametrize(("setting", "dtype"), [("fp32", "fp32"), ("no", "fp32"), ("bf16", "bf16")])
def test_explicit_settings_win_over_the_hardware(setting: str, dtype: str) -> None:
    chosen = precision.choose(setting, "cpu", flags=SAPPHIRE_RAPIDS if dtype == "fp32" else [])
    assert chosen.dtype == dtype
    assert "configured" in chosen.reason
    assert chosen.accelerate == ("no" if dtype == "fp32" else dtype)


def test_unknown_setting_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"auto, fp32, bf16, fp16.*'fp8'"):
        precision.choose("fp8")


def test_cpu_flags_and_fields_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2 avx512_bf16\n\n"
        "processor\t: 1\nflags\t\t: fpu\n"
    )
    assert precision.cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    assert precision.cpu_flags(tmp_path / "missing") == frozenset()
    assert numerics.cpuinfo_field(["vendor_id"], cpuinfo) == "AuthenticAMD"
    assert numerics.cpuinfo_field(["model name"], cpuinfo) is None
    assert numerics.cpuinfo_field(["vendor_id"], tmp_path / "missing") is None


def test_autocast_only_for_bf16() -> None:
    layer = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with precision.choose("bf16", "cpu").autocast("cpu"):
        assert layer(x).dtype == torch.bfloat16
    with precision.choose("fp32", "cpu").autocast("cpu"):
        assert layer(x).dtype == torch.float32
