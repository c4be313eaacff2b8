"""What one stage-1 training step of the demo's tiny ELECTRA costs, with and without
portable numerics (reported in docs/benchmarks.md, "How the demo's figures move").

A step is the demo's: 128 query-passage pairs of the demo's lengths (3 special tokens,
3-14 query and 15-26 passage tokens), forward, backward and AdamW, at 2 torch threads.
Each setting runs in a fresh process, because ATen and MKL read their variables when
torch loads. Besides native and portable numerics it times the two kernel changes that
would save time without touching portability: length-sorted chunks of 64 pairs, and
eager attention instead of SDPA. Run: ``python benchmarks/training_step.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from rank_distillm.model import numerics  # noqa: E402 (imports no torch)

PAIRS, STEPS, WARMUP = 128, 100, 10


def time_step(chunk: int, attention: str, threads: int) -> float:
    """Milliseconds per training step in this process."""
    import numpy as np
    import torch
    import yaml
    from transformers import ElectraConfig, ElectraForSequenceClassification

    numerics.enforce()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tiny = yaml.safe_load((REPO / "config.yaml").read_text())["backbones"]["tiny-electra"]["tiny"]
    config = ElectraConfig(
        **{**tiny, "vocab_size": 859, "embedding_size": tiny["hidden_size"], "num_labels": 1},
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = ElectraForSequenceClassification._from_config(config, attn_implementation=attention)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    lengths = np.sort(3 + rng.integers(3, 15, PAIRS) + rng.integers(15, 27, PAIRS))
    width = int(lengths.max())
    ids = torch.randint(5, 800, (PAIRS, width))
    mask = (torch.arange(width)[None, :] < torch.from_numpy(lengths)[:, None]).long()
    segments = (torch.arange(width)[None, :] >= 12).long().expand(PAIRS, width)

    def step() -> None:
        scores = []
        for start in range(0, PAIRS, chunk):
            rows, cut = slice(start, start + chunk), int(lengths[start : start + chunk].max())
            batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": segments}
            scores.append(model(**{k: v[rows, :cut] for k, v in batch.items()}).logits)
        loss = torch.cat(scores).pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    for _ in range(WARMUP):
        step()
    started = time.perf_counter()
    for _ in range(STEPS):
        step()
    return (time.perf_counter() - started) * 1000 / STEPS


def main() -> None:
    if sys.argv[1:2] == ["one"]:  # one setting, in this fresh process
        chunk, attention, portable = int(sys.argv[2]), sys.argv[3], sys.argv[4] == "portable"
        numerics.pin(portable)  # before torch loads
        print(f"{time_step(chunk, attention, threads=2):.1f}")
        return
    print("| numerics | pairs per chunk | attention | ms per step |")
    print("|---|---:|---|---:|")
    # Nothing pinned from outside, so that "native" is the CPU's own choice.
    pinned = {*numerics.PINS, numerics.MARKER}
    env = {key: value for key, value in os.environ.items() if key not in pinned}
    for numerics_kind in ("native", "portable"):
        for chunk, attention in ((PAIRS, "sdpa"), (64, "sdpa"), (64, "eager")):
            command = [sys.executable, __file__, "one", str(chunk), attention, numerics_kind]
            result = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            print(f"| {numerics_kind} | {chunk} | {attention} | {result.stdout.strip()} |")


if __name__ == "__main__":
    main()
