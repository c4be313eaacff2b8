"""Tests for rank_distillm.model: the cross-encoder, its pair batches and its checkpoints in
lightning-ir's layout (as published for ``webis/monoelectra-base``)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import json  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import ElectraModel, PreTrainedTokenizerBase  # noqa: E402

from rank_distillm.model.checkpoints import load_cross_encoder, save_cross_encoder
from rank_distillm.model.cross_encoder import CrossEncoder
from rank_distillm.model.pair_encoder import PairEncoder
from tests.helpers import (  # noqa: E402
    TINY,
    negative_text,
    query_text,
    read_tensors,
    relevant_text,
)

PAIRS = [
    (query_text(0), relevant_text(0)),
    (query_text(1), negative_text(1, 2)),
    ("what is the capital city of france", "paris is the capital and largest city of france"),
    ("fox", "the quick brown fox jumps over the lazy dog"),
]
LIGHTNING_IR_CONFIG = {
    "model_type": "mono",
    "architectures": ["MonoElectraModel"],
    "backbone_model_type": "electra",
    "query_length": 10,
    "doc_length": 20,
    "pooling_strategy": "first",
    "linear_bias": True,
    "scoring_strategy": "rank",
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


pytestmark = pytest.mark.usefixtures("torch_single_thread")


def scores(model: CrossEncoder, encoder: PairEncoder) -> torch.Tensor:
    queries, docs = zip(*PAIRS, strict=True)
    batch = encoder.collate(encoder.query_ids(queries), encoder.doc_ids(docs))
    model.eval()
    with torch.inference_mode():
        return model(**batch)


def published_checkpoint(
    backbone_dir: Path, out_dir: Path, head: dict[str, torch.Tensor], **config: object
) -> Path:
    """A hand-made stand-in for a lightning-ir checkpoint: the backbone's ELECTRA config
    plus lightning-ir's keys, backbone keys without prefix plus ``linear.*``."""
    out_dir.mkdir(parents=True)
    electra = json.loads((backbone_dir / "config.json").read_text())
    electra.pop("architectures", None)
    (out_dir / "config.json").write_text(
        json.dumps({**electra, **LIGHTNING_IR_CONFIG, **config}, indent=2)
    )
    state = dict(ElectraModel.from_pretrained(str(backbone_dir)).state_dict())
    state.update({f"linear.{key}": value for key, value in head.items()})
    save_file({k: v.contiguous() for k, v in state.items()}, str(out_dir / "model.safetensors"))
    for name in TOKENIZER_FILES:
        shutil.copy(backbone_dir / name, out_dir / name)
    return out_dir


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("linear_bias", [True, False])
def test_checkpoint_round_trip_gives_identical_scores(
    backbone_dir: Path, tmp_path: Path, linear_bias: bool
) -> None:
    model, tokenizer = load_cross_encoder(
        str(backbone_dir), query_length=8, doc_length=16, linear_bias=linear_bias
    )
    # A head that is not the fresh initialisation, so the round trip has to carry it.
    with torch.no_grad():
        model.linear.weight.copy_(torch.linspace(-1.0, 1.0, TINY.hidden_size)[None])
        if linear_bias:
            model.linear.bias.fill_(0.25)
    save_cross_encoder(model, tokenizer, tmp_path / "ckpt")
    loaded, loaded_tokenizer = load_cross_encoder(str(tmp_path / "ckpt"))

    assert (loaded.query_length, loaded.doc_length) == (8, 16)
    assert (loaded.linear.bias is not None) is linear_bias
    assert torch.equal(loaded.linear.weight, model.linear.weight)
    before = scores(model, PairEncoder(tokenizer, 8, 16))
    after = scores(loaded, PairEncoder(loaded_tokenizer, 8, 16))
    assert before.shape == (len(PAIRS),)
    assert torch.equal(before, after)
    # Not a constant: the scores depend on the pair.
    assert len(set(before.tolist())) == len(PAIRS)


def test_lengths_given_at_load_override_the_checkpoint(backbone_dir: Path, tmp_path: Path) -> None:
    model, tokenizer = load_cross_encoder(str(backbone_dir), query_length=8, doc_length=16)
    save_cross_encoder(model, tokenizer, tmp_path / "ckpt")
    loaded, _ = load_cross_encoder(str(tmp_path / "ckpt"), query_length=5, doc_length=7)
    assert (loaded.query_length, loaded.doc_length) == (5, 7)
    loaded, _ = load_cross_encoder(str(tmp_path / "ckpt"), doc_length=7)
    assert (loaded.query_length, loaded.doc_length) == (8, 7)


