"""Impossible lengths fail at start: a backbone whose positions cannot hold
``query_length + doc_length`` plus the pair's special tokens is a config error before any
job runs (and a clear error when a job loads it), never a tensor-size error mid-training."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from rank_distillm.experiment import ConfigError, from_config
from rank_distillm.model import families
from rank_distillm.model.checkpoints import check_lengths, load_cross_encoder
from tests.helpers import load_config
from tests.workflow_runner import REPO

SCHEMA = REPO / "schemas" / "config.schema.yaml"
STAGE1 = "tiny-electra.stage1"


@pytest.fixture(scope="module")
def demo_config() -> dict[str, Any]:
    return load_config([REPO / "config.yaml"], SCHEMA)


def with_lengths(config: dict[str, Any], query_length: int, doc_length: int) -> dict[str, Any]:
    config = copy.deepcopy(config)
    config["models"][STAGE1].update(query_length=query_length, doc_length=doc_length)
    return config


def test_demo_lengths_fit_to_the_last_position(demo_config) -> None:
    """The demo's tiny ELECTRA holds 64 positions: 16 + 45 + [CLS], [SEP], [SEP] = 64."""
    from_config(with_lengths(demo_config, 16, 45))
    with pytest.raises(ConfigError) as caught:
        from_config(with_lengths(demo_config, 16, 46))
    assert str(caught.value) == (
        f"models.{STAGE1} (query_length, doc_length): query_length 16 + doc_length 46 + 3 "
        "special tokens of electra = 65 positions, but the backbone holds 64 "
        "(backbones.tiny-electra.tiny.max_position_embeddings); shorten the lengths "
        f"(models.{STAGE1} or training_defaults) or pick a longer backbone"
    )


def test_a_later_model_is_checked_against_its_first_backbone(demo_config) -> None:
    config = copy.deepcopy(demo_config)
    config["models"]["tiny-electra.stage1.stage2-ranknet"]["doc_length"] = 100
    with pytest.raises(ConfigError, match=r"models\.tiny-electra\.stage1\.stage2-ranknet .*"):
        from_config(config)


def test_a_local_hub_backbone_is_checked_with_its_family(demo_config, tmp_path: Path) -> None:
    """RoBERTa: 514 position embeddings, of which its padding id + 1 (2) are never used,
    and four special tokens (``<s> q </s></s> p </s>``): 32 + 476 + 4 = 512 fit."""
    folder = tmp_path / "roberta"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps({"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1})
    )
    config = copy.deepcopy(demo_config)
    config["backbones"]["tiny-electra"] = {"hub": str(folder), "train_pairs_per_second": 1000}
    from_config(with_lengths(config, 32, 476))
    with pytest.raises(ConfigError, match=r"= 513 positions, but the backbone holds 512 "):
        from_config(with_lengths(config, 32, 477))
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ConfigError, match=r"model_type 'gpt2' is not a supported encoder"):
        from_config(config)


def test_a_hub_backbone_out_of_reach_is_left_to_the_job(demo_config) -> None:
    """Offline and not cached, the config check cannot read it (the job then checks)."""
    config = copy.deepcopy(demo_config)
    config["backbones"]["tiny-electra"] = {"hub": "no-such-user/no-such-model"}
    from_config(with_lengths(config, 32, 10_000))


@pytest.mark.parametrize(
    ("config", "capacity"),
    [
        ({"model_type": "electra", "max_position_embeddings": 512}, 512),
        ({"model_type": "xlm-roberta", "max_position_embeddings": 514, "pad_token_id": 1}, 512),
        ({"model_type": "deberta-v2", "max_position_embeddings": 512}, 512),
        ({"model_type": "deberta-v2", "position_biased_input": False}, None),
        ({"model_type": "modernbert", "max_position_embeddings": 8192}, 8192),
        ({"model_type": "mono", "backbone_model_type": "bert"}, 512),
    ],
)
def test_position_capacity_by_family(config: dict[str, Any], capacity: int | None) -> None:
    assert families.position_capacity(config) == capacity


def test_loading_for_too_long_a_pair_names_the_backbone(backbone_dir: Path) -> None:
    """What the training job and re-ranking check as they load (the tiny backbone of the
    tests holds 64 positions)."""
    model, tokenizer = load_cross_encoder(str(backbone_dir), query_length=16, doc_length=45)
    check_lengths(model, tokenizer, str(backbone_dir))
    model.doc_length = 46
    with pytest.raises(ValueError) as caught:
        check_lengths(model, tokenizer, str(backbone_dir))
    assert str(caught.value) == (
        f"{backbone_dir}: query_length 16 + doc_length 46 + 3 special tokens = 65 positions, "
        "but this electra backbone holds 64 (max_position_embeddings 64); shorten "
        "query_length/doc_length"
    )
