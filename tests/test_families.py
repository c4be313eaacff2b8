"""Every backbone family as a student: its pair format, a few training steps, the
checkpoint in lightning-ir's layout, reloaded with identical scores, and the same scores
on the re-ranking path (lean or the family's own forward) as on the training path. Tiny
random configs of each family, built offline from the tests' corpus."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import json  # noqa: E402
import shutil  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoModel  # noqa: E402

from rank_distillm.model import families, lean_encoder  # noqa: E402
from rank_distillm.model.checkpoints import load_cross_encoder, save_cross_encoder  # noqa: E402
from rank_distillm.model.cross_encoder import CrossEncoder  # noqa: E402
from rank_distillm.model.pair_encoder import PairEncoder  # noqa: E402
from rank_distillm.model.tiny_backbone import build_tiny  # noqa: E402
from rank_distillm.training.loop import TrainSettings, train  # noqa: E402
from tests.helpers import (  # noqa: E402
    TINY,
    corpus,
    one_torch_thread,
    split_texts,
    training_table,
)

FAMILIES = ["electra", "bert", "roberta", "xlm-roberta", "deberta-v2", "modernbert"]
CLASSES = {
    "electra": "ElectraModel",
    "bert": "BertModel",
    "roberta": "RobertaModel",
    "xlm-roberta": "XLMRobertaModel",
    "deberta-v2": "DebertaV2Model",
    "modernbert": "ModernBertModel",
}
PAIRS = [
    ("apple pie", "the quick brown fox jumps over the lazy dog"),
    ("capital of france", "paris is the capital and largest city of france"),
    ("rain", "rivers flow into the sea after heavy rain"),
]
SETTINGS = {
    "loss": "infonce",
    "sampler": "single_relevant",
    "negatives": 3,
    "steps": 3,
    "queries_per_step": 4,
    "learning_rate": 1e-3,
    "query_length": 8,
    "doc_length": 16,
    "precision": "fp32",
}

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module", params=FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def tiny(family: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(f"tiny-{family}")
    build_tiny(corpus(), replace(TINY, family=family), out)
    return out


@pytest.fixture(scope="module")
def trained(family: str, tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp(f"trained-{family}")
    with one_torch_thread():
        train(
            TrainSettings(**SETTINGS),
            str(tiny),
            *split_texts(training_table()),
            root / "ckpt",
            root / "loss.csv",
        )
    return root / "ckpt"


def scores(model: CrossEncoder, encoder: PairEncoder, grad: bool = False) -> torch.Tensor:
    queries, docs = zip(*PAIRS, strict=True)
    batch = encoder.collate(encoder.query_ids(queries), encoder.doc_ids(docs))
    model.eval()
    with torch.set_grad_enabled(grad):
        return model(**batch).detach()


def test_each_family_frames_a_pair_its_own_way(family: str, tiny: Path) -> None:
    model, tokenizer = load_cross_encoder(str(tiny), 8, 16)
    encoder = PairEncoder(tokenizer, 8, 16)
    batch = encoder.collate(encoder.query_ids(["apple"]), encoder.doc_ids(["lazy dog"]))
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())
    if family in ("roberta", "xlm-roberta"):
        assert tokens == ["<s>", "apple", "</s>", "</s>", "lazy", "dog", "</s>"]
    else:
        assert tokens == ["[CLS]", "apple", "[SEP]", "lazy", "dog", "[SEP]"]
    assert encoder.format.special_tokens == families.SPECIAL_TOKENS[family]
    # Segment ids go in only where the family embeds them.
    assert model.segment_ids is (family in ("electra", "bert"))
    if model.segment_ids:
        assert batch["token_type_ids"][0].tolist() == [0, 0, 0, 1, 1, 1]
    assert type(model.backbone).__name__ == CLASSES[family]


def test_a_trained_checkpoint_has_lightning_irs_layout(
    family: str, tiny: Path, trained: Path
) -> None:
    config = json.loads((trained / "config.json").read_text())
    assert config["model_type"] == "mono"
    assert config["backbone_model_type"] == family
    assert config["architectures"] == [f"Mono{CLASSES[family]}"]
    assert (config["query_length"], config["doc_length"]) == (8, 16)
    assert (config["pooling_strategy"], config["scoring_strategy"]) == ("first", "rank")
    # Training moved the weights away from the tiny start.
    start, _ = load_cross_encoder(str(tiny), 8, 16)
    model, _ = load_cross_encoder(str(trained))
    moved = [
        name
        for name, value in model.backbone.state_dict().items()
        if not torch.equal(value, start.backbone.state_dict()[name])
    ]
    assert moved


def test_reloading_gives_identical_scores_on_both_paths(
    family: str, trained: Path, tmp_path: Path
) -> None:
    model, tokenizer = load_cross_encoder(str(trained))
    encoder = PairEncoder(tokenizer, 8, 16)
    before = scores(model, encoder)
    save_cross_encoder(model, tokenizer, tmp_path / "again")
    loaded, loaded_tokenizer = load_cross_encoder(str(tmp_path / "again"))
    assert torch.equal(scores(loaded, PairEncoder(loaded_tokenizer, 8, 16)), before)
    assert len(set(before.tolist())) == len(PAIRS)  # the scores depend on the pair
    # Re-ranking (lean pass for ELECTRA, BERT and RoBERTa, else the family's forward)
    # equals the training path's scores.
    assert lean_encoder.supports(model.backbone) is (family not in ("deberta-v2", "modernbert"))
    torch.testing.assert_close(before, scores(model, encoder, grad=True), atol=1e-5, rtol=0)


def test_a_lightning_ir_checkpoint_of_each_family_loads(
    family: str, tiny: Path, tmp_path: Path
) -> None:
    """A hand-made lightning-ir checkpoint (the backbone's config plus lightning-ir's keys,
    backbone keys without prefix plus ``linear.*``) scores as the backbone and head do."""
    out = tmp_path / "published"
    out.mkdir()
    backbone_config = json.loads((tiny / "config.json").read_text())
    backbone_config.pop("architectures", None)
    lightning_ir = {
        "model_type": "mono",
        "architectures": [f"Mono{CLASSES[family]}"],
        "backbone_model_type": family,
        "query_length": 8,
        "doc_length": 16,
        "pooling_strategy": "first",
        "linear_bias": True,
        "scoring_strategy": "rank",
    }
    (out / "config.json").write_text(json.dumps({**backbone_config, **lightning_ir}))
    backbone = AutoModel.from_pretrained(str(tiny))
    head = {"weight": torch.linspace(-1.0, 1.0, 16)[None], "bias": torch.tensor([0.5])}
    state = {**backbone.state_dict(), **{f"linear.{k}": v for k, v in head.items()}}
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / "model.safetensors"))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny / name, out / name)

    loaded, tokenizer = load_cross_encoder(str(out))
    direct = CrossEncoder(backbone, 8, 16)
    with torch.no_grad():
        direct.linear.weight.copy_(head["weight"])
        direct.linear.bias.copy_(head["bias"])
    encoder = PairEncoder(tokenizer, 8, 16)
    assert torch.equal(scores(loaded, encoder), scores(direct, encoder))


def test_a_sentencepiece_only_tokenizer_loads_as_deberta_v3_publishes_it(tmp_path: Path) -> None:
    """microsoft/deberta-v3-base publishes ``spm.model`` and no ``tokenizer.json``:
    transformers builds the tokenizer from the SentencePiece model (the sentencepiece
    package, a pinned dependency). A tiny model trained here stands in for it."""
    import sentencepiece

    from rank_distillm.model.checkpoints import load_tokenizer

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"what is fox {i} the fox {i} jumps far\n" for i in range(200)))
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(tmp_path / "spm"),
        vocab_size=40,
        pad_id=0,
        bos_id=1,
        eos_id=2,
        unk_id=3,
        pad_piece="[PAD]",
        bos_piece="[CLS]",
        eos_piece="[SEP]",
        unk_piece="[UNK]",
        minloglevel=2,
    )
    config = {"tokenizer_class": "DebertaV2Tokenizer", "do_lower_case": False}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    tokenizer = load_tokenizer(tmp_path)
    pair = tokenizer("what is fox", "the fox jumps")
    tokens = tokenizer.convert_ids_to_tokens(pair["input_ids"])
    separators = [i for i, token in enumerate(tokens) if token == "[SEP]"]
    assert tokens[0] == "[CLS]" and len(separators) == 2 and separators[1] == len(tokens) - 1
    # DeBERTa's segment ids: 0 up to the first [SEP], 1 after it.
    first = separators[0]
    assert pair["token_type_ids"] == [0] * (first + 1) + [1] * (len(tokens) - first - 1)