def test_saved_layout_is_lightning_irs(backbone_dir: Path, tmp_path: Path) -> None:
    model, tokenizer = load_cross_encoder(str(backbone_dir), query_length=12, doc_length=48)
    out = tmp_path / "ckpt"
    save_cross_encoder(model, tokenizer, out)

    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "mono"
    assert config["architectures"] == ["MonoElectraModel"]
    assert config["backbone_model_type"] == "electra"
    assert config["query_length"] == 12
    assert config["doc_length"] == 48
    assert config["pooling_strategy"] == "first"
    assert config["linear_bias"] is True
    assert config["scoring_strategy"] == "rank"
    # The ELECTRA part of the config is the backbone's.
    assert config["hidden_size"] == TINY.hidden_size
    assert config["num_hidden_layers"] == TINY.num_hidden_layers
    assert config["max_position_embeddings"] == TINY.max_position_embeddings
    assert config["vocab_size"] == len(tokenizer)

    tensors = read_tensors(out)
    backbone_keys = set(ElectraModel.from_pretrained(str(backbone_dir)).state_dict())
    assert set(tensors) == backbone_keys | {"linear.weight", "linear.bias"}
    assert not [key for key in tensors if key.startswith("electra.")]
    assert "embeddings.word_embeddings.weight" in tensors
    assert "encoder.layer.0.attention.self.query.weight" in tensors
    assert tensors["linear.weight"].shape == (1, TINY.hidden_size)
    assert tensors["linear.bias"].shape == (1,)
    assert torch.equal(tensors["linear.weight"], model.linear.weight.detach())
    assert torch.equal(
        tensors["embeddings.word_embeddings.weight"],
        model.backbone.embeddings.word_embeddings.weight.detach(),
    )
    for name in TOKENIZER_FILES:
        assert (out / name).is_file()


def test_save_without_bias_writes_no_bias_key(backbone_dir: Path, tmp_path: Path) -> None:
    model, tokenizer = load_cross_encoder(str(backbone_dir), linear_bias=False)
    save_cross_encoder(model, tokenizer, tmp_path / "ckpt")
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["linear_bias"] is False
    tensors = read_tensors(tmp_path / "ckpt")
    assert "linear.weight" in tensors
    assert "linear.bias" not in tensors


# --------------------------------------------------------------------------- published checkpoints


def test_published_checkpoint_loads_its_head(backbone_dir: Path, tmp_path: Path) -> None:
    weight = torch.linspace(-0.5, 0.5, TINY.hidden_size)[None]
    bias = torch.tensor([0.75])
    path = published_checkpoint(
        backbone_dir, tmp_path / "published", {"weight": weight, "bias": bias}
    )
    model, tokenizer = load_cross_encoder(str(path))

    assert torch.equal(model.linear.weight.detach(), weight)
    assert torch.equal(model.linear.bias.detach(), bias)
    assert (model.query_length, model.doc_length) == (10, 20)
    backbone = ElectraModel.from_pretrained(str(backbone_dir))
    for key, value in backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key

    # The score is exactly the head on the backbone's [CLS] vector.
    encoder = PairEncoder(tokenizer, 10, 20)
    queries, docs = zip(*PAIRS, strict=True)
    batch = encoder.collate(encoder.query_ids(queries), encoder.doc_ids(docs))
    backbone.eval()
    with torch.inference_mode():
        cls = backbone(**batch).last_hidden_state[:, 0]
    expected = cls @ weight[0] + bias
    torch.testing.assert_close(scores(model, encoder), expected, rtol=1e-6, atol=1e-6)


def test_published_checkpoint_without_bias(backbone_dir: Path, tmp_path: Path) -> None:
    weight = torch.linspace(1.0, 2.0, TINY.hidden_size)[None]
    path = published_checkpoint(
        backbone_dir, tmp_path / "published", {"weight": weight}, linear_bias=False
    )
    model, _ = load_cross_encoder(str(path))
    assert model.linear.bias is None
    assert torch.equal(model.linear.weight.detach(), weight)


def test_unsupported_family_is_refused(backbone_dir: Path, tmp_path: Path) -> None:
    path = published_checkpoint(
        backbone_dir,
        tmp_path / "published",
        {"weight": torch.zeros(1, TINY.hidden_size), "bias": torch.zeros(1)},
        backbone_model_type="gpt2",
    )
    with pytest.raises(ValueError, match=r"config\.json: model_type 'gpt2' is not a supported"):
        load_cross_encoder(str(path))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("pooling_strategy", "max", r"pooling_strategy 'max' is not implemented"),
        ("scoring_strategy", "mono", r"scoring_strategy 'mono' is not implemented"),
    ],
)
def test_unimplemented_pooling_or_scoring_is_refused(
    backbone_dir: Path, tmp_path: Path, key: str, value: str, message: str
) -> None:
    """A checkpoint saved with another pooling must not load and score with ``first``."""
    head = {"weight": torch.zeros(1, TINY.hidden_size), "bias": torch.zeros(1)}
    path = published_checkpoint(backbone_dir, tmp_path / "published", head, **{key: value})
    with pytest.raises(ValueError, match=r"published/config\.json: " + message):
        load_cross_encoder(str(path))


