"""Tests for rank_distillm.model.lean_encoder: the lean [CLS]-only inference pass must give
transformers' ELECTRA output to float tolerance, padded or not, at fp32 and under bf16."""

from __future__ import annotations

import os
from collections.abc import Iterator

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import ElectraConfig, ElectraModel  # noqa: E402

from rank_distillm.model import kernel_choice  # noqa: E402
from rank_distillm.model import lean_encoder as encoder  # noqa: E402
from rank_distillm.model.cross_encoder import CrossEncoder  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(autouse=True)
def no_remembered_choices() -> Iterator[None]:
    """Each test measures its own kernel choice (choices are remembered per process)."""
    kernel_choice.forget()
    yield
    kernel_choice.forget()


def electra(**overrides: object) -> ElectraModel:
    settings = dict(
        vocab_size=50,
        embedding_size=12,  # != hidden: the embeddings_project path
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=40,
    )
    settings.update(overrides)
    torch.manual_seed(0)
    return ElectraModel(ElectraConfig(**settings)).eval()


def padded_batch() -> dict[str, torch.Tensor]:
    """Four pairs of lengths 9, 5, 12, 3 padded to 12, segments 0 then 1."""
    generator = torch.Generator().manual_seed(1)
    lengths = [9, 5, 12, 3]
    input_ids = torch.randint(5, 50, (4, 12), generator=generator)
    attention_mask = torch.zeros(4, 12, dtype=torch.long)
    token_type_ids = torch.zeros(4, 12, dtype=torch.long)
    for row, n in enumerate(lengths):
        attention_mask[row, :n] = 1
        token_type_ids[row, n // 2 : n] = 1
        input_ids[row, n:] = 0
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
    }


