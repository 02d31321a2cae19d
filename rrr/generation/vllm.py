"""vLLM's offline engine for evaluation and mining (GPU only). Nothing imports vllm until it is used."""

from __future__ import annotations

import importlib.util

from rrr.generation.base import Generation, SamplingParams
from rrr.tasks.base import Messages


def vllm_available() -> bool:
    """True when vllm can be imported (it only installs and runs on CUDA machines)."""
    return importlib.util.find_spec("vllm") is not None


def vllm_sampling_kwargs(params: SamplingParams) -> dict:
    """``vllm.SamplingParams`` keywords stating every choice of ``params`` (vLLM's neutral values elsewhere).

    vLLM, like transformers, can pick up a checkpoint's ``generation_config`` defaults (``generation_config="auto"``)
    for fields a request leaves unset; each one is therefore passed. Greedy drops every filter and the penalty.
    """
    greedy = params.greedy
    return dict(
        max_tokens=params.max_new_tokens,
        temperature=0.0 if greedy else params.temperature,
        top_p=1.0 if greedy else params.top_p,
        top_k=-1 if greedy or params.top_k <= 0 else params.top_k,
        min_p=0.0 if greedy else params.min_p,
        repetition_penalty=1.0 if greedy else params.repetition_penalty,
        presence_penalty=0.0,
        frequency_penalty=0.0,
        seed=params.seed,
    )


class VLLMGenerator:
    """Generate with ``vllm.LLM`` (offline batch engine); prompts are rendered with the model's chat template."""

    def __init__(self, model: str, tokenizer=None, gpu_memory_utilization: float = 0.85, max_model_len=None, **kw):
        if not vllm_available():
            raise RuntimeError(
                "the vllm backend needs vllm (CUDA only): `pip install -e '.[vllm]'`, or use --backend hf"
            )
        from vllm import LLM

        self.llm = LLM(
            model=model,
            tokenizer=getattr(tokenizer, "name_or_path", None) or model,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            **kw,
        )
        self.tokenizer = tokenizer or self.llm.get_tokenizer()

    def generate(self, conversations: list[Messages], params: SamplingParams) -> list[Generation]:
        from vllm import SamplingParams as VSP
        from vllm.inputs import TokensPrompt

        from rrr.generation.hf import render_chat

        if not conversations:
            return []
        prompts = [render_chat(self.tokenizer, c) for c in conversations]
        sp = VSP(**vllm_sampling_kwargs(params))
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], sp, use_tqdm=False)
        result = []
        for p, out in zip(prompts, outs):
            o = out.outputs[0]
            result.append(
                Generation(
                    text=o.text, token_ids=list(o.token_ids), prompt_ids=p, truncated=o.finish_reason == "length"
                )
            )
        return result
