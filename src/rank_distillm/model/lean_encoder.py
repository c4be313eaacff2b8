"""A lean inference pass of the ELECTRA encoder (and of BERT, RoBERTa and XLM-RoBERTa,
whose layers are ELECTRA's) that returns only the ``[CLS]`` vectors.

A cross-encoder reads one vector per pair, so the last layer needs its query, output and
feed-forward projections for ``[CLS]`` alone, and its key and value projections not at
all (:func:`_cls_layer` reads the tokens through the ``[CLS]`` query instead): that skips
~8% of a 12-layer model's work.

The linear layers, most of the work, can run several ways (:data:`LINEARS`): through
ATen (``torch.nn.functional.linear``: MKL at fp32, autocast's kernel under bf16
autocast), as oneDNN kernels with the bias, GELU and residual add fused in, and under
bf16 autocast as oneDNN bf16 kernels (AVX512-BF16, AMX) on bf16 copies of the weights
made once, without autocast's casts on every call, on batches padded to a multiple of 16
positions (:data:`LENGTH_MULTIPLE`). oneDNN's weights are reordered once into its blocked
layout, not on every call. Which is fastest depends on the CPU
(oneDNN's fused fp32 kernels beat MKL on an AMD EPYC; on an Intel Xeon MKL's AVX-512
GEMM is as fast), so the first batch of each shape of model, precision and thread count
times the candidates on its own first layer (:mod:`rank_distillm.model.kernel_choice`)
and the fastest runs from then on. Under portable numerics
(:mod:`rank_distillm.model.numerics`) nothing is measured: oneDNN's results depend on
the CPU, so the layers run through MKL, as in training; portable numerics win over speed.
Everything else is the backbone's own modules and weights, and the result equals
``ElectraModel(...).last_hidden_state[:, 0]`` to float tolerance with every candidate
(tests/test_encoder.py).

Only for inference: training keeps transformers' forward (dropout, autograd).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.weak import WeakIdKeyDictionary
from transformers import BertModel, ElectraModel, RobertaModel, XLMRobertaModel

from rank_distillm.model import kernel_choice
from rank_distillm.model.numerics import portable_numerics_enabled

Linear = Callable[..., torch.Tensor]
#: Tokens of the first batch each candidate is timed on (one layer): ~1-2 ms a call for
#: ELECTRA-small on 2 cores. With 1,024, fresh processes on the Xeon timed oneDNN's bf16
#: kernels at 3.4 ms instead of 1.8 in 4 of 8 and chose the slower ATen (the whole
#: pass was not slower); with 512, 8 of 8 chose right, in half the time (33 ms).
SAMPLE_TOKENS = 512
_PACKED = {dtype: WeakIdKeyDictionary() for dtype in (torch.float32, torch.bfloat16)}
_BF16_BIASES: WeakIdKeyDictionary = WeakIdKeyDictionary()
_reorder = getattr(torch.ops.mkldnn, "_reorder_linear_weight", None)


def supports(backbone: nn.Module) -> bool:
    """Whether :func:`cls_vectors` reproduces this backbone: a plain ELECTRA encoder, or a
    BERT-layered one (DeBERTa and ModernBERT run their own forward)."""
    config = getattr(backbone, "config", None)
    return (
        isinstance(backbone, (ElectraModel, BertModel, RobertaModel, XLMRobertaModel))
        and getattr(config, "position_embedding_type", "absolute") == "absolute"
        and not config.is_decoder
        and not config.chunk_size_feed_forward
    )


def _aten(x: torch.Tensor, layer: nn.Linear, gelu: bool, residual: torch.Tensor | None):
    """``layer(x)``, then GELU or ``+ residual``, as transformers computes them."""
    y = F.linear(x, layer.weight, layer.bias)
    if gelu:
        return F.gelu(y)
    return y if residual is None else y + residual


def _onednn(x: torch.Tensor, layer: nn.Linear, gelu: bool, residual: torch.Tensor | None):
    """One oneDNN call with the bias and the GELU or residual add fused in."""
    return _fused(x.contiguous(), _packed(layer.weight, x.dtype), layer.bias, gelu, residual)


def _onednn_bf16(x: torch.Tensor, layer: nn.Linear, gelu: bool, residual: torch.Tensor | None):
    """:func:`_onednn` in bf16, on bf16 copies of the weights kept between calls."""
    residual = None if residual is None else residual.to(torch.bfloat16)
    bias = layer.bias
    if bias is not None:
        bias = _cached(bias, _BF16_BIASES, lambda b: b.to(torch.bfloat16))
    weight = _packed(layer.weight, torch.bfloat16)
    return _fused(x.to(torch.bfloat16).contiguous(), weight, bias, gelu, residual)


def _fused(x, weight, bias, gelu: bool, residual: torch.Tensor | None) -> torch.Tensor:
    ops = torch.ops.mkldnn._linear_pointwise
    if residual is not None:
        return ops.binary(x, residual.contiguous(), weight, bias, "add")
    # oneDNN's "gelu" with algorithm "none" is the exact (erf) GELU, as ELECTRA's.
    if gelu:
        return ops(x, weight, bias, "gelu", [], "none")
    return ops(x, weight, bias, "none", [], "")


def _packed(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``weight`` in ``dtype`` and in oneDNN's blocked layout, which its kernels would
    otherwise reorder it into on every call: the same results, 3-10% faster on a Xeon
    (fp32 and bf16, measured on ELECTRA-small's layers)."""
    return _cached(weight, _PACKED[dtype], lambda w: _reorder(w.to(dtype)))


