"""Load a student: a hub id, a local directory, a GGUF file, or a base model plus a LoRA adapter — with one readable
error.

Real users pass hub ids (``Qwen/Qwen2.5-1.5B-Instruct``); tests and smoke recipes pass the tiny local model. Both go
through the same ``from_pretrained`` calls; the only special case is the tiny character-level tokenizer, which must
be loaded as ``PreTrainedTokenizerFast`` (see ``rrr.models.tiny``).

A ``.gguf`` file (llama.cpp's format) loads through transformers' GGUF reader, dequantised to float32, and comes
back as an ordinary model (``save_pretrained`` works, see :func:`plain_copy`). GGUF files often record the chat
template's *opening* token as EOS (SmolLM2's says ``eos = <|im_start|>``); a generation would then run past the end of
the turn, so the tokenizer's EOS is reset to the template's end-of-turn token (:func:`fix_chat_eos`).
"""

from __future__ import annotations

import os

from rrr.models.tiny import MARKER


class ModelLoadError(RuntimeError):
    """The model, tokenizer or adapter cannot be loaded (missing path, no network, adapter/base mismatch)."""


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or (os.path.sep in name and os.path.exists(os.path.dirname(name) or "."))


def is_gguf(name: str) -> bool:
    """Whether ``name`` names a GGUF file (by its extension; :func:`split_gguf` checks that it exists)."""
    return isinstance(name, str) and name.lower().endswith(".gguf")


def split_gguf(name: str, what: str = "model") -> tuple[str, str]:
    """``(directory, file name)`` of a GGUF file, as ``from_pretrained(directory, gguf_file=file)`` takes them."""
    path = os.path.abspath(os.path.expanduser(name))
    if not os.path.isfile(path):
        raise ModelLoadError(f"{what} GGUF file {name!r} does not exist")
    return os.path.dirname(path), os.path.basename(path)


#: End-of-turn tokens of common chat templates, in the order they are tried.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>")


def end_of_turn_token(tokenizer) -> str | None:
    """The token the chat template closes every message with (``<|im_end|>`` for ChatML), if it is one token."""
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str):
        return None
    vocab = tokenizer.get_vocab()
    for token in END_OF_TURN_TOKENS:
        if token in template and token in vocab:
            return token
    return None


def fix_chat_eos(tokenizer, model=None) -> bool:
    """Make EOS the chat template's end-of-turn token when the file recorded something else; True if changed.

    A model's own generation config is left as shipped unless it does not stop at the end of a turn either (then the
    end-of-turn id is added to it, so ``generate`` stops where the chat template says a turn ends).
    """
    token = end_of_turn_token(tokenizer)
    if token is None:
        return False
    changed = tokenizer.eos_token != token
    if changed:
        tokenizer.eos_token = token
    gen = getattr(model, "generation_config", None)
    if gen is not None:
        eos_id = tokenizer.convert_tokens_to_ids(token)
        ids = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
        if eos_id not in ids:
            gen.eos_token_id = eos_id if gen.eos_token_id is None else [*[i for i in ids if i is not None], eos_id]
            changed = True
    return changed


def plain_copy(model):
    """An ordinary copy of a GGUF-loaded model: same architecture and weights, no GGUF quantisation record.

    transformers refuses to ``save_pretrained`` a model loaded with ``gguf_file`` (its config keeps a ``gguf``
    ``quantization_config``), and training code saves checkpoints; the weights are already dequantised, so they are
    copied into a model built ``from_config``.
    """
    import copy

    import torch
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=next(model.parameters()).dtype)
    with torch.no_grad():
        plain.load_state_dict(model.state_dict(), strict=True)
    plain.generation_config = copy.deepcopy(model.generation_config)
    return plain


def _check_exists(name: str, what: str) -> None:
    if _looks_local(name) and not os.path.isdir(os.path.expanduser(name)):
        # "org/model" hub ids also contain a slash: only complain when the first component exists locally
        first = name.split(os.path.sep)[0]
        if name.startswith((".", "/", "~")) or os.path.isdir(first):
            raise ModelLoadError(f"{what} directory {name!r} does not exist")


def _is_plain_fast_tokenizer(path: str) -> bool:
    """A tokenizer saved without a model-specific class (the tiny one, or any built from ``tokenizers`` directly).

    ``AutoTokenizer`` would pick the class from the *model's* config and silently replace its pre-tokenizer; such
    tokenizers must be loaded as the plain fast tokenizer they were saved as.
    """
    import json

    if os.path.exists(os.path.join(path, MARKER)):
        return True
    config = os.path.join(path, "tokenizer_config.json")
    if not os.path.exists(config):
        return False
    with open(config) as f:
        cls = json.load(f).get("tokenizer_class")
    return cls in ("TokenizersBackend", "PreTrainedTokenizerFast")


