"""Everything that touches TRL internals lives here, so a TRL upgrade is one file's work.

TRL 1.16's ``GRPOTrainer`` gives RRR two public seams — ``rollout_func`` (our episode replaces single-turn
generation) and reward functions that receive the rollout's extra fields — and three things we reach for below them:

1. ``_generate_and_score_completions``: wrapped (not replaced) to hand the batch's dataset rows to the rollout (TRL
   passes it only the prompts) and to write ``episodes.jsonl`` once the advantages are known;
2. ``vllm_generation`` / ``generation_kwargs`` / ``unwrap_model_for_generation``: to sample each RRR phase with the
   *current* policy on whichever engine TRL set up, with per-phase budgets and temperatures;
3. ``_metrics``: to log RRR's own per-step metrics beside TRL's.

``tests/test_trl_contract.py`` fails loudly if any of these moves.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

import torch
from trl import GRPOTrainer
from trl.models import unwrap_model_for_generation

from rrr.generation.base import Generation, SamplingParams
from rrr.generation.hf import hf_generate_ids, render_chat
from rrr.tasks.base import Messages
from rrr.utils.io import append_jsonl


class RRRGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` that exposes the batch rows to the RRR rollout and logs every episode with its advantage."""

    _rrr_batch_inputs: list[dict] | None = None
    _rrr_records: list[dict] | None = None

    def _generate_and_score_completions(self, inputs):
        self._rrr_batch_inputs = inputs
        self._rrr_records = None
        try:
            output = super()._generate_and_score_completions(inputs)
        finally:
            self._rrr_batch_inputs = None
        if self._rrr_records is not None and getattr(self.args, "log_episodes", False) and self.model.training:
            self._write_episodes(output["advantages"])
        self._rrr_last_records_for_tests = self._rrr_records
        self._rrr_records = None
        return output

    def _write_episodes(self, advantages: torch.Tensor) -> None:
        adv = advantages.detach().float().cpu()
        if adv.dim() > 1:  # per-token advantages: report the sequence's first token (constant within a sequence)
            adv = adv[:, 0]
        rows = []
        for record, a in zip(self._rrr_records, adv.tolist()):
            if record is None:
                continue
            rows.append({"step": self.state.global_step, **record, "advantage": round(a, 6)})
        rank = self.accelerator.process_index
        name = "episodes.jsonl" if rank == 0 else f"episodes.rank{rank}.jsonl"
        append_jsonl(os.path.join(self.args.output_dir, name), rows)


# --------------------------------------------------------------------------------------------------------------------
# Reading trainer state
# --------------------------------------------------------------------------------------------------------------------
def batch_rows(trainer) -> list[dict]:
    rows = getattr(trainer, "_rrr_batch_inputs", None)
    if rows is None:
        raise RuntimeError("the RRR rollout must run inside RRRGRPOTrainer (it exposes the batch's dataset rows)")
    return rows


def group_size(trainer) -> int:
    return trainer.num_generations if trainer.model.training else trainer.num_generations_eval


def mode(trainer) -> str:
    return "train" if trainer.model.training else "eval"


def uses_vllm(trainer) -> bool:
    return bool(trainer.use_vllm)


def set_episode_records(trainer, records: list[dict | None]) -> None:
    trainer._rrr_records = records


def log_metrics(trainer, sums: dict[str, float], counts: dict[str, float]) -> None:
    """Log ``sum / count`` per metric, summed over processes first (every rank must log the same keys)."""
    keys = sorted(sums)
    local = torch.tensor([[sums[k], counts[k]] for k in keys], dtype=torch.float64, device=trainer.accelerator.device)
    total = trainer.accelerator.reduce(local, reduction="sum") if trainer.accelerator.num_processes > 1 else local
    store = trainer._metrics[mode(trainer)]
    for k, (s, c) in zip(keys, total.tolist()):
        store[k].append(s / c if c else float("nan"))


def log_scalar(trainer, name: str, value: float) -> None:
    trainer._metrics[mode(trainer)][name].append(float(value))


