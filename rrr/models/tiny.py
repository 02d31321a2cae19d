"""A tiny random-init Qwen2 model with a character-level chat tokenizer, built entirely offline.

Tests, smoke recipes and the demo need a *real* ``transformers`` causal LM (so every code path — TRL, PEFT, saving,
resuming, evaluation — is the one a GPU user runs) that can be built on a fresh machine without a hub. This module
builds one in well under a second:

* a ``PreTrainedTokenizerFast`` with one token per printable ASCII character plus a handful of multi-character
  tokens for the strings every task emits (``<answer>``, ``<tool_call>`` ...), the ChatML special tokens, and a Qwen
  style chat template with ``{% generation %}`` markers (so SFT's assistant-only loss works);
* a ``Qwen2ForCausalLM`` of configurable size (default ~0.1M parameters).

Load the saved tokenizer with ``rrr.models.load_tokenizer`` (or ``PreTrainedTokenizerFast.from_pretrained``), not
``AutoTokenizer``: transformers 5 picks ``Qwen2Tokenizer`` from ``config.model_type`` and silently replaces the
character-level pre-tokenizer, dropping spaces and newlines.
"""

from __future__ import annotations

import json
import os

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"]
#: Multi-character strings that every task's prompts and answers use; one token each keeps sequences short.
WORD_TOKENS = ["<answer>", "</answer>", "<tool_call>", "</tool_call>", "user\n", "assistant\n", "system\n"]
#: Marker file so ``load_tokenizer`` knows a directory holds this tokenizer.
MARKER = "rrr_tiny.json"


def build_tiny_tokenizer():
    """Character-level tokenizer (lossless for ASCII text; anything else becomes ``<unk>``)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    chars = [chr(i) for i in range(32, 127)] + ["\n", "\t"]
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + chars)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_tokens(WORD_TOKENS)
    return chat_tokenizer(backend)


def chat_tokenizer(backend):
    """Wrap a ``tokenizers.Tokenizer`` (vocabulary holding ``SPECIAL_TOKENS``) as a ChatML chat tokenizer: the
    project's special tokens, left padding/truncation (generation batches) and ``CHAT_TEMPLATE``."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
        additional_special_tokens=["<|im_start|>"],
        padding_side="left",
        truncation_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(tokenizer=None, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4, seed: int = 0):
    """A random-init ``Qwen2ForCausalLM`` sized for CPU tests (hidden 64, 2 layers: ~0.1M parameters)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = tokenizer or build_tiny_tokenizer()
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=max(1, num_heads // 2),
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def save_tiny_model(
    output_dir: str,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    seed: int = 0,
    overwrite: bool = False,
):
    """Build and save the tiny model + tokenizer to ``output_dir`` (written to a temp dir, then renamed).

    It replaces only an earlier tiny model (``rrr.utils.outputs``): a non-empty directory of anything else, or a
    file, is an ``OutputDirError``, unless ``overwrite``.
    """
    from rrr.utils.io import atomic_directory
    from rrr.utils.outputs import output_lock

    options = {"legacy": (MARKER,), "overwrite": overwrite, "overwrite_flag": "--overwrite"}
    with output_lock(output_dir), atomic_directory(output_dir, "tiny_model", **options) as tmp:
        tokenizer = build_tiny_tokenizer()
        model = build_tiny_model(
            tokenizer, hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads, seed=seed
        )
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        with open(os.path.join(tmp, MARKER), "w") as f:
            json.dump({"hidden_size": hidden_size, "num_layers": num_layers, "num_heads": num_heads, "seed": seed}, f)
    return output_dir