def test_mean_pooling_is_written_and_honoured_on_load(backbone_dir: Path, tmp_path: Path) -> None:
    """A mean-pooled checkpoint scores the head on the mean of the unpadded token vectors,
    on both the training (autograd) and the re-ranking path, and keeps its pooling."""
    head = {"weight": torch.linspace(-1.0, 1.0, TINY.hidden_size)[None], "bias": torch.zeros(1)}
    path = published_checkpoint(backbone_dir, tmp_path / "published", head, pooling_strategy="mean")
    model, tokenizer = load_cross_encoder(str(path))
    assert model.pooling == "mean"
    encoder = PairEncoder(tokenizer, 10, 20)
    queries, docs = zip(*PAIRS, strict=True)
    batch = encoder.collate(encoder.query_ids(queries), encoder.doc_ids(docs))
    model.eval()
    with torch.no_grad():
        states = model.backbone(**batch).last_hidden_state
    by_hand = [
        float(head["weight"][0] @ states[row, : int(length)].mean(dim=0))
        for row, length in enumerate(batch["attention_mask"].sum(dim=1))
    ]
    assert scores(model, encoder).tolist() == pytest.approx(by_hand, abs=1e-5)
    assert model(**batch).tolist() == pytest.approx(by_hand, abs=1e-5)  # with autograd
    first = scores(
        load_cross_encoder(str(published_checkpoint(backbone_dir, tmp_path / "first", head)))[0],
        encoder,
    )
    assert not torch.allclose(first, scores(model, encoder))
    save_cross_encoder(model, tokenizer, tmp_path / "again")
    assert json.loads((tmp_path / "again" / "config.json").read_text())["pooling_strategy"] == (
        "mean"
    )
    assert load_cross_encoder(str(tmp_path / "again"))[0].pooling == "mean"


def test_missing_backbone_key_is_refused(backbone_dir: Path, tmp_path: Path) -> None:
    path = published_checkpoint(
        backbone_dir,
        tmp_path / "published",
        {"weight": torch.zeros(1, TINY.hidden_size), "bias": torch.zeros(1)},
    )
    tensors = read_tensors(path)
    del tensors["encoder.layer.0.attention.self.query.weight"]
    save_file(tensors, str(path / "model.safetensors"))
    with pytest.raises(
        ValueError, match=r"model\.safetensors.*encoder\.layer\.0\.attention\.self\.query\.weight"
    ):
        load_cross_encoder(str(path))


def test_unexpected_backbone_key_is_refused(backbone_dir: Path, tmp_path: Path) -> None:
    path = published_checkpoint(
        backbone_dir,
        tmp_path / "published",
        {"weight": torch.zeros(1, TINY.hidden_size), "bias": torch.zeros(1)},
    )
    tensors = read_tensors(path)
    tensors["electra.embeddings.word_embeddings.weight"] = tensors[
        "embeddings.word_embeddings.weight"
    ].clone()
    save_file(tensors, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"model\.safetensors.*unexpected"):
        load_cross_encoder(str(path))


def test_checkpoint_with_saved_position_ids_loads(backbone_dir: Path, tmp_path: Path) -> None:
    weight = torch.linspace(-0.5, 0.5, TINY.hidden_size)[None]
    path = published_checkpoint(
        backbone_dir, tmp_path / "published", {"weight": weight, "bias": torch.zeros(1)}
    )
    tensors = read_tensors(path)
    tensors["embeddings.position_ids"] = torch.arange(TINY.max_position_embeddings)[None]
    save_file(tensors, str(path / "model.safetensors"))
    model, _ = load_cross_encoder(str(path))
    assert torch.equal(model.linear.weight.detach(), weight)


# --------------------------------------------------------------------------- plain backbones


