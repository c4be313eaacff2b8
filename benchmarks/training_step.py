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
    """Milliseconds per training step in this process: the demo's tiny ELECTRA and
    scoring head as training builds them, its length-sorted scoring and InfoNCE."""
    import numpy as np
    import torch
    import yaml
    from transformers import AutoModel

    from rank_distillm.model import tiny_backbone
    from rank_distillm.model.cross_encoder import CrossEncoder
    from rank_distillm.training import length_batches, loop, losses

    numerics.enforce()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tiny = yaml.safe_load((REPO / "config.yaml").read_text())["backbones"]["tiny-electra"]["tiny"]
    # The demo corpus's WordPiece vocabulary has 859 entries (the config's 2,000 is a cap).
    words = [*tiny_backbone.SPECIAL_TOKENS, *(f"w{i}" for i in range(859 - 5))]
    tokenizer = tiny_backbone.wordpiece_tokenizer({word: i for i, word in enumerate(words)})
    config = tiny_backbone.backbone_config(tiny_backbone.TinySettings(**tiny), tokenizer)
    model = CrossEncoder(AutoModel.from_config(config, attn_implementation=attention))
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=loop.fused_adamw("cpu"))
    rng = np.random.default_rng(0)
    lengths = torch.from_numpy(3 + rng.integers(3, 15, PAIRS) + rng.integers(15, 27, PAIRS))
    width = int(lengths.max())
    queries = PAIRS // 2  # one positive and one negative each, as the demo's stage 1
    batch = length_batches.sort_by_length(
        {
            "input_ids": torch.randint(5, len(words), (PAIRS, width)),
            "attention_mask": (torch.arange(width)[None, :] < lengths[:, None]).long(),
            "token_type_ids": (torch.arange(width)[None, :] >= 12).long().expand(PAIRS, width),
            "mask": torch.ones(queries, 2, dtype=torch.bool),
        },
        chunk,
    )
    targets = torch.tensor([[1.0, 0.0]]).expand(queries, 2)

    def step() -> None:
        loss = losses.infonce(length_batches.score_sorted(model, batch), targets)
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
