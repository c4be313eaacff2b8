"""Tests for the training data path: token ids and pair batches identical to what they
replaced, the resumable sample stream, splitting steps between processes, building
batches in threads, and the denominators that make micro-batch losses add up."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import random  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import PreTrainedTokenizerBase  # noqa: E402

from rank_distillm.model.checkpoints import load_cross_encoder  # noqa: E402
from rank_distillm.model.pair_encoder import PairEncoder  # noqa: E402
from rank_distillm.training import global_batch, losses, sampling  # noqa: E402
from rank_distillm.training.batches import (
    BatchBuilder,
    Prefetcher,
    sample_steps,
    shares,
    targets_and_mask,
)
from tests.helpers import EXTRA_TEXTS, split_texts, training_table  # noqa: E402

TEXTS = [
    *EXTRA_TEXTS,
    "",
    "Ünïcödé café naïve résumé — «quotes» and 中文字符 mixed in",
    "UPPER lower MiXeD 123 4.56 e-mail@example.org",
    "word " * 300,
    "\t tabs\nand\n\nnewlines  and   spaces ",
]


@pytest.fixture(scope="module")
def tokenizer(backbone_dir: Path) -> PreTrainedTokenizerBase:
    return load_cross_encoder(str(backbone_dir))[1]


def bert_tokenizer(tmp_path: Path) -> PreTrainedTokenizerBase:
    """A BERT-style tokenizer read from a vocab.txt, as lightning-ir's checkpoints and the
    engine benchmark have them (transformers builds the Rust tokenizer itself)."""
    from transformers import AutoTokenizer

    words = sorted({w for text in TEXTS for w in text.lower().split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "##s", "##ed", "un"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (tmp_path / "tokenizer_config.json").write_text(
        '{"tokenizer_class": "ElectraTokenizer", "do_lower_case": true}'
    )
    return AutoTokenizer.from_pretrained(str(tmp_path))


# --------------------------------------------------------------------------- token ids


@pytest.mark.parametrize("side", ["right", "left"])
def test_rust_tokenising_gives_transformers_ids(
    tokenizer: PreTrainedTokenizerBase, tmp_path: Path, side: str
) -> None:
    for tok in (tokenizer, bert_tokenizer(tmp_path)):
        tok.truncation_side = side
        encoder = PairEncoder(tok, 8, 24)
        before = tok.backend_tokenizer.truncation
        ids = {length: encoder.token_ids(TEXTS, length) for length in (8, 24)}
        # The shared tokenizer is left as it was (its truncation is set on copies).
        assert tok.backend_tokenizer.truncation == before
        for length in (8, 24):
            expected = tok(TEXTS, add_special_tokens=False, truncation=True, max_length=length)
            assert ids[length] == expected["input_ids"], (side, length)


def old_collate(
    tokenizer: PreTrainedTokenizerBase, query_ids: list[list[int]], doc_ids: list[list[int]]
) -> dict[str, torch.Tensor]:
    """PairEncoder.collate as it was before it was vectorised: row by row."""
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    sequences, segments = [], []
    for query, doc in zip(query_ids, doc_ids, strict=True):
        first = [cls, *query, sep]
        sequences.append(first + [*doc, sep])
        segments.append([0] * len(first) + [1] * (len(doc) + 1))
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    token_type_ids = torch.zeros_like(input_ids)
    attention_mask = torch.zeros_like(input_ids)
    for row, (sequence, segment) in enumerate(zip(sequences, segments, strict=True)):
        input_ids[row, : len(sequence)] = torch.tensor(sequence)
        token_type_ids[row, : len(segment)] = torch.tensor(segment)
        attention_mask[row, : len(sequence)] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
    }


def test_vectorised_collate_equals_the_row_by_row_one(tokenizer: PreTrainedTokenizerBase) -> None:
    encoder = PairEncoder(tokenizer, 8, 24)
    generator = random.Random(3)

    def tokens(most: int) -> list[int]:
        return [generator.randrange(5, 90) for _ in range(generator.randint(0, most))]

    queries = [tokens(8) for _ in range(40)]
    docs = [tokens(24) for _ in range(40)]
    docs[7] = []  # an empty passage: [CLS] q [SEP] [SEP]
    new, old = encoder.collate(queries, docs), old_collate(tokenizer, queries, docs)
    assert set(new) == set(old)
    for key in old:
        assert new[key].dtype == old[key].dtype == torch.long, key
        assert torch.equal(new[key], old[key]), key
    one = encoder.collate([[11, 12]], [[13]])
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert one["input_ids"].tolist() == [[cls, 11, 12, sep, 13, sep]]
    assert one["token_type_ids"].tolist() == [[0, 0, 0, 0, 1, 1]]


# --------------------------------------------------------------------------- the stream


def stream_of(queries, rng, epoch=0, skip=0):
    return sample_steps(queries, "single_relevant", 2, 100, 4, rng, epoch, skip)


def test_sample_steps_epochs_and_resuming_from_any_step() -> None:
    table, _ = split_texts(training_table(n_queries=10))
    queries = sampling.group_queries(table)
    steps = [next(stream) for stream in [stream_of(queries, random.Random(7))] for _ in range(9)]
    # 10 usable queries, 4 per step: 2 steps an epoch (the remainder of 2 is dropped).
    assert [(s.epoch, s.index) for s in steps] == [(e, i) for e in range(5) for i in (0, 1)][:9]
    assert all(len(s.samples) == 4 for s in steps)
    first_epoch = [sample.query_id for step in steps[:2] for sample in step.samples]
    assert len(set(first_epoch)) == 8  # an epoch draws each query once
    for k, resumed_after in enumerate(steps[:-1]):
        rng = random.Random()
        rng.setstate(resumed_after.epoch_rng_state)
        again = stream_of(queries, rng, resumed_after.epoch, resumed_after.index + 1)
        rest = [next(again) for _ in range(len(steps) - k - 1)]
        assert [(s.epoch, s.index, s.samples) for s in rest] == [
            (s.epoch, s.index, s.samples) for s in steps[k + 1 :]
        ]


def test_too_few_queries_for_a_step_names_queries_per_step() -> None:
    table, _ = split_texts(training_table(n_queries=3))
    with pytest.raises(ValueError, match=r"3 usable queries are fewer than queries_per_step \(4\)"):
        next(stream_of(sampling.group_queries(table), random.Random(0)))


def test_shares_split_a_step_between_processes_and_micro_batches() -> None:
    samples = [sampling.Sample(f"q{i}", [i], [1.0]) for i in range(8)]
    ids = [[[s.query_id for s in part] for part in shares(samples, p, 2, 2)] for p in (0, 1)]
    assert ids == [[["q0", "q1"], ["q2", "q3"]], [["q4", "q5"], ["q6", "q7"]]]
    assert [[s.query_id for s in part] for part in shares(samples, 0, 1, 1)] == [
        [f"q{i}" for i in range(8)]
    ]
    with pytest.raises(ValueError, match="8 queries per step do not split into 3 processes x 1"):
        shares(samples, 0, 3, 1)


# --------------------------------------------------------------------------- building


def test_batches_built_in_threads_equal_those_built_in_turn(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    table, texts = split_texts(training_table(n_queries=16, negatives=3))
    queries = sampling.group_queries(table)
    steps = stream_of(queries, random.Random(1))
    items = [next(steps).samples for _ in range(24)]
    encoder = PairEncoder(tokenizer, 8, 16)
    in_turn = [BatchBuilder(table, texts, encoder).batch(s) for s in items]
    # A cache smaller than a batch: threads keep emptying it under each other.
    builder = BatchBuilder(table, texts, encoder, cache_size=5)
    with Prefetcher(iter(items), builder.batch, workers=4, depth=6) as loader:
        threaded = list(loader)
    assert len(threaded) == len(in_turn)
    for a, b in zip(threaded, in_turn, strict=True):
        for key in b:
            assert torch.equal(a[key], b[key]), key


# --------------------------------------------------------------------------- denominators


def random_batch(generator: torch.Generator, queries: int, width: int):
    scores = torch.randn(queries, width, generator=generator, dtype=torch.float64)
    targets = torch.randint(0, 4, (queries, width), generator=generator).double()
    lengths = torch.randint(1, width + 1, (queries,), generator=generator)
    mask = torch.arange(width)[None, :] < lengths[:, None]
    targets[0] = 0  # a query with no positive target (ApproxNDCG leaves it out)
    targets[1, 1:] = 0  # and one with a single positive
    return scores, targets, mask


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_weighted_micro_batch_losses_add_up_to_the_whole_batch_loss(name: str) -> None:
    assert set(global_batch.DENOMINATORS) == set(losses.LOSSES)
    generator = torch.Generator().manual_seed(11)
    scores, targets, mask = random_batch(generator, 7, 9)
    loss = losses.get_loss(name)
    whole = loss(scores, targets, mask).double()
    total = global_batch.denominator(name, targets, mask)
    assert total > 0
    parts = [slice(0, 2), slice(2, 3), slice(3, 7)]  # unequal micro-batches
    combined = sum(
        loss(scores[p], targets[p], mask[p]).double()
        * global_batch.denominator(name, targets[p], mask[p])
        / total
        for p in parts
    )
    torch.testing.assert_close(combined, whole, rtol=1e-5, atol=1e-6)
    # The plain mean of the parts (what accumulation did before) is not it.
    if name in ("ranknet", "margin_mse", "adr_mse"):
        mean = sum(loss(scores[p], targets[p], mask[p]) for p in parts) / len(parts)
        assert abs(float(mean) - float(whole)) > 1e-3


def test_denominators_by_hand() -> None:
    targets = torch.tensor([[3.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    # Query 0: 3 > 1 twice (1 = 1 is no pair); query 1: all ties.
    assert global_batch.denominator("ranknet", targets, mask) == 2
    assert global_batch.denominator("margin_mse", targets, mask) == 2
    assert global_batch.denominator("adr_mse", targets, mask) == 5
    assert global_batch.denominator("infonce", targets, mask) == 2
    assert global_batch.denominator("approx_ndcg", targets, mask) == 1
    with pytest.raises(ValueError, match="no denominator known for loss 'hinge'"):
        global_batch.denominator("hinge", targets, mask)


def test_targets_and_mask_pad_shorter_lists() -> None:
    samples = [sampling.Sample("a", [0, 1, 2], [2.0, 1.0, 0.0]), sampling.Sample("b", [3], [1.0])]
    targets, mask = targets_and_mask(samples)
    assert targets.tolist() == [[2.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    assert mask.tolist() == [[True, True, True], [True, False, False]]
