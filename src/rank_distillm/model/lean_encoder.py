"""A lean inference pass of the ELECTRA encoder (and of BERT, RoBERTa and XLM-RoBERTa,
whose layers are ELECTRA's) that returns only the ``[CLS]`` vectors.

A cross-encoder reads one vector per pair, so the last layer needs its query, output and
feed-forward projections for ``[CLS]`` alone (keys and values still cover every token):
that skips ~7% of a 12-layer model's work. On a CPU at fp32, linear layers run as oneDNN
kernels with the bias, GELU and residual add fused in (about 15% faster than the MKL
kernels ``torch.nn.functional.linear`` dispatches to on AMD EPYC; see docs/benchmarks.md),
except under portable numerics (:mod:`rank_distillm.model.numerics`): oneDNN's results depend on
the CPU, so the layers then run through MKL as in training.
Everything else is the backbone's own modules and weights, and the result equals
``ElectraModel(...).last_hidden_state[:, 0]`` to float tolerance (tests/test_encoder.py).

Only for inference: training keeps transformers' forward (dropout, autograd).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertModel, ElectraModel, RobertaModel, XLMRobertaModel

from rank_distillm.model.numerics import portable_numerics_enabled


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


def _onednn_applies(x: torch.Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and not portable_numerics_enabled()  # portable numerics fix the kernels: MKL
    )


def _linear(
    x: torch.Tensor,
    layer: nn.Linear,
    gelu: bool = False,
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """``layer(x)``, then GELU or ``+ residual``; fused into one oneDNN call on CPU fp32."""
    if _onednn_applies(x):
        ops, x = torch.ops.mkldnn._linear_pointwise, x.contiguous()
        if residual is not None:
            return ops.binary(x, residual.contiguous(), layer.weight, layer.bias, "add")
        # oneDNN's "gelu" with algorithm "none" is the exact (erf) GELU, as ELECTRA's.
        if gelu:
            return ops(x, layer.weight, layer.bias, "gelu", [], "none")
        return ops(x, layer.weight, layer.bias, "none", [], "")
    y = F.linear(x, layer.weight, layer.bias)
    if gelu:
        return F.gelu(y)
    return y if residual is None else y + residual


def _layer(
    layer: nn.Module,
    queries: torch.Tensor,
    states: torch.Tensor,
    mask: torch.Tensor | None,
    heads: int,
    exact_gelu: bool,
) -> torch.Tensor:
    """One encoder layer for the rows ``queries`` (all of ``states``, or their first token)."""
    attention = layer.attention.self
    batch, length, width = states.shape
    size = width // heads

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.view(batch, x.shape[1], heads, size).transpose(1, 2)

    query = split(_linear(queries, attention.query))
    key = split(_linear(states, attention.key))
    value = split(_linear(states, attention.value))
    context = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
    context = context.transpose(1, 2).reshape(batch, queries.shape[1], width)
    output = layer.attention.output
    hidden = output.LayerNorm(_linear(context, output.dense, residual=queries))
    if exact_gelu:
        inner = _linear(hidden, layer.intermediate.dense, gelu=True)
    else:
        inner = layer.intermediate.intermediate_act_fn(_linear(hidden, layer.intermediate.dense))
    return layer.output.LayerNorm(_linear(inner, layer.output.dense, residual=hidden))


@torch.no_grad()
def cls_vectors(
    backbone: ElectraModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    token_type_ids: torch.Tensor,
) -> torch.Tensor:
    """The final hidden state of the first token of each sequence, shape (batch, hidden)."""
    hidden = backbone.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
    if hasattr(backbone, "embeddings_project"):
        hidden = backbone.embeddings_project(hidden)
    # No mask at all when nothing is padded (as transformers does): SDPA's fastest path.
    mask = None if bool(attention_mask.all()) else attention_mask.bool()[:, None, None, :]
    heads = backbone.config.num_attention_heads
    exact_gelu = backbone.config.hidden_act == "gelu"  # transformers' "gelu" is the erf form
    *layers, last = backbone.encoder.layer
    for layer in layers:
        hidden = _layer(layer, hidden, hidden, mask, heads, exact_gelu)
    return _layer(last, hidden[:, :1], hidden, mask, heads, exact_gelu)[:, 0]