def test_plain_backbone_gets_a_seeded_fresh_head(backbone_dir: Path) -> None:
    assert "backbone_model_type" not in json.loads((backbone_dir / "config.json").read_text())
    first, _ = load_cross_encoder(str(backbone_dir), seed=7)
    again, _ = load_cross_encoder(str(backbone_dir), seed=7)
    other, _ = load_cross_encoder(str(backbone_dir), seed=8)

    assert (first.query_length, first.doc_length) == (32, 256)
    assert first.linear.weight.shape == (1, TINY.hidden_size)
    assert torch.equal(first.linear.weight, again.linear.weight)
    assert torch.equal(first.linear.bias, again.linear.bias)
    assert not torch.equal(first.linear.weight, other.linear.weight)
    assert not torch.equal(first.linear.bias, other.linear.bias)
    # The backbone is the saved one, whatever the seed.
    backbone = ElectraModel.from_pretrained(str(backbone_dir)).state_dict()
    for key, value in other.backbone.state_dict().items():
        assert torch.equal(backbone[key], value), key


def test_plain_backbone_honours_lengths_and_bias(backbone_dir: Path) -> None:
    model, _ = load_cross_encoder(
        str(backbone_dir), query_length=4, doc_length=9, linear_bias=False
    )
    assert (model.query_length, model.doc_length) == (4, 9)
    assert model.linear.bias is None


# --------------------------------------------------------------------------- PairEncoder


@pytest.fixture(scope="module")
def tokenizer(backbone_dir: Path) -> PreTrainedTokenizerBase:
    return load_cross_encoder(str(backbone_dir))[1]


def test_pair_layout_segments_and_padding(tokenizer: PreTrainedTokenizerBase) -> None:
    encoder = PairEncoder(tokenizer, query_length=8, doc_length=16)
    queries = [query_text(0), "fox"]
    docs = [relevant_text(0), "dog"]
    q_ids, d_ids = encoder.query_ids(queries), encoder.doc_ids(docs)
    batch = encoder.collate(q_ids, d_ids)
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids"}

    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    lengths = [len(q) + len(d) + 3 for q, d in zip(q_ids, d_ids, strict=True)]
    assert lengths[0] > lengths[1]
    assert batch["input_ids"].shape == (2, lengths[0])
    for row, (query, doc) in enumerate(zip(q_ids, d_ids, strict=True)):
        n = lengths[row]
        ids = batch["input_ids"][row].tolist()
        assert ids[:n] == [cls, *query, sep, *doc, sep]
        assert ids[n:] == [pad] * (lengths[0] - n)
        assert batch["token_type_ids"][row].tolist() == (
            [0] * (len(query) + 2) + [1] * (len(doc) + 1) + [0] * (lengths[0] - n)
        )
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (lengths[0] - n)
    assert tokenizer.decode(batch["input_ids"][1, : lengths[1]]) == "[CLS] fox [SEP] dog [SEP]"

    # The same ids and segments as the tokenizer's own pair template (what lightning-ir uses).
    reference = tokenizer(queries[0], docs[0])
    assert batch["input_ids"][0].tolist() == reference["input_ids"]
    assert batch["token_type_ids"][0].tolist() == reference["token_type_ids"]


def test_query_and_passage_are_truncated_separately(tokenizer: PreTrainedTokenizerBase) -> None:
    encoder = PairEncoder(tokenizer, query_length=8, doc_length=16)
    long_query = " ".join(["apple"] * 50)
    long_doc = " ".join(["banana"] * 500)
    q_ids, d_ids = encoder.query_ids([long_query, "fox"]), encoder.doc_ids([long_doc, "dog"])
    assert len(q_ids[0]) == 8
    assert len(d_ids[0]) == 16
    # The first tokens are kept.
    full_query = tokenizer(long_query, add_special_tokens=False)["input_ids"]
    assert len(full_query) >= 50
    assert q_ids[0] == full_query[:8]

    batch = encoder.collate(q_ids, d_ids)
    assert batch["input_ids"].shape[1] == 1 + 8 + 1 + 16 + 1
    assert batch["attention_mask"][0].sum().item() == 27
    assert batch["token_type_ids"][0].tolist() == [0] * 10 + [1] * 17
    assert batch["input_ids"][0, 9].item() == tokenizer.sep_token_id
    assert batch["input_ids"][0, 26].item() == tokenizer.sep_token_id


