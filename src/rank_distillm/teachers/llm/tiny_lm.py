"""A tiny randomly initialised chat LM: the offline stand-in for a 7B listwise re-ranker.

Its tokenizer is byte-level BPE without merges (one token per byte, so any text encodes and
decodes exactly, with no training and hence no run-to-run drift), with a Zephyr-style chat
template. The model is a 2-layer Llama whose output layer can only write the characters of
an answer (``[``, ``]``, ``>``, space, digits): its random answers then name passages,
repeat some, invent others and omit the rest, which exercises every repair of the parser
(a plain random model writes no digit at all). It is saved with ``save_pretrained``, so
teacher generation loads it through exactly the code path that loads a hub model. Its
rankings are arbitrary: it tests the machinery, not ranking quality.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
ANSWER_CHARACTERS = "[] >0123456789"

# Zephyr's chat layout: <|role|>\ncontent</s>\n per message, then <|assistant|>\n.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyLMSettings:
    hidden_size: int = 32
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 64
    max_position_embeddings: int = 4096
    # Larger than transformers' 0.02, so the answer depends on the prompt.
    initializer_range: float = 0.5
    seed: int = 42


def byte_tokenizer():  # -> PreTrainedTokenizerFast
    """One token per byte (GPT-2's byte alphabet) plus BOS, EOS and PAD."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocabulary = {token: index for index, token in enumerate([PAD, BOS, EOS, *alphabet])}
    tokenizer = Tokenizer(models.BPE(vocab=vocabulary, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", special_tokens=[(BOS, vocabulary[BOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        chat_template=CHAT_TEMPLATE,
    )


def build_tiny_lm(out_dir: Path, settings: TinyLMSettings = TinyLMSettings()) -> int:
    """Save the tokenizer and a random Llama to ``out_dir``; return the parameter count."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = byte_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=settings.hidden_size,
        intermediate_size=settings.intermediate_size,
        num_hidden_layers=settings.num_hidden_layers,
        num_attention_heads=settings.num_attention_heads,
        num_key_value_heads=settings.num_key_value_heads,
        max_position_embeddings=settings.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        initializer_range=settings.initializer_range,
    )
    torch.manual_seed(settings.seed)
    model = LlamaForCausalLM(config)
    allowed = sorted(
        {i for char in ANSWER_CHARACTERS for i in tokenizer.encode(char, add_special_tokens=False)}
    )
    with torch.no_grad():
        keep = torch.zeros(config.vocab_size, dtype=torch.bool)
        keep[allowed] = True
        model.lm_head.weight[~keep] = 0.0
        model.lm_head.weight[keep] *= 3.0
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return sum(parameter.numel() for parameter in model.parameters())