def load_tokenizer(name_or_path: str, revision: str | None = None):
    """Tokenizer for ``name_or_path``; the tiny tokenizer is recognised by its marker file, a ``.gguf`` file by its
    extension (its EOS is then fixed, see :func:`fix_chat_eos`)."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if is_gguf(name_or_path):
        directory, file = split_gguf(name_or_path, "tokenizer")
        try:
            tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=file)
        except Exception as exc:
            raise ModelLoadError(_explain(name_or_path, "tokenizer", exc)) from None
        fix_chat_eos(tokenizer)
        return _finish_tokenizer(tokenizer, name_or_path)
    _check_exists(name_or_path, "tokenizer")
    path = os.path.expanduser(name_or_path)
    try:
        if _is_plain_fast_tokenizer(path):
            tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
        else:
            tokenizer = AutoTokenizer.from_pretrained(name_or_path, revision=revision)
    except Exception as exc:
        raise ModelLoadError(_explain(name_or_path, "tokenizer", exc)) from None
    return _finish_tokenizer(tokenizer, name_or_path)


def _finish_tokenizer(tokenizer, name_or_path: str):
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(tokenizer, "chat_template", None) is None:
        raise ModelLoadError(
            f"tokenizer of {name_or_path!r} has no chat template; rrr prompts are chat messages — use an instruct/chat "
            "model or set tokenizer.chat_template"
        )
    return tokenizer


def load_model_and_tokenizer(
    name_or_path: str,
    adapter: str | None = None,
    revision: str | None = None,
    dtype: str | None = "auto",
    device: str | None = None,
    merge_adapter: bool = False,
):
    """Load a causal LM and its tokenizer, optionally with a PEFT adapter on top.

    ``adapter`` is a directory (or hub id) of a LoRA adapter trained on ``name_or_path``; a mismatch (wrong base,
    missing target modules) is a ``ModelLoadError``. A directory that itself holds an adapter
    (``adapter_config.json``) may also be passed as ``name_or_path``: its base model is read from the adapter config.
    ``name_or_path`` (or an adapter's base) may be a ``.gguf`` file: it is dequantised (float32 unless ``dtype``
    says otherwise) into an ordinary, saveable model, with the tokenizer's EOS fixed (see the module docstring).
    """
    import torch
    from transformers import AutoModelForCausalLM

    if not is_gguf(name_or_path):
        _check_exists(name_or_path, "model")
    path = os.path.expanduser(name_or_path)
    if adapter is None and os.path.exists(os.path.join(path, "adapter_config.json")):
        import json

        with open(os.path.join(path, "adapter_config.json")) as f:
            base = json.load(f).get("base_model_name_or_path")
        if not base:
            raise ModelLoadError(
                f"{name_or_path!r} holds an adapter without base_model_name_or_path; pass the base model"
            )
        adapter, name_or_path, path = name_or_path, base, os.path.expanduser(base)
        if not is_gguf(name_or_path):
            _check_exists(name_or_path, "base model")
    torch_dtype = dtype
    if isinstance(dtype, str) and dtype not in ("auto",):
        torch_dtype = getattr(torch, dtype, None)
        if torch_dtype is None:
            raise ModelLoadError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    try:
        if is_gguf(name_or_path):
            directory, file = split_gguf(name_or_path)
            gguf_dtype = None if torch_dtype == "auto" else torch_dtype  # GGUF tensors dequantise to float32
            model = plain_copy(AutoModelForCausalLM.from_pretrained(directory, gguf_file=file, dtype=gguf_dtype))
        else:
            model = AutoModelForCausalLM.from_pretrained(name_or_path, revision=revision, dtype=torch_dtype)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(_explain(name_or_path, "model", exc)) from None
    tokenizer_source = adapter if adapter and os.path.exists(os.path.join(adapter, "tokenizer_config.json")) else path
    tokenizer = load_tokenizer(tokenizer_source if os.path.isdir(tokenizer_source) else name_or_path, revision)
    if is_gguf(name_or_path):
        fix_chat_eos(tokenizer, model)
    if adapter:
        _check_exists(adapter, "adapter")
        try:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter)
        except Exception as exc:
            raise ModelLoadError(
                f"adapter {adapter!r} does not fit base model {name_or_path!r}: {type(exc).__name__}: {exc}"
            ) from None
        if merge_adapter:
            model = model.merge_and_unload()
    if device:
        model.to(device)
    model.eval()
    return model, tokenizer


def _explain(name: str, what: str, exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    if os.environ.get("HF_HUB_OFFLINE") == "1" and not os.path.isdir(os.path.expanduser(name)):
        return f"cannot load {what} {name!r}: it is not a local directory and HF_HUB_OFFLINE=1 ({text[:300]})"
    return f"cannot load {what} {name!r}: {text[:500]}"


def weights_fingerprint(*paths: str | None) -> str | None:
    """A short hash of the weight files (names, sizes, mtimes) of local model/adapter directories; None for hub ids.

    Lets a resumed evaluation notice that the weights at the same path have changed (e.g. retrained in place). A
    GGUF file counts as its own weight file.
    """
    import glob
    import hashlib

    parts = []
    for path in paths:
        if path and is_gguf(path) and os.path.isfile(os.path.expanduser(path)):
            st = os.stat(os.path.expanduser(path))
            parts.append(f"{os.path.basename(path)}:{st.st_size}:{st.st_mtime_ns}")
            continue
        if not path or not os.path.isdir(os.path.expanduser(path)):
            continue
        for f in sorted(
            glob.glob(os.path.join(os.path.expanduser(path), "*.safetensors"))
            + glob.glob(os.path.join(os.path.expanduser(path), "*.bin"))
        ):
            st = os.stat(f)
            parts.append(f"{os.path.basename(f)}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12] if parts else None
