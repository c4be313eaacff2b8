"""Tests for the engine benchmark's GPU arithmetic (benchmarks/engine_gpu.py): MFU against
the datasheet peak, ELECTRA-large's rate from base's, and the paper's GPU hours from the
paper config, on hand-computed figures (no GPU needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import engine_benchmark  # noqa: E402
import engine_gpu  # noqa: E402


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H200", 989e12),
        ("NVIDIA H100 80GB HBM3", 989e12),
        ("NVIDIA H100 PCIe", 756e12),
        ("NVIDIA A100-SXM4-80GB", 312e12),
    ],
)
def test_datasheet_peaks_by_device_name(name: str, peak: float) -> None:
    assert engine_gpu.datasheet_peak(name)[0] == peak


def test_an_unknown_gpu_has_no_datasheet_peak() -> None:
    assert engine_gpu.datasheet_peak("Some Future GPU") is None


def test_mfu_is_model_flops_over_peak() -> None:
    assert engine_gpu.mfu(494.5e12, 989e12) == 0.5


def test_large_rate_scales_by_the_flops_of_a_paper_length_pair() -> None:
    # Per layer 2n·4h² + 4n²h + 4nhI at n = 3 + 32 + 256 = 291 tokens:
    # base (h 768, I 3072) 4,379,470,848 x 12 layers + head 1,536 = 52,553,651,712;
    # large (h 1024, I 4096) 7,670,108,160 x 24 + 2,048 = 184,082,597,888.
    assert engine_gpu.large_rate(1500.0) == pytest.approx(
        1500 * 52_553_651_712 / 184_082_597_888, rel=1e-12
    )


def test_paper_hours_from_the_paper_config() -> None:
    jobs = {
        job.job: job for job in engine_gpu.paper_hours(1600.0, 2000.0, ROOT / "configs/paper.yaml")
    }
    stage1 = jobs["train electra-base.stage1"]
    assert (stage1.backbone, stage1.pairs) == ("electra-base", 20_000 * 32 * 8)
    assert stage1.hours == pytest.approx(5_120_000 / 1600 / 3600)  # 0.889 h
    distilled = jobs["train electra-base.stage1.rankzephyr.ranknet"]
    assert distilled.pairs == 3 * 10_000 * 100  # 3 epochs of 10,000 queries x 100
    large = jobs["train electra-large.stage1"]
    assert large.pairs_per_s == pytest.approx(engine_gpu.large_rate(1600.0))
    # Re-ranking: 4 columns (BM25, ColBERTv2 x DL19, DL20) x 50 queries x 100 passages.
    checkpoint = jobs["re-rank webis-monoelectra-base"]
    assert (checkpoint.pairs, checkpoint.pairs_per_s) == (20_000, 2000.0)
    assert checkpoint.hours == pytest.approx(10 / 3600)
    assert jobs["re-rank webis-monoelectra-large"].backbone == "electra-large"
    assert sum(job.job.startswith("train ") for job in jobs.values()) == 6


def test_the_gpu_report_prints_mfu_and_the_hours() -> None:
    rows = [
        {
            "system": "rank-distillm",
            "task": task,
            "precision": "bf16",
            "pairs_per_s": rate,
            "all_rounds": [rate],
            "cpu_pairs_per_s": rate,
            "utilisation": mfu,
        }
        for task, rate, mfu in (("rerank", 7200.0, 0.5), ("train", 1800.0, 0.4))
    ]
    report = {
        "mode": "gpu",
        "device": "cuda",
        "threads": 2,
        "rounds": 1,
        "date": "2026-12-06 05:00",
        "machine": "NVIDIA H200",
        "peaks": {"bf16": (989e12, "H200 dense bf16 datasheet")},
        "load_average": (0.1, 0.1, 0.1),
        "rows": rows,
    }
    report["gpu_hours"] = engine_benchmark.gpu_hours(report)
    text = engine_benchmark.markdown(report)
    assert "bf16 peak 989,000 GFLOP/s (H200 dense bf16 datasheet)" in text
    assert "| MFU | ours ÷ it |" in text
    assert "| rerank | bf16 | rank-distillm | 7200.0 | 7200.0 | 7200.0 | 50.0% | — |" in text
    assert "| train | bf16 | rank-distillm | 1800.0 | 1800.0 | 1800.0 | 40.0% | — |" in text
    # stage 1 of base: 5,120,000 pairs / 1,800 per s = 0.79 h
    assert "| train electra-base.stage1 | electra-base | 5,120,000 | 1,800 | 0.79 |" in text
