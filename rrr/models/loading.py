"""Load a student: a hub id, a local directory, or a base model plus a LoRA adapter — with one readable error.

Real users pass hub ids (``Qwen/Qwen2.5-1.5B-Instruct``); tests and smoke recipes pass the tiny local model. Both go
through the same ``from_pretrained`` calls; the only special case is the tiny character-level tokenizer, which must
be loaded as ``PreTrainedTokenizerFast`` (see ``rrr.models.tiny``).
"""

from __future__ import annotations

import os

from rrr.models.tiny import MARKER


class ModelLoadError(RuntimeError):
    """The model, tokenizer or adapter cannot be loaded (missing path, no network, adapter/base mismatch)."""


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or (os.path.sep in name and os.path.exists(os.path.dirname(name) or "."))


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
    """Tokenizer for ``name_or_path``; the tiny tokenizer is recognised by its marker file."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    _check_exists(name_or_path, "tokenizer")
    path = os.path.expanduser(name_or_path)
    try:
        if _is_plain_fast_tokenizer(path):
            tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
        else:
            tokenizer = AutoTokenizer.from_pretrained(name_or_path, revision=revision)
    except Exception as exc:
        raise ModelLoadError(_explain(name_or_path, "tokenizer", exc)) from None
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
    """
    import torch
    from transformers import AutoModelForCausalLM

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
        _check_exists(name_or_path, "base model")
    torch_dtype = dtype
    if isinstance(dtype, str) and dtype not in ("auto",):
        torch_dtype = getattr(torch, dtype, None)
        if torch_dtype is None:
            raise ModelLoadError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    try:
        model = AutoModelForCausalLM.from_pretrained(name_or_path, revision=revision, dtype=torch_dtype)
    except Exception as exc:
        raise ModelLoadError(_explain(name_or_path, "model", exc)) from None
    tokenizer_source = adapter if adapter and os.path.exists(os.path.join(adapter, "tokenizer_config.json")) else path
    tokenizer = load_tokenizer(tokenizer_source if os.path.isdir(tokenizer_source) else name_or_path, revision)
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

    Lets a resumed evaluation notice that the weights at the same path have changed (e.g. retrained in place).
    """
    import glob
    import hashlib

    parts = []
    for path in paths:
        if not path or not os.path.isdir(os.path.expanduser(path)):
            continue
        for f in sorted(
            glob.glob(os.path.join(os.path.expanduser(path), "*.safetensors"))
            + glob.glob(os.path.join(os.path.expanduser(path), "*.bin"))
        ):
            st = os.stat(f)
            parts.append(f"{os.path.basename(f)}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12] if parts else None
