"""The demo's tiny backbone: a deterministic WordPiece vocabulary and tokenizer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rank_distillm.model.tiny_backbone import wordpiece_tokenizer, wordpiece_vocabulary

TEXTS = ["the bronta rivers flow", "bronta bronta lake", "The lake is cold", "a river"]


def test_vocabulary_has_specials_characters_then_words_by_frequency() -> None:
    vocabulary = wordpiece_vocabulary(TEXTS, vocab_size=1000)
    tokens = list(vocabulary)
    assert tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    characters = sorted(set("".join(TEXTS).lower().replace(" ", "")))
    assert tokens[5 : 5 + len(characters)] == characters
    assert tokens[5 + len(characters) : 5 + 2 * len(characters)] == [f"##{c}" for c in characters]
    # bronta (3), lake (2), then the ties of count 1 alphabetically ("a" is a character).
    words = tokens[5 + 2 * len(characters) :]
    assert words == ["bronta", "lake", "the", "cold", "flow", "is", "river", "rivers"]
    assert list(vocabulary.values()) == list(range(len(vocabulary)))


def test_vocabulary_size_caps_the_words() -> None:
    characters = len(set("".join(TEXTS).lower().replace(" ", "")))
    vocabulary = wordpiece_vocabulary(TEXTS, vocab_size=5 + 2 * characters + 2)
    assert list(vocabulary)[-2:] == ["bronta", "lake"]


def test_unseen_derived_form_keeps_the_stem_token() -> None:
    tokenizer = wordpiece_tokenizer(wordpiece_vocabulary(TEXTS, vocab_size=1000))
    assert tokenizer.tokenize("Brontaok") == ["bronta", "##o", "##k"]
    assert tokenizer.tokenize("brontaux") == ["[UNK]"]  # no piece for "u" or "x"
    encoded = tokenizer("bronta", "lake")
    assert encoded["token_type_ids"] == [0, 0, 0, 1, 1]


def test_vocabulary_is_identical_across_processes() -> None:
    """The tokenizers trainer is not (huggingface/tokenizers#1794); ours must be."""
    script = (
        "import json, sys;"
        "from rank_distillm.data.demo_collection import DemoSettings, generate_collection;"
        "from rank_distillm.model.tiny_backbone import wordpiece_vocabulary;"
        "texts = [p.text for p in generate_collection(DemoSettings(topics=4)).passages];"
        "print(json.dumps(wordpiece_vocabulary(texts, 300)))"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    ]
    assert outputs[0] == outputs[1]
    assert len(json.loads(outputs[0])) == 300


def test_initial_weights_follow_the_initializer_range(tmp_path: Path) -> None:
    """The tiny model's init scale is a setting (ELECTRA's 0.02 is for hidden size 768)."""
    import torch
    from safetensors.torch import load_file

    from rank_distillm.model.tiny_backbone import TinySettings, build_tiny

    texts = [f"alpha beta gamma delta {i}" for i in range(50)]
    settings = TinySettings(hidden_size=32, intermediate_size=64, initializer_range=0.1)
    build_tiny(texts, settings, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["initializer_range"] == 0.1
    weights = load_file(str(tmp_path / "model.safetensors"))
    query = weights["encoder.layer.0.attention.self.query.weight"]
    assert float(torch.std(query)) == pytest.approx(0.1, rel=0.1)