def _cached(tensor: torch.Tensor, cache: WeakIdKeyDictionary, make: Callable) -> torch.Tensor:
    """``make(tensor)``, made once and again only after ``tensor`` changed in place."""
    version = 0 if tensor.is_inference() else tensor._version
    cached = cache.get(tensor)
    if cached is None or cached[0] != version:
        cached = (version, make(tensor.detach()))
        cache[tensor] = cached
    return cached[1]


#: The ways to run a linear layer; :func:`candidates` says which apply.
LINEARS: dict[str, Linear] = {"aten": _aten, "onednn": _onednn, "onednn-bf16": _onednn_bf16}
#: Candidates that pad each batch's length to a multiple (masked, so the ``[CLS]`` vectors
#: are the same): AMX works on tiles of 16 rows, CPU flash attention on blocks, and
#: oneDNN builds a kernel for each new shape (~10 ms each on a Xeon), which a short run of
#: batches of many lengths otherwise pays for every batch.
LENGTH_MULTIPLE: dict[str, int] = {"onednn-bf16": 16}


def candidates(x: torch.Tensor) -> tuple[str, ...]:
    """The names in :data:`LINEARS` that compute the linear layers of ``x``'s pass
    (first: the default where timings tie)."""
    onednn = (
        x.device.type == "cpu"
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        and _reorder is not None
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and not portable_numerics_enabled()  # portable numerics fix the kernels: MKL
    )
    if not onednn:
        return ("aten",)
    if torch.is_autocast_enabled("cpu"):
        bf16 = torch.get_autocast_dtype("cpu") == torch.bfloat16
        if bf16 and torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return ("onednn-bf16", "aten")
        return ("aten",)
    return ("onednn", "aten") if x.dtype == torch.float32 else ("aten",)