def log_total(trainer, name: str, local_value: float) -> float:
    """Log a per-step total summed over processes; also keep a running total on the trainer (``rrr_totals``)."""
    value = torch.tensor([float(local_value)], dtype=torch.float64, device=trainer.accelerator.device)
    if trainer.accelerator.num_processes > 1:
        value = trainer.accelerator.reduce(value, reduction="sum")
    total = float(value.item())
    trainer._metrics[mode(trainer)][name].append(total)
    if trainer.model.training:
        totals = trainer.__dict__.setdefault("rrr_totals", {})
        totals[name] = totals.get(name, 0.0) + total
    return total


# --------------------------------------------------------------------------------------------------------------------
# Generation with the live policy
# --------------------------------------------------------------------------------------------------------------------
class TrainerGenerator:
    """The trainer's current policy as an ``rrr.generation.Generator``.

    vLLM (colocate or server, as TRL configured it; weights already synced by TRL for this step) when
    ``use_vllm``, else HF ``generate`` on the unwrapped model. Sampling settings other than the temperature and the
    token budget (top_p, top_k, min_p, repetition penalty) are the trainer's, so reflections are sampled from exactly
    the distribution the loss scores.
    """

    def __init__(self, trainer, hf_batch_size: int = 64):
        self.trainer = trainer
        self.tokenizer = trainer.processing_class
        self.hf_batch_size = hf_batch_size

    def render(self, conversation: Messages) -> list[int]:
        return render_chat(self.tokenizer, conversation, **self.trainer.chat_template_kwargs)

    def generate(self, conversations: Sequence[Messages], params: SamplingParams) -> list[Generation]:
        prompts = [self.render(c) for c in conversations]
        if uses_vllm(self.trainer):
            outputs = self._vllm(prompts, params)
        else:
            outputs = self._hf(prompts, params)
        texts = self.tokenizer.batch_decode([ids for ids, _, _ in outputs], skip_special_tokens=True)
        return [
            Generation(text=t, token_ids=ids, prompt_ids=p, logprobs=lps, truncated=trunc)
            for p, (ids, lps, trunc), t in zip(prompts, outputs, texts)
        ]

    def _vllm(self, prompts: list[list[int]], params: SamplingParams):
        # Always call, even with no prompts: server mode (and colocate with tensor parallelism) is a collective.
        vg = self.trainer.vllm_generation
        saved = (vg.max_completion_length, vg.temperature)
        vg.max_completion_length, vg.temperature = params.max_new_tokens, params.temperature
        try:
            _, completion_ids, logprobs, _ = vg.generate(prompts=prompts, images=None, num_generations=1)
        finally:
            vg.max_completion_length, vg.temperature = saved
        eos = set(self.trainer.eos_token_ids)
        out = []
        for i, ids in enumerate(completion_ids):
            # vLLM logprobs are (len, k) per sequence; the rollout contract wants one float per token
            lps = [lp[0] if lp and lp[0] is not None else 0.0 for lp in logprobs[i]] if logprobs is not None else None
            ids = list(ids)
            out.append((ids, lps, not ids or ids[-1] not in eos))
        return out

    def _hf(self, prompts: list[list[int]], params: SamplingParams):
        if not prompts:
            return []
        trainer = self.trainer
        kwargs = dict(trainer.generation_kwargs)
        ctx = unwrap_model_for_generation(
            trainer.model_wrapped,
            trainer.accelerator,
            gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
            generation_kwargs=kwargs,
            gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs,
        )
        with ctx as model, torch.no_grad(), _eval_mode(model):
            full = SamplingParams(
                max_new_tokens=params.max_new_tokens,
                temperature=params.temperature,
                top_p=trainer.top_p if trainer.top_p is not None else 1.0,
                top_k=trainer.top_k or 0,
            )
            outs = hf_generate_ids(
                model, self.tokenizer, prompts, full, self.hf_batch_size, eos_ids=set(trainer.eos_token_ids)
            )
        return [(ids, None, trunc) for ids, trunc in outs]


@contextlib.contextmanager
def _eval_mode(model):
    """Dropout off while sampling (TRL's own HF path samples in the model's current mode; ours matches vLLM)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
