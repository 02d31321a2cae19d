"""Everything that touches TRL internals lives here, so a TRL upgrade is one file's work.

TRL 1.16's ``GRPOTrainer`` gives RRR two public seams — ``rollout_func`` (our episode replaces single-turn
generation) and reward functions that receive the rollout's extra fields — and three things we reach for below them:

1. ``_generate_and_score_completions``: wrapped (not replaced) to hand the batch's dataset rows to the rollout (TRL
   passes it only the prompts) and to write ``episodes.jsonl`` once the advantages are known;
2. ``vllm_generation`` / ``unwrap_model_for_generation``: to sample each RRR phase with the *current* policy on
   whichever engine TRL set up, with per-phase budgets and sampling, in lockstep across processes;
3. ``_metrics``: to log RRR's own per-step metrics beside TRL's;
4. the accelerator's sharding state, to reject layouts RRR does not support (``rrr.training.parallelism``);
5. the wording of TRL's "All reward functions returned None" warning, silenced for RRR's skipped rows only;
6. ``_get_per_token_logps_and_entropies`` and its fused LM-head forward (``fused_lm_head=True``): overridden to
   score a GRPO group's shared prompt once (``RRRConfig.shared_prompt_scoring``).

``tests/test_trl_contract.py`` fails loudly if any of these moves.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Sequence

import torch
from trl import GRPOTrainer
from trl.models import unwrap_model_for_generation

from rrr.generation.base import Generation, SamplingParams
from rrr.generation.hf import hf_generate_ids, render_chat
from rrr.tasks.base import Messages
from rrr.training.parallelism import Layout, check_layout
from rrr.utils.io import append_jsonl

#: TRL warns, with the whole row, whenever every reward of a row is None. For RRR a None reward is by design: the task
#: was solved at the first attempt (no reflection to score; counted as ``rrr/skipped_frac``), and that warning would
#: print on nearly every step. Only those rows are silenced; a None reward from anything else still warns.
_NONE_REWARD_WARNING = "All reward functions returned None"


class _SkippedRowWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (_NONE_REWARD_WARNING in message and "'rrr_skipped': True" in message)  # after "[RANK n] "


logging.getLogger("trl.trainer.grpo_trainer").addFilter(_SkippedRowWarnings())


class RRRGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` that exposes the batch rows to the RRR rollout and logs every episode with its advantage."""

    _rrr_batch_inputs: list[dict] | None = None
    _rrr_records: list[dict] | None = None

    def __init__(self, *args, **kwargs):
        trainer_args = kwargs.get("args", args[2] if len(args) > 2 else None)  # GRPOTrainer(model, reward_funcs, args)
        with _vllm_cpu_engine(trainer_args):  # eager fp32 engine on vLLM's CPU platform; else a no-op
            super().__init__(*args, **kwargs)
        check_layout(layout_of(self))
        _install_vllm_cpu_sync(self)  # TRL's weight sync cannot work on vLLM's CPU platform; CUDA keeps TRL's

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

    def _get_per_token_logps_and_entropies(
        self,
        model,
        input_ids,
        attention_mask,
        logits_to_keep,
        batch_size=None,
        compute_entropy=False,
        compute_aux_loss=False,
        **extra,
    ):
        """TRL's scoring, with each GRPO group's shared prompt run once (``RRRConfig.shared_prompt_scoring``).

        An RRR row's prompt (task, failed attempt, reflection request) is ~15x longer than its completion (the
        reflection), and the G rows of a group have the same prompt, so TRL's scoring spends nearly all its forward
        and backward on G copies of one prompt. Here, within each of TRL's ``batch_size`` chunks, the distinct prompts
        but their last token go through one forward (gradients on) into a ``DynamicCache``, whose rows are gathered
        to the chunk's rows; then ``[last prompt token, completion]`` goes through TRL's own fused LM-head forward
        (temperature, logit scale, softcapping and chunked log-softmax unchanged) attending to that cache, with the
        full attention mask. Positions come from the cache length, as TRL's (none passed: arange over the padded
        width), so the log-probs, entropies and gradients (summed through the shared prompt activations) equal TRL's
        up to float rounding. Any other case (:meth:`_shared_prompt_scoring_applies`), or a chunk where no two rows
        share a prompt, is TRL's own code.
        """
        if not self._shared_prompt_scoring_applies(model, compute_aux_loss, extra):
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy, compute_aux_loss, **extra
            )
        batch_size = batch_size or input_ids.size(0)
        prompt_width = input_ids.size(1) - logits_to_keep
        all_logps, all_entropies = [], []
        for start in range(0, input_ids.size(0), batch_size):
            ids, mask = input_ids[start : start + batch_size], attention_mask[start : start + batch_size]
            first, group_of = _prompt_groups(ids[:, :prompt_width], mask[:, :prompt_width])
            if prompt_width < 2 or first.numel() == ids.size(0):  # nothing shared: TRL's own pass for this chunk
                logps, entropies, _ = super()._get_per_token_logps_and_entropies(
                    model, ids, mask, logits_to_keep, None, compute_entropy
                )
            else:
                logps, entropies = self._score_shared_prompts(model, ids, mask, prompt_width, first, group_of)
            all_logps.append(logps)
            all_entropies.append(entropies)
        entropies = torch.cat(all_entropies, dim=0) if compute_entropy else None
        return torch.cat(all_logps, dim=0), entropies, None

    def _shared_prompt_scoring_applies(self, model, compute_aux_loss, extra) -> bool:
        """Opted in, text-only, no MoE aux loss, unsharded parameters, full attention, no gradient checkpointing.

        Gradient checkpointing is excluded because transformers' checkpointed layers drop ``past_key_values`` (the
        completions would silently not see their prompt). Sharded parameters (FSDP, ZeRO-3) are gathered per forward
        call of the wrapped model, which the prompt pass (on the unwrapped module) would skip. DDP is fine: its
        reducer hooks fire on every parameter's gradient, whichever forward used it (tested with two processes).
        """
        if not getattr(self.args, "shared_prompt_scoring", False):
            return False
        layout = layout_of(self)
        from rrr.generation.prefix import supports_shared_prefix

        causal_lm = _causal_lm(self.accelerator.unwrap_model(model))
        reasons = {
            "an MoE aux loss": compute_aux_loss,
            "multimodal inputs": any(v is not None for v in extra.values()),
            "sharded parameters (FSDP / ZeRO-3)": layout.fsdp or layout.deepspeed_zero_stage == 3,
            "a model without full attention on every layer": not supports_shared_prefix(causal_lm),
            "gradient checkpointing (set gradient_checkpointing: false to use it)": getattr(
                causal_lm, "is_gradient_checkpointing", False
            ),
        }
        why = [reason for reason, applies in reasons.items() if applies]
        if why and not getattr(self, "_rrr_scoring_fallback_warned", False):
            self._rrr_scoring_fallback_warned = True
            logging.getLogger("rrr.training").warning(
                "shared_prompt_scoring is on but does not apply with %s: scoring every row with TRL's own pass",
                " and ".join(why),
            )
        return not why

    def _score_shared_prompts(self, model, ids, mask, prompt_width, first, group_of):
        """One chunk: prompts (less their last token) once per group, then every row's tail against their cache."""
        from transformers import DynamicCache

        cached = prompt_width - 1
        unwrapped = self.accelerator.unwrap_model(model)
        cache = DynamicCache(config=_causal_lm(unwrapped).config)
        with self.accelerator.autocast():
            # The unwrapped module: only the cache is wanted (logits_to_keep=1 skips the LM head). The gradient
            # reaches these activations through the cache, inside the same graph the wrapper's forward below builds,
            # so a DDP wrapper's reducer still sees every parameter's gradient once.
            unwrapped(
                input_ids=ids[first, :cached],
                attention_mask=mask[first, :cached],
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            cache.reorder_cache(group_of)  # index_select: differentiable, one cache row per row of the chunk
            tail, tail_mask = ids[:, cached:], mask[:, cached:]
            labels = tail.masked_fill(tail_mask == 0, -100)
            labels[:, 0] = -100  # the last prompt token is input only, as in TRL's labels
            outputs = model(
                input_ids=tail, attention_mask=mask, past_key_values=cache, labels=labels, fused_lm_head=True
            )
        return outputs.log_probs, outputs.entropy

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
def layout_of(trainer) -> Layout:
    """Engine and process layout of a built trainer (accelerate knows the sharding only once it is set up)."""
    deepspeed_plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    return Layout(
        num_processes=trainer.accelerator.num_processes,
        use_vllm=bool(trainer.use_vllm),
        vllm_mode=trainer.args.vllm_mode,
        tensor_parallel_size=trainer.args.vllm_tensor_parallel_size,
        deepspeed_zero_stage=deepspeed_plugin.zero_stage if deepspeed_plugin is not None else None,
        fsdp=bool(getattr(trainer, "is_fsdp_enabled", False)),
    )


def _prompt_groups(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows with the same prompt tokens and padding: ``(first row of each group, group index of each row)``."""
    _, group_of = torch.unique(
        torch.cat([prompt_ids, prompt_mask.to(prompt_ids.dtype)], dim=1), dim=0, return_inverse=True
    )
    rows = torch.arange(prompt_ids.size(0), device=prompt_ids.device)
    first = torch.full((int(group_of.max()) + 1,), prompt_ids.size(0), dtype=torch.long, device=prompt_ids.device)
    return first.scatter_reduce(0, group_of, rows, reduce="amin"), group_of


def _causal_lm(model):
    """The causal LM under a PEFT wrapper (its config and gradient-checkpointing state are the ones that matter)."""
    get_base_model = getattr(model, "get_base_model", None)
    return get_base_model() if callable(get_base_model) else model


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


def log_metrics(trainer, sums: dict[str, float], counts: dict[str, float]) -> dict[str, tuple[float, float]]:
    """Log ``sum / count`` per metric, summed over processes first (every rank must log the same keys).

    Returns the global ``(sum, count)`` per key: the same numbers on every rank, so decisions taken on them (stop the
    run) are taken by every rank together.
    """
    keys = sorted(sums)
    local = torch.tensor([[sums[k], counts[k]] for k in keys], dtype=torch.float64, device=trainer.accelerator.device)
    total = trainer.accelerator.reduce(local, reduction="sum") if trainer.accelerator.num_processes > 1 else local
    store = trainer._metrics[mode(trainer)]
    result = {}
    for k, (s, c) in zip(keys, total.tolist()):
        store[k].append(s / c if c else float("nan"))
        result[k] = (s, c)
    return result


def running_total(trainer, name: str, add: tuple[float, float]) -> tuple[float, float]:
    """Accumulate a global ``(sum, count)`` over the run (kept on the trainer; not part of checkpoints)."""
    totals = trainer.__dict__.setdefault("rrr_running", {})
    s, c = totals.get(name, (0.0, 0.0))
    totals[name] = (s + add[0], c + add[1])
    return totals[name]


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
# Lockstep across processes
# --------------------------------------------------------------------------------------------------------------------
def world_max(trainer, local: int) -> int:
    """The largest of every process's ``local`` value (a collective: every rank must call it, in the same order)."""
    accelerator = trainer.accelerator
    if accelerator.num_processes == 1:
        return int(local)
    value = torch.tensor([int(local)], dtype=torch.long, device=accelerator.device)
    return int(accelerator.gather(value).max().item())


# --------------------------------------------------------------------------------------------------------------------
# Generation with the live policy
# --------------------------------------------------------------------------------------------------------------------
class TrainerGenerator:
    """The trainer's current policy as an ``rrr.generation.Generator``, safe to call from several processes.

    vLLM (colocate or server, as TRL configured it; weights already synced by TRL for this step) when
    ``use_vllm``, else HF ``generate`` on the unwrapped model. Each call samples exactly with the phase's
    ``SamplingParams`` (the rollout gives reflections the trainer's own top_p/top_k/min_p/repetition penalty, so they
    come from the distribution the loss scores).

    **Lockstep.** With several processes, generation can be a collective: TRL's vLLM server mode gathers every
    rank's prompts and hands rank ``r`` the slice ``[r * n, (r + 1) * n)`` of the results (so all ranks must send the
    same ``n``); colocate with tensor parallelism slices the same way; ZeRO-3 / FSDP all-gather parameters on every
    forward pass. A data-dependent number or size of calls would pair completions with another rank's prompts, or
    hang. So every call is padded to the largest row count of any rank (with copies of a filler prompt, dropped
    afterwards), a phase with no rows anywhere is skipped by every rank together (:meth:`any_rank`), and completions
    are matched to prompts by the ``prompt_ids`` the engine returns. Padding costs little wall time: the ranks wait
    for the slowest one at the next gradient all-reduce anyway.
    """

    def __init__(self, trainer, hf_batch_size: int = 64):
        self.trainer = trainer
        self.tokenizer = trainer.processing_class
        self.hf_batch_size = hf_batch_size
        #: ``(local rows, rows sent to the engine)`` per call: what every rank must agree on (tests read it)
        self.calls: list[tuple[int, int]] = []
        #: HF path: prompt tokens fed / saved by shared-prefix prefill (``RRRConfig.shared_prefix_generation``)
        self.prefix_stats: dict = {}
        #: HF path: each call's KV cache, reused by the next phase of this rollout (same weights: the generator lives
        #: for one rollout, and the policy is only updated after it)
        self.shared_prefix = bool(getattr(trainer.args, "shared_prefix_generation", False))
        self.cascade = bool(getattr(trainer.args, "cascade_attention", False))
        self.kv_carry = None
        if self.shared_prefix:
            from rrr.generation.prefix import KVCarry

            self.kv_carry = KVCarry()

    def render(self, conversation: Messages) -> list[int]:
        return render_chat(self.tokenizer, conversation, **self.trainer.chat_template_kwargs)

    def any_rank(self, flag: bool) -> bool:
        """Whether ``flag`` holds on any process: how the episode decides, together, to run or skip a phase."""
        return world_max(self.trainer, int(bool(flag))) > 0

    def generate(self, conversations: Sequence[Messages], params: SamplingParams) -> list[Generation]:
        prompts = [self.render(c) for c in conversations]
        width = world_max(self.trainer, len(prompts))
        self.calls.append((len(prompts), width))
        if width == 0:
            return []
        filler = prompts[0] if prompts else self._filler_prompt()
        sent = prompts + [filler] * (width - len(prompts))
        outputs = self._vllm(sent, params) if uses_vllm(self.trainer) else self._hf(sent, params)
        outputs = outputs[: len(prompts)]
        texts = self.tokenizer.batch_decode([ids for ids, _, _ in outputs], skip_special_tokens=True)
        return [
            Generation(text=t, token_ids=ids, prompt_ids=p, logprobs=lps, truncated=trunc)
            for p, (ids, lps, trunc), t in zip(prompts, outputs, texts)
        ]

    def _filler_prompt(self) -> list[int]:
        """A short prompt for a rank with nothing to generate in a phase that another rank needs."""
        return self.render([{"role": "user", "content": "."}])

    def _vllm(self, prompts: list[list[int]], params: SamplingParams):
        vg = self.trainer.vllm_generation
        fields = ("max_completion_length", "temperature", "top_p", "top_k", "min_p", "repetition_penalty")
        saved = {f: getattr(vg, f) for f in fields}
        phase = {"max_completion_length": params.max_new_tokens, "temperature": params.temperature, **params.filters()}
        for f, v in phase.items():
            setattr(vg, f, v)
        try:
            prompt_ids, completion_ids, logprobs, _ = vg.generate(prompts=prompts, images=None, num_generations=1)
        finally:
            for f, v in saved.items():
                setattr(vg, f, v)
        check_pairing(prompts, prompt_ids, self.trainer.accelerator.process_index)
        eos = set(self.trainer.eos_token_ids)
        out = []
        for i, ids in enumerate(completion_ids):
            ids = list(ids)
            lps = flatten_logprobs(logprobs[i]) if logprobs is not None else None
            out.append((ids, lps, not ids or ids[-1] not in eos))
        return out

    def _hf(self, prompts: list[list[int]], params: SamplingParams):
        trainer = self.trainer
        ctx = unwrap_model_for_generation(
            trainer.model_wrapped,
            trainer.accelerator,
            gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
            gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs,
        )
        with ctx as model, torch.no_grad(), _eval_mode(model):
            outs = hf_generate_ids(
                model,
                self.tokenizer,
                prompts,
                params,
                self.hf_batch_size,
                eos_ids=set(trainer.eos_token_ids),
                shared_prefix=self.shared_prefix,
                stats=self.prefix_stats,
                carry=self.kv_carry,
                cascade=self.cascade,
            )
        return [(ids, None, trunc) for ids, trunc in outs]


def check_pairing(sent: list[list[int]], returned, rank: int) -> None:
    """Fail loudly unless the engine answered exactly the prompts this rank sent, in order."""
    if returned is None:
        return
    if len(returned) != len(sent):
        raise RuntimeError(
            f"rank {rank}: the generation engine returned {len(returned)} completions for {len(sent)} prompts; the "
            "ranks' generate calls are out of step (see TrainerGenerator in rrr/training/trl_adapter.py)"
        )
    for i, (mine, theirs) in enumerate(zip(sent, returned)):
        if list(mine) != list(theirs):
            raise RuntimeError(
                f"rank {rank}: completion {i} belongs to another prompt (the engine returned prompt ids starting "
                f"{list(theirs)[:8]} for a prompt starting {list(mine)[:8]}); training on it would pair another "
                "rank's completion with this rank's reward"
            )


def flatten_logprobs(per_token) -> list[float | None]:
    """vLLM's ``(len, k)`` logprobs -> the sampled token's logprob per token; a missing or NaN one stays ``None``.

    TRL turns ``None`` into NaN and gives such a token a log-ratio of exactly 0 (importance ratio 1, no correction).
    Writing 0.0 instead would claim the token had probability 1 and shrink the sequence's ratio.
    """
    out: list[float | None] = []
    for lp in per_token:
        value = lp[0] if lp else None
        out.append(None if value is None or math.isnan(value) else float(value))
    return out


@contextlib.contextmanager
def _eval_mode(model):
    """Dropout off while sampling (TRL's own HF path samples in the model's current mode; ours matches vLLM)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------------------------------------------------
# vLLM on CPU: weight sync
# --------------------------------------------------------------------------------------------------------------------
# vLLM's CPU platform (``vllm-cpu``) packs every linear layer's weight for its GEMM kernels once loaded and drops the
# original parameter, so TRL's colocate sync (``model.load_weights([(name, param)])``) raises ``AttributeError:
# 'Parameter' object has no attribute 'weight_loader'``. vLLM's own ``reload_weights`` re-runs the loader and the
# packing, except for a *tied* ``lm_head`` (it shares the embedding's parameter), which silently keeps packing the
# initial weights until it is re-processed. On CUDA none of this applies and TRL's own path runs untouched.
def _vllm_cpu_colocate(args) -> bool:
    """``use_vllm`` in colocate mode on vLLM's CPU platform (the only case handled here)."""
    if args is None or not getattr(args, "use_vllm", False) or getattr(args, "vllm_mode", None) != "colocate":
        return False
    from rrr.generation.vllm_cpu import vllm_cpu_platform

    return vllm_cpu_platform()


@contextlib.contextmanager
def _vllm_cpu_engine(args):
    """While TRL builds its colocated ``vllm.LLM``: rrr's CPU environment and engine arguments (eager, fp32).

    TRL passes no ``dtype``/``enforce_eager``: vLLM would downcast an fp32 policy to bf16 on CPU (sampling
    log-probs then differ from the trainer's) and spend minutes compiling. See ``rrr.generation.vllm_cpu``.
    """
    if not _vllm_cpu_colocate(args):
        yield
        return
    import trl.generation.vllm_generation as tvg

    from rrr.generation.vllm_cpu import configure_vllm_cpu_env, cpu_engine_kwargs

    configure_vllm_cpu_env()
    extra = cpu_engine_kwargs()
    trl_llm = tvg.LLM

    def llm(*a, **kw):
        return trl_llm(*a, **{**kw, **extra})

    tvg.LLM = llm
    try:
        yield
    finally:
        tvg.LLM = trl_llm


def sync_weights_vllm_cpu(vllm_generation, repack_tied_head: bool = True) -> None:
    """Push the policy's current weights into TRL's colocated vLLM engine on vLLM's CPU platform.

    Every parameter goes through vLLM's ``reload_weights`` (TRL's iterator: PEFT merged, FSDP/ZeRO-3 gathered;
    every process iterates, it is a collective), then a tied ``lm_head`` is re-packed from the new embedding, then
    the prefix cache is dropped (cached prefixes hold the old weights' keys/values). ``repack_tied_head=False``
    exists only so a test can show what the re-pack fixes.
    """
    if vllm_generation.enable_sleep_mode:
        raise ValueError("vllm_enable_sleep_mode is not supported with vLLM on CPU")
    runner = vllm_generation.llm.llm_engine.model_executor.driver_worker.model_runner
    runner.reload_weights(weights_iterator=vllm_generation._iter_named_params())
    model = runner.get_model()
    if repack_tied_head and getattr(runner.model_config.hf_text_config, "tie_word_embeddings", False):
        lm_head = model.lm_head
        lm_head.quant_method.process_weights_after_loading(lm_head)
    vllm_generation.llm.reset_prefix_cache()


def _install_vllm_cpu_sync(trainer) -> None:
    """Route ``trainer.vllm_generation.sync_weights`` through :func:`sync_weights_vllm_cpu` on vLLM's CPU platform."""
    if not _vllm_cpu_colocate(trainer.args):
        return
    vg = trainer.vllm_generation
    vg.sync_weights = lambda: sync_weights_vllm_cpu(vg)