def test_tokenizer_settings_neither_change_the_ids_nor_are_changed(
    tokenizer: PreTrainedTokenizerBase, backbone_dir: Path
) -> None:
    """The encoder sets the shared Rust tokenizer up for each call (no copy of it) and
    puts back whatever padding and truncation its owner had set."""
    clean = PairEncoder(tokenizer, query_length=8, doc_length=16)
    texts = [" ".join(["apple"] * 50), "fox", "dog jumps"]
    expected = clean.query_ids(texts), clean.doc_ids(texts), clean.format
    assert [len(ids) for ids in expected[0]] == [8, 1, 2]

    configured = load_cross_encoder(str(backbone_dir))[1]
    backend = configured.backend_tokenizer
    backend.enable_padding(pad_id=0, length=40)
    backend.enable_truncation(3, direction="left")
    settings = backend.padding, backend.truncation
    encoder = PairEncoder(configured, query_length=8, doc_length=16)
    assert (encoder.query_ids(texts), encoder.doc_ids(texts), encoder.format) == expected
    assert (backend.padding, backend.truncation) == settings
    assert settings[0]["length"] == 40 and settings[1]["max_length"] == 3


def test_collate_rejects_unpaired_lists(tokenizer: PreTrainedTokenizerBase) -> None:
    encoder = PairEncoder(tokenizer, query_length=8, doc_length=16)
    with pytest.raises(ValueError):
        encoder.collate([[5], [6]], [[7]])


# --------------------------------------------------------------------------- freezing


def test_freeze_position_embeddings(backbone_dir: Path) -> None:
    model, _ = load_cross_encoder(str(backbone_dir))
    embeddings = model.backbone.embeddings
    assert embeddings.position_embeddings.weight.requires_grad
    model.freeze_position_embeddings()
    assert not embeddings.position_embeddings.weight.requires_grad
    assert embeddings.word_embeddings.weight.requires_grad
    assert embeddings.token_type_embeddings.weight.requires_grad
    assert model.linear.weight.requires_grad
    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    assert frozen == ["backbone.embeddings.position_embeddings.weight"]


# --------------------------------------------------------------------------- long documents


class RecordingEncoder(PairEncoder):
    """Records the length of every text handed to the tokenizer."""

    def _encode(self, texts: list[str], max_length: int) -> list[list[int]]:
        self.seen.extend(len(text) for text in texts)
        return super()._encode(texts, max_length)


def full_tokenisation(tokenizer: PreTrainedTokenizerBase, text: str, n: int) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"][:n]


def test_long_documents_are_cut_before_tokenising_with_identical_ids(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    words = ["apple", "banana", "cherry", "the", "quick", "brown", "fox", "unknownish", "."]
    long_doc = " ".join(words[(i * 7) % len(words)] for i in range(20_000))[:100_000]
    assert len(long_doc) == 100_000
    odd_spaces = "fox  jumps\tover\n the   lazy dog " * 3_000  # tabs, newlines, double spaces
    docs = [long_doc, odd_spaces, "short passage", ""]
    encoder = RecordingEncoder(tokenizer, query_length=8, doc_length=64)
    object.__setattr__(encoder, "seen", [])
    ids = encoder.doc_ids(docs)
    for text, row in zip(docs, ids, strict=True):
        assert row == full_tokenisation(tokenizer, text, 64)
    assert len(ids[0]) == len(ids[1]) == 64
    # The tokenizer never saw more than the bound for the long ones.
    assert max(encoder.seen) <= 10 * 64


def test_texts_the_cut_would_change_are_tokenised_whole(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    n = 16
    unspaced = "banana" * 2_000  # no space to cut at
    spaces_first = " " * 5_000 + "fox " * 100  # the words start past the bound
    long_words = ("x" * 150 + " ") * 50 + "fox " * 100  # 1 [UNK] per 151 characters
    docs = [unspaced, spaces_first, long_words]
    encoder = RecordingEncoder(tokenizer, query_length=n, doc_length=n)
    object.__setattr__(encoder, "seen", [])
    ids = encoder.doc_ids(docs)
    for text, row in zip(docs, ids, strict=True):
        assert row == full_tokenisation(tokenizer, text, n)
    assert ids[2][:5] == [tokenizer.unk_token_id] * 5
    assert ids[1][0] == tokenizer.convert_tokens_to_ids("fox")
    # The last two were retried in full after their cut came up short.
    assert encoder.seen[-2:] == [len(spaces_first), len(long_words)]


def test_loading_a_checkpoint_warns_about_nothing(backbone_dir: Path, tmp_path: Path) -> None:
    """transformers warned "You are using a model of type `mono` to instantiate a model of
    type ``" on every load (issue 9: no warning a user must learn to ignore)."""
    import logging
    import warnings

    model, tokenizer = load_cross_encoder(str(backbone_dir), query_length=8, doc_length=16)
    save_cross_encoder(model, tokenizer, tmp_path / "ckpt")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    transformers_logger = logging.getLogger("transformers")
    transformers_logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load_cross_encoder(str(tmp_path / "ckpt"))
    finally:
        transformers_logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == []
    assert [str(w.message) for w in caught] == []
