"""What the GPU mode of the engine benchmark reports beyond pairs per second: model FLOP
utilisation (MFU) against the GPU's datasheet peak, and the paper's GPU hours recomputed
from the measured throughput.

Pure arithmetic on measured figures, so it is tested without a GPU
(tests/test_engine_gpu.py). The paper's work is read from ``configs/paper.yaml``
through the pipeline's own ``Experiment.train_pairs`` (what each training job of the
main table trains on), so the hours follow the config the cluster would run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import engine_workload

#: Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's datasheets, FLOP/s, by a
#: substring of ``torch.cuda.get_device_name()``; the first match wins.
DENSE_BF16_PEAKS = (
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("A10", 125e12),
)
#: google/electra-large-discriminator's dimensions, to scale base's measured rate.
LARGE = engine_workload.Backbone(
    embedding_size=1024,
    hidden_size=1024,
    num_hidden_layers=24,
    num_attention_heads=16,
    intermediate_size=4096,
)
#: Judged queries per TREC DL set (43 and 54) and passages re-ranked per query.
RERANK_QUERIES, RERANK_DEPTH = 50, 100


def datasheet_peak(device_name: str) -> tuple[float, str] | None:
    """The dense bf16 peak of the GPU named ``device_name`` and its source, or ``None``
    for a GPU not in :data:`DENSE_BF16_PEAKS` (then the measured matmul peak stands in)."""
    for name, peak in DENSE_BF16_PEAKS:
        if name.lower() in device_name.lower():
            return peak, f"{name} dense bf16 datasheet"
    return None


def mfu(flops_per_s: float, peak: float) -> float:
    """Model FLOP utilisation: the model's FLOPs per second over the device's peak."""
    return flops_per_s / peak


def large_rate(base_rate: float, length: int = 3 + 32 + 256) -> float:
    """ELECTRA-large's pairs/s, from base's measured rate at the same utilisation: the
    rate scales with the FLOPs of a pair of the paper's lengths (large ≈ 3.5x base)."""
    base_flops = engine_workload.forward_flops(engine_workload.BASE, length)
    return base_rate * base_flops / engine_workload.forward_flops(LARGE, length)


@dataclass(frozen=True)
class JobHours:
    job: str
    backbone: str
    pairs: int
    pairs_per_s: float

    @property
    def hours(self) -> float:
        return self.pairs / self.pairs_per_s / 3600


def paper_hours(train_rate: float, rerank_rate: float, config: Path) -> list[JobHours]:
    """The GPU hours of the paper config's main table at the measured ELECTRA-base rates
    (large: :func:`large_rate`): each training job with the pairs it trains on, then the
    re-ranking of every system (trained models and published checkpoints) on every
    column, ~:data:`RERANK_QUERIES` queries x :data:`RERANK_DEPTH` passages each."""
    import yaml
    from snakemake.utils import validate

    from rank_distillm.experiment import from_config

    settings = yaml.safe_load(config.read_text())
    validate(settings, str(config.parent.parent / "schemas" / "config.schema.yaml"))
    experiment = from_config(settings)

    def size(backbone: str) -> str:
        return "electra-large" if "large" in backbone else "electra-base"

    def rate(backbone: str, base: float) -> float:
        return large_rate(base) if size(backbone) == "electra-large" else base

    jobs = []
    for model in experiment.models:
        backbone = size(experiment.backbone_of(model).name)
        pairs = experiment.train_pairs(model)
        jobs.append(JobHours(f"train {model}", backbone, pairs, rate(backbone, train_rate)))
    per_system = len(experiment.table_pairs) * RERANK_QUERIES * RERANK_DEPTH
    for system in [*experiment.models, *experiment.checkpoints]:
        backbone = size(system)
        jobs.append(
            JobHours(f"re-rank {system}", backbone, per_system, rate(backbone, rerank_rate))
        )
    return jobs


def hours_markdown(jobs: list[JobHours]) -> str:
    lines = ["| job | backbone | pairs | pairs/s | GPU hours |", "|---|---|---:|---:|---:|"]
    for job in jobs:
        lines.append(
            f"| {job.job} | {job.backbone} | {job.pairs:,} | {job.pairs_per_s:,.0f} "
            f"| {job.hours:.2f} |"
        )
    for kind in ("train", "re-rank"):
        total = sum(job.hours for job in jobs if job.job.startswith(kind + " "))
        lines.append(f"| **{kind}, all jobs** | | | | **{total:.2f}** |")
    return "\n".join(lines)
