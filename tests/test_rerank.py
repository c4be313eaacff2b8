"""Tests for rank_distillm.evaluation.rerank: scoring a run's top passages with a cross-encoder."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from transformers import PreTrainedTokenizerBase  # noqa: E402

from rank_distillm.data.trec import RUN_COLUMNS  # noqa: E402
from rank_distillm.evaluation.rerank import rerank  # noqa: E402
from rank_distillm.model.checkpoints import load_cross_encoder  # noqa: E402
from rank_distillm.model.cross_encoder import CrossEncoder  # noqa: E402
from rank_distillm.model.pair_encoder import PairEncoder  # noqa: E402
from tests.helpers import (  # noqa: E402
    EXTRA_TEXTS,
    negative_text,
    query_text,
    relevant_text,
)

QUERY_LENGTH, DOC_LENGTH = 8, 32


pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def tokenizer(backbone_dir: Path) -> PreTrainedTokenizerBase:
    return load_cross_encoder(str(backbone_dir))[1]


@pytest.fixture()
def encoder(tokenizer: PreTrainedTokenizerBase) -> PairEncoder:
    return PairEncoder(tokenizer, QUERY_LENGTH, DOC_LENGTH)


class PassageLengthScorer(nn.Module):
    """Scores a pair by its passage segment's length: passage tokens + the final [SEP]."""

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
    ) -> torch.Tensor:
        return (token_type_ids * attention_mask).sum(-1).float()


def words(word: str, count: int) -> str:
    return " ".join([word] * count)


#: q1's passages by first-stage rank, with how often each repeats "apple" (its length).
Q1_REPEATS = {1: 1, 2: 3, 3: 2, 4: 6, 5: 5}
Q2_REPEATS = {1: 2, 2: 4}


def length_run() -> tuple[pd.DataFrame, dict[str, str], dict[str, str]]:
    rows = [("q1", f"a{rank}", rank, 100.0 - rank) for rank in Q1_REPEATS]
    rows += [("q2", f"b{rank}", rank, 50.0 - rank) for rank in Q2_REPEATS]
    # Rows out of rank order, and q2 before q1: rerank must rely on the rank column.
    order = [5, 6, 3, 0, 4, 2, 1]
    run = pd.DataFrame([rows[i] for i in order], columns=RUN_COLUMNS)
    docs = {f"a{rank}": words("apple", n) for rank, n in Q1_REPEATS.items()}
    docs |= {f"b{rank}": words("banana", n) for rank, n in Q2_REPEATS.items()}
    docs["unused"] = "never scored"
    queries = {"q1": query_text(0), "q2": query_text(1), "q3": "not in the run"}
    return run, queries, docs


def test_ranks_by_score_within_depth(encoder: PairEncoder) -> None:
    run, queries, docs = length_run()
    out = rerank(PassageLengthScorer(), encoder, run, queries, docs, depth=3, batch_size=2)

    assert list(out.columns) == ["query_id", "doc_id", "rank", "score"]
    assert out["query_id"].tolist() == ["q2", "q2", "q1", "q1", "q1"]
    per_apple = len(encoder.doc_ids(["apple"])[0])
    per_banana = len(encoder.doc_ids(["banana"])[0])

    q1 = out[out["query_id"] == "q1"]
    # Only first-stage ranks 1-3 (a4 and a5 are longer but beyond depth), by length.
    assert q1["doc_id"].tolist() == ["a2", "a3", "a1"]
    assert q1["rank"].tolist() == [1, 2, 3]
    assert q1["score"].tolist() == [3 * per_apple + 1, 2 * per_apple + 1, per_apple + 1]

    q2 = out[out["query_id"] == "q2"]
    assert q2["doc_id"].tolist() == ["b2", "b1"]
    assert q2["rank"].tolist() == [1, 2]
    assert q2["score"].tolist() == [4 * per_banana + 1, 2 * per_banana + 1]
    assert out["rank"].dtype.kind == "i"
    assert out["score"].dtype == np.float64


def test_depth_beyond_list_keeps_everything(encoder: PairEncoder) -> None:
    run, queries, docs = length_run()
    out = rerank(PassageLengthScorer(), encoder, run, queries, docs, depth=100, batch_size=3)
    q1 = out[out["query_id"] == "q1"]
    assert q1["doc_id"].tolist() == ["a4", "a5", "a2", "a3", "a1"]
    assert q1["rank"].tolist() == [1, 2, 3, 4, 5]
    assert len(out) == len(run)


def test_tied_scores_keep_first_stage_order(backbone_dir: Path, encoder: PairEncoder) -> None:
    model, _ = load_cross_encoder(str(backbone_dir), QUERY_LENGTH, DOC_LENGTH)
    with torch.no_grad():
        model.linear.weight.zero_()
        model.linear.bias.zero_()
    run, queries, docs = length_run()
    out = rerank(model, encoder, run, queries, docs, depth=4, batch_size=2)

    assert out["query_id"].tolist() == ["q2"] * 2 + ["q1"] * 4
    assert out["doc_id"].tolist() == ["b1", "b2", "a1", "a2", "a3", "a4"]
    assert out["rank"].tolist() == [1, 2, 1, 2, 3, 4]
    assert out["score"].tolist() == [0.0] * 6