def _padded(
    hidden: torch.Tensor, mask: torch.Tensor | None, multiple: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``hidden`` with zero positions appended up to a multiple of ``multiple``, and the
    attention mask that hides them."""
    batch, length = hidden.shape[:2]
    extra = -length % multiple
    if extra == 0:
        return hidden, mask
    if mask is None:
        mask = torch.ones(batch, 1, 1, length, dtype=torch.bool, device=hidden.device)
    return F.pad(hidden, (0, 0, 0, extra)), F.pad(mask, (0, extra), value=False)


def _layer(
    layer: nn.Module,
    states: torch.Tensor,
    mask: torch.Tensor | None,
    heads: int,
    exact_gelu: bool,
    linear: Linear,
) -> torch.Tensor:
    """One encoder layer for every token of ``states``."""
    attention = layer.attention.self
    batch, length, width = states.shape
    size = width // heads

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.view(batch, length, heads, size).transpose(1, 2)

    query = split(linear(states, attention.query, False, None))
    key = split(linear(states, attention.key, False, None))
    value = split(linear(states, attention.value, False, None))
    context = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
    # Each tensor is dropped once used, so the allocator hands its (cache-warm) memory to
    # the next one instead of mapping fresh pages: in 11 fresh processes on the Xeon, an
    # fp32 call faulted in 146,000-182,000 pages every time, against 164,000-530,000
    # (4.54 s against 4.71 s on average) when the layer held them to its end.
    del query, key, value
    context = context.transpose(1, 2).reshape(batch, length, width)
    return _after_attention(layer, context, states, exact_gelu, linear)


def _cls_layer(
    layer: nn.Module,
    states: torch.Tensor,
    mask: torch.Tensor | None,
    heads: int,
    exact_gelu: bool,
    linear: Linear,
) -> torch.Tensor:
    """The last encoder layer for the first token of ``states`` alone, shape (batch, 1, width).

    Its attention needs no key or value projection of the tokens: per head, the score
    ``q · (W_k h + b_k)`` is ``(W_kᵀ q) · h`` plus ``q · b_k``, the same for every token and
    so lost in the softmax, and the weighted values ``Σ p (W_v h + b_v)`` are
    ``W_v (Σ p h) + b_v`` since the weights ``p`` sum to 1. Two small products per
    sequence replace two projections of every token (1-2% of the fp32 pass on the
    benchmark's workload); the result is the same to float rounding."""
    attention = layer.attention.self
    batch, _, width = states.shape
    size = width // heads
    cls = states[:, :1]
    query = linear(cls, attention.query, False, None).view(batch, heads, size)
    keys = attention.key.weight.view(heads, size, width)
    folded = torch.einsum("bhd,hdw->bhw", query, keys) * size**-0.5
    scores = torch.bmm(folded, states.transpose(1, 2))  # (batch, heads, length)
    if mask is not None:
        scores = scores.masked_fill(~mask[:, 0], float("-inf"))
    pooled = torch.bmm(torch.softmax(scores, dim=-1), states)  # (batch, heads, width)
    values = attention.value.weight.view(heads, size, width)
    context = torch.einsum("bhw,hdw->bhd", pooled, values).reshape(batch, 1, width)
    if attention.value.bias is not None:
        context = context + attention.value.bias
    return _after_attention(layer, context, cls, exact_gelu, linear)


def _after_attention(
    layer: nn.Module,
    context: torch.Tensor,
    residual: torch.Tensor,
    exact_gelu: bool,
    linear: Linear,
) -> torch.Tensor:
    """The attention's output projection and the feed-forward block, each with its
    residual add and layer norm."""
    output = layer.attention.output
    hidden = linear(context, output.dense, False, residual)
    hidden = output.LayerNorm(hidden)
    if exact_gelu:
        inner = linear(hidden, layer.intermediate.dense, True, None)
    else:
        inner = layer.intermediate.intermediate_act_fn(
            linear(hidden, layer.intermediate.dense, False, None)
        )
    hidden = linear(inner, layer.output.dense, False, hidden)
    del inner
    return layer.output.LayerNorm(hidden)


def choose_linear(
    backbone: ElectraModel, hidden: torch.Tensor, mask: torch.Tensor | None, exact_gelu: bool
) -> str:
    """The fastest of :func:`candidates` for this backbone's layers, timed once per
    process, shape of model, precision and thread count on the first layer of (up to
    :data:`SAMPLE_TOKENS` tokens of) the first batch, by its CPU time on one thread and
    by wall-clock time on several."""
    names = candidates(hidden)
    if len(names) == 1:
        return names[0]
    config = backbone.config
    precision = "bf16 autocast" if torch.is_autocast_enabled("cpu") else str(hidden.dtype)
    key = (
        f"ELECTRA layer {config.hidden_size}/{config.intermediate_size}/"
        f"{config.num_attention_heads} heads, {precision}, {torch.get_num_threads()} threads"
    )
    rows = max(1, SAMPLE_TOKENS // hidden.shape[1])
    sample = hidden[:rows]
    sample_mask = None if mask is None else mask[:rows]
    first = backbone.encoder.layer[0]
    heads = config.num_attention_heads
    runs = {}
    for name in names:
        padded, padded_mask = _padded(sample, sample_mask, LENGTH_MULTIPLE.get(name, 1))
        runs[name] = partial(_layer, first, padded, padded_mask, heads, exact_gelu, LINEARS[name])
    # On one thread, its CPU time: what the kernels cost, whatever the neighbours do.
    clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter
    return kernel_choice.fastest(key, runs, what="re-ranking's linear kernels", clock=clock)


@torch.no_grad()
def cls_vectors(
    backbone: ElectraModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    token_type_ids: torch.Tensor,
    linear: str | None = None,
) -> torch.Tensor:
    """The final hidden state of the first token of each sequence, shape (batch, hidden).

    ``linear`` names the kernels of :data:`LINEARS` to use; by default the fastest
    measured (:func:`choose_linear`)."""
    hidden = backbone.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
    if hasattr(backbone, "embeddings_project"):
        hidden = backbone.embeddings_project(hidden)
    # No mask at all when nothing is padded (as transformers does): SDPA's fastest path.
    mask = None if bool(attention_mask.all()) else attention_mask.bool()[:, None, None, :]
    heads = backbone.config.num_attention_heads
    exact_gelu = backbone.config.hidden_act == "gelu"  # transformers' "gelu" is the erf form
    linear = linear or choose_linear(backbone, hidden, mask, exact_gelu)
    hidden, mask = _padded(hidden, mask, LENGTH_MULTIPLE.get(linear, 1))
    kernels = LINEARS[linear]
    *layers, last = backbone.encoder.layer
    for layer in layers:
        hidden = _layer(layer, hidden, mask, heads, exact_gelu, kernels)
    return _cls_layer(last, hidden, mask, heads, exact_gelu, kernels)[:, 0]