def reference(backbone: ElectraModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.inference_mode():
        return backbone(**batch).last_hidden_state[:, 0]


@pytest.mark.parametrize("hidden_act", ["gelu", "relu"])
def test_cls_vectors_equal_transformers_on_a_padded_batch(hidden_act: str) -> None:
    backbone = electra(hidden_act=hidden_act)
    batch = padded_batch()
    expected = reference(backbone, batch)
    with torch.inference_mode():
        got = encoder.cls_vectors(backbone, **batch)
    assert got.shape == (4, 16)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # Each row is that pair alone: padding changes nothing.
    for row in range(4):
        n = int(batch["attention_mask"][row].sum())
        alone = {key: value[row : row + 1, :n] for key, value in batch.items()}
        with torch.inference_mode():
            single = encoder.cls_vectors(backbone, **alone)
        torch.testing.assert_close(single[0], expected[row], rtol=1e-5, atol=1e-5)


def test_the_last_layer_reads_the_tokens_through_the_cls_query() -> None:
    """The last layer projects no keys or values (``_cls_layer``). Under the default
    initialisation attention is nearly uniform and the biases are zero, which would hide a
    wrong scale, a wrong key bias or a lost value bias; here attention is sharp and every
    bias of the last layer's attention is drawn at random."""
    backbone = electra(initializer_range=1.0, attn_implementation="eager")
    attention = backbone.encoder.layer[-1].attention.self
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for projection in (attention.query, attention.key, attention.value):
            projection.bias.copy_(torch.randn(projection.bias.shape, generator=generator))
    batch = padded_batch()
    with torch.inference_mode():
        outputs = backbone(**batch, output_attentions=True)
        got = encoder.cls_vectors(backbone, **batch)
    cls_attention = outputs.attentions[-1][:, :, 0]  # (batch, heads, length)
    # Uniform attention over these 3-12 tokens would give each head a largest weight of
    # 0.08-0.33; here they average 0.54.
    assert cls_attention.max(dim=-1).values.mean() > 0.4
    torch.testing.assert_close(got, outputs.last_hidden_state[:, 0], rtol=1e-5, atol=1e-5)


def test_cls_vectors_without_padding_and_without_projection() -> None:
    backbone = electra(embedding_size=16)
    assert not hasattr(backbone, "embeddings_project")
    batch = {key: value[2:3] for key, value in padded_batch().items()}  # the full-length row
    assert bool(batch["attention_mask"].all())
    with torch.inference_mode():
        got = encoder.cls_vectors(backbone, **batch)
    torch.testing.assert_close(got, reference(backbone, batch), rtol=1e-5, atol=1e-5)


def test_cls_vectors_under_bf16_autocast_match_transformers_under_bf16() -> None:
    backbone = electra()
    batch = padded_batch()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = backbone(**batch).last_hidden_state[:, 0].float()
        got = encoder.cls_vectors(backbone, **batch).float()
    # Same bf16 matmuls in both; the fp32 result differs from either by far more.
    torch.testing.assert_close(got, expected, rtol=0.02, atol=0.02)
    assert (got - reference(backbone, batch)).abs().max() > 1e-4


def test_cross_encoder_uses_the_lean_pass_only_without_autograd() -> None:
    backbone = electra(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = CrossEncoder(backbone)
    batch = padded_batch()
    calls = []
    original = encoder.cls_vectors

    def spy(*args: object, **kwargs: object) -> torch.Tensor:
        calls.append(1)
        return original(*args, **kwargs)

    encoder.cls_vectors, saved = spy, encoder.cls_vectors
    try:
        with torch.inference_mode():
            lean = model(**batch)
        assert calls == [1]
        trained = model(**batch)  # autograd on: transformers' forward, differentiable
        assert calls == [1]
        trained.sum().backward()
    finally:
        encoder.cls_vectors = saved
    assert model.linear.weight.grad is not None
    torch.testing.assert_close(lean, trained.detach(), rtol=1e-5, atol=1e-5)


def test_supports_only_plain_electra_encoders() -> None:
    assert encoder.supports(electra())
    assert not encoder.supports(electra(position_embedding_type="relative_key"))
    assert not encoder.supports(torch.nn.Linear(2, 2))


def available(precision: str) -> tuple[str, ...]:
    """The kernels this CPU offers the lean pass at ``precision``."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        return encoder.candidates(torch.ones(2, 16))


@pytest.mark.parametrize(
    ("precision", "linear"),
    [("fp32", "aten"), ("fp32", "onednn"), ("bf16", "aten"), ("bf16", "onednn-bf16")],
)
def test_every_kernel_gives_transformers_output(precision: str, linear: str) -> None:
    """At fp32 to 1e-5; under bf16 autocast against transformers' own bf16 forward."""
    if linear not in available(precision):
        pytest.skip(f"{linear} kernels are not available at {precision} on this CPU")
    backbone = electra()
    batch = padded_batch()
    bf16 = precision == "bf16"
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        expected = backbone(**batch).last_hidden_state[:, 0].float()
        got = encoder.cls_vectors(backbone, **batch, linear=linear).float()
    tolerance = 0.02 if bf16 else 1e-5
    torch.testing.assert_close(got, expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize(("precision", "linear"), [("fp32", "onednn"), ("bf16", "onednn-bf16")])
def test_packed_weights_follow_weights_changed_in_place(precision: str, linear: str) -> None:
    """oneDNN's kernels run on copies of the weights, packed once: after an update in place
    (a training step, ``load_state_dict``) the next pass must use the new weights."""
    if linear not in available(precision):
        pytest.skip(f"{linear} kernels are not available at {precision} on this CPU")
    backbone = electra()
    batch = padded_batch()
    bf16 = precision == "bf16"
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        before = encoder.cls_vectors(backbone, **batch, linear=linear).float()
        with torch.no_grad():
            for parameter in backbone.encoder.parameters():
                parameter.mul_(-1.5)
        after = encoder.cls_vectors(backbone, **batch, linear=linear).float()
        with torch.inference_mode():
            expected = backbone(**batch).last_hidden_state[:, 0].float()
    tolerance = 0.02 if bf16 else 1e-5
    torch.testing.assert_close(after, expected, rtol=tolerance, atol=tolerance)
    assert not torch.allclose(before, after, atol=0.1)


@pytest.mark.parametrize("unpadded", [True, False])
def test_lengths_padded_to_a_multiple_give_the_same_vectors(
    monkeypatch: pytest.MonkeyPatch, unpadded: bool
) -> None:
    """The padding the bf16 kernels add (to 16 positions) is masked away: here ATen's fp32
    kernels pad 12 (or, with nothing padded, 3) positions to 16, to 1e-5 of transformers."""
    monkeypatch.setitem(encoder.LENGTH_MULTIPLE, "aten", 16)
    backbone = electra()
    batch = padded_batch()
    if unpadded:  # no mask at all: the padding must bring its own
        batch = {key: value[:, :3] for key, value in batch.items()}
        batch["attention_mask"][:] = 1
    with torch.inference_mode():
        got = encoder.cls_vectors(backbone, **batch, linear="aten")
    torch.testing.assert_close(got, reference(backbone, batch), rtol=1e-5, atol=1e-5)
    hidden, mask = encoder._padded(torch.ones(2, 3, 4), None, 16)
    assert hidden.shape == (2, 16, 4) and hidden[:, 3:].abs().sum() == 0
    assert mask.shape == (2, 1, 1, 16) and mask[..., :3].all() and not mask[..., 3:].any()


def test_the_chosen_kernels_are_measured_once_logged_and_give_the_reference(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backbone = electra()
    batch = padded_batch()
    logger = "rank_distillm.model.kernel_choice"
    with caplog.at_level("INFO", logger=logger), torch.inference_mode():
        got = encoder.cls_vectors(backbone, **batch)
        again = encoder.cls_vectors(backbone, **batch)
    torch.testing.assert_close(got, reference(backbone, batch), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(again, got, rtol=0, atol=0)
    names = available("fp32")
    key = "ELECTRA layer 16/32/2 heads, torch.float32, 1 threads"
    if len(names) == 1:  # nothing to choose from: nothing timed
        assert kernel_choice.chosen() == {} and caplog.records == []
        return
    assert kernel_choice.chosen()[key] in names
    (record,) = caplog.records  # the second batch reuses the choice
    assert record.getMessage().startswith(f"re-ranking's linear kernels for {key}: ")


def test_the_choice_is_made_by_timing_on_the_first_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the timing says wins: here a fake clock makes ATen's kernels faster."""
    if len(available("fp32")) == 1:
        pytest.skip("one kernel on this CPU: nothing to choose")
    slow = {"onednn": 1.0, "aten": 0.001}
    now = [0.0]

    def clocked(name: str):
        kernels = encoder.LINEARS[name]

        def run(*args: object) -> torch.Tensor:
            now[0] += slow[name] / 6  # six linear layers per encoder layer
            return kernels(*args)

        return run

    monkeypatch.setattr(encoder, "LINEARS", {name: clocked(name) for name in slow})
    for clock in ("perf_counter", "thread_time"):  # wall time on threads, CPU time on one
        monkeypatch.setattr(encoder.time, clock, lambda: now[0])
    backbone = electra()
    batch = padded_batch()
    with torch.inference_mode():
        got = encoder.cls_vectors(backbone, **batch)
    assert list(kernel_choice.chosen().values()) == ["aten"]
    torch.testing.assert_close(got, reference(backbone, batch), rtol=1e-5, atol=1e-5)