def test_query_without_text_raises(encoder: PairEncoder) -> None:
    run, queries, docs = length_run()
    extra = pd.DataFrame(
        [("q8", "a1", 1, 1.0), ("q9", "a1", 1, 1.0), ("q9", "a2", 2, 0.5)], columns=RUN_COLUMNS
    )
    with pytest.raises(KeyError, match=r"2 run queries have no text.*'q8', 'q9'"):
        rerank(PassageLengthScorer(), encoder, pd.concat([run, extra]), queries, docs)


def test_length_sorted_batches_match_one_pair_at_a_time(
    backbone_dir: Path, encoder: PairEncoder
) -> None:
    model, _ = load_cross_encoder(str(backbone_dir), QUERY_LENGTH, DOC_LENGTH, seed=3)
    texts = [relevant_text(i) for i in range(4)] + [negative_text(0, 2), *EXTRA_TEXTS]
    docs = {f"d{i}": text for i, text in enumerate(texts)}
    queries = {"q1": query_text(0), "q2": "what is the capital of france", "q3": "fox"}
    rows = []
    for q, query_id in enumerate(queries):
        ids = list(docs)[q:] + list(docs)[:q]
        rows += [(query_id, doc_id, rank, 0.0) for rank, doc_id in enumerate(ids, start=1)]
    run = pd.DataFrame(rows, columns=RUN_COLUMNS)

    one = rerank(model, encoder, run, queries, docs, batch_size=1)
    assert len(one) == len(run)
    assert one["score"].nunique() > len(docs)  # the scores really differ by pair
    key = ["query_id", "doc_id"]
    for batch_size in (3, 64):
        batched = rerank(model, encoder, run, queries, docs, batch_size=batch_size)
        merged = one.merge(batched, on=key, suffixes=("_one", "_batched"))
        assert len(merged) == len(run)
        np.testing.assert_allclose(merged["score_one"], merged["score_batched"], atol=1e-5)

    # And batch_size=1 is the model on that pair alone.
    row = one.iloc[0]
    batch = encoder.collate(
        encoder.query_ids([queries[row["query_id"]]]), encoder.doc_ids([docs[row["doc_id"]]])
    )
    with torch.inference_mode():
        direct = model(**batch).item()
    assert row["score"] == pytest.approx(direct, abs=1e-6)


def test_reranking_leaves_model_in_eval_mode(backbone_dir: Path, encoder: PairEncoder) -> None:
    model: CrossEncoder = load_cross_encoder(str(backbone_dir), QUERY_LENGTH, DOC_LENGTH)[0]
    model.train()
    run, queries, docs = length_run()
    rerank(model, encoder, run, queries, docs, depth=2)
    assert not model.training


def test_depth_zero_gives_an_empty_run(encoder: PairEncoder) -> None:
    run, queries, docs = length_run()
    out = rerank(PassageLengthScorer(), encoder, run, queries, docs, depth=0)
    assert out.empty
    assert list(out.columns) == RUN_COLUMNS


class MemoryBoundScorer(PassageLengthScorer):
    """Runs out of (GPU) memory on batches of more than ``limit`` pairs, as a real GPU
    does on a batch too large for it."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.sizes = limit, []

    def forward(self, input_ids, attention_mask, token_type_ids):
        self.sizes.append(len(input_ids))
        if len(input_ids) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return super().forward(input_ids, attention_mask, token_type_ids)


def test_out_of_memory_halves_the_batch_and_keeps_every_score(
    encoder: PairEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    run, queries, docs = length_run()
    expected = rerank(PassageLengthScorer(), encoder, run, queries, docs, batch_size=8)
    scorer = MemoryBoundScorer(limit=2)
    with caplog.at_level("WARNING", logger="rank_distillm.evaluation.rerank"):
        out = rerank(scorer, encoder, run, queries, docs, batch_size=7)
    pd.testing.assert_frame_equal(out, expected)
    # 7 pairs: 7 fails; cut into 3 + 3 + 1 from the shortest up, the longest (1) goes
    # first, then 3 fails and the rest go in batches of 1 (two halvings), none lost.
    assert scorer.sizes == [7, 1, 3, 1, 1, 1, 1, 1, 1]
    assert "out of memory scoring 7 pairs" in caplog.text
    assert "retrying in batches of 3" in caplog.text
    assert "retrying in batches of 1" in caplog.text


class BatchRecorder(PassageLengthScorer):
    """Records each batch's size and its longest pair's tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[int, int]] = []

    def forward(self, input_ids, attention_mask, token_type_ids):
        self.batches.append((len(input_ids), int(attention_mask.sum(-1).max())))
        return super().forward(input_ids, attention_mask, token_type_ids)


def test_batches_are_cut_from_the_shortest_up_and_scored_longest_first(
    encoder: PairEncoder,
) -> None:
    """The groups stay those cut from the shortest pair up (so scores do not depend on the
    order), the last, shortest group of 1 holds the longest pair and goes first."""
    run, queries, docs = length_run()
    recorder = BatchRecorder()
    out = rerank(recorder, encoder, run, queries, docs, batch_size=3)
    assert [size for size, _ in recorder.batches] == [1, 3, 3]
    longest = [tokens for _, tokens in recorder.batches]
    assert longest == sorted(longest, reverse=True)
    pd.testing.assert_frame_equal(
        out, rerank(PassageLengthScorer(), encoder, run, queries, docs, batch_size=8)
    )


def test_out_of_memory_on_a_single_pair_is_raised(encoder: PairEncoder) -> None:
    run, queries, docs = length_run()
    with pytest.raises(torch.OutOfMemoryError, match="CUDA out of memory"):
        rerank(MemoryBoundScorer(limit=0), encoder, run, queries, docs, batch_size=4)
