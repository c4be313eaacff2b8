"""Scoring a training batch in length-sorted chunks, for one listwise loss.

A query list of 100 passages padded to its longest passage wastes most of the work:
on issue 6's workload (passage lengths gamma(4, 14) words) the padded batch is 2.5x
the real tokens. Sorting the pairs by length and running the model on chunks, each cut
to its own longest pair, leaves ~5% padding. The chunks' scores are put back in the
batch's (queries x passages) layout before the loss, so the loss sees the scores of one
padded pass (to float tolerance), and one backward pass covers every chunk.

The sorting happens where the batch is built (:func:`sort_by_length`, on the CPU), so
scoring (:func:`score_sorted`) needs no value from the device: nothing waits for a GPU.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

#: Pairs per chunk on a CPU for a model of hidden size 256: small enough that neighbours
#: in length order pad little, large enough that each chunk's matrix products stay
#: efficient (16 measured best of 8/16/32 on issue 6's workload, docs/benchmarks.md).
CPU_PAIRS_PER_CHUNK = 16
CPU_REFERENCE_HIDDEN = 256
#: On a GPU, larger chunks keep the device busy (fewer, larger kernels).
GPU_PAIRS_PER_CHUNK = 128
PAIR_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def pairs_per_chunk(device: str | torch.device, hidden_size: int) -> int:
    """Chunk size for a model of ``hidden_size``. A chunk's work per pair grows with the
    square of the hidden size, so narrower models get proportionally more pairs per
    chunk: otherwise per-call overhead outweighs the padding saved (the demo's hidden-64
    model trained at 1,640 pairs/s in chunks of 16, 2,450 unchunked)."""
    if torch.device(device).type == "cuda":
        return GPU_PAIRS_PER_CHUNK
    scale = max(1.0, (CPU_REFERENCE_HIDDEN / hidden_size) ** 2)
    return int(CPU_PAIRS_PER_CHUNK * scale)


def sort_by_length(batch: dict[str, torch.Tensor], pairs_per_chunk: int) -> dict:
    """``batch`` (flat pair tensors, one row per real pair in ``mask`` order, and the
    (queries x passages) ``mask``) with its pairs in order of length, plus ``widths``
    (each chunk's longest pair) and ``gather``: for each (query, passage) cell, the
    position of its pair in length order, or the number of pairs for a padded cell."""
    if pairs_per_chunk < 1:
        raise ValueError(f"pairs_per_chunk must be >= 1, got {pairs_per_chunk}")
    lengths = batch["attention_mask"].sum(dim=1).numpy()
    order = np.argsort(lengths, kind="stable")
    position = np.empty(len(order) + 1, dtype=np.int64)
    position[order] = np.arange(len(order))
    position[-1] = len(order)  # padded cells read the zero appended to the scores
    mask = batch["mask"].numpy()
    cells = np.full(mask.shape, len(order), dtype=np.int64)
    cells[mask] = np.arange(len(order))
    widths = [
        int(lengths[order[start : start + pairs_per_chunk]].max())
        for start in range(0, len(order), pairs_per_chunk)
    ]
    index = torch.from_numpy(order)
    return {
        **batch,
        **{key: batch[key][index] for key in PAIR_KEYS},
        "gather": torch.from_numpy(position[cells]),
        "widths": widths,
        "pairs_per_chunk": pairs_per_chunk,
    }


def score_sorted(model: nn.Module, batch: dict) -> torch.Tensor:
    """Scores of a :func:`sort_by_length` batch in its (queries x passages) layout, padded
    cells 0 (differentiable)."""
    step = batch["pairs_per_chunk"]
    pieces = []
    for chunk, width in enumerate(batch["widths"]):
        rows = slice(chunk * step, (chunk + 1) * step)
        pieces.append(
            model(
                input_ids=batch["input_ids"][rows, :width],
                attention_mask=batch["attention_mask"][rows, :width],
                token_type_ids=batch["token_type_ids"][rows, :width],
            )
        )
    scores = torch.cat([*pieces, pieces[0].new_zeros(1)])
    return scores[batch["gather"]]


class ListScorer(nn.Module):
    """A cross-encoder scoring whole length-sorted training batches in one call, so that
    DistributedDataParallel sees one forward per backward, however many chunks."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict) -> torch.Tensor:
        return score_sorted(self.model, batch)
