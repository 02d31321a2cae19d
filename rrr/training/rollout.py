"""The RRR rollout: TRL's ``rollout_func``, built on the shared episode code.

TRL hands us the batch's prompts, already repeated G times consecutively (one GRPO group per task). We run one RRR
episode per group with the current policy and return, for every row, the **reflection** as the GRPO completion:

* ``prompt_ids`` = task + failed attempt + reflection request, exactly as the engine saw them;
* ``completion_ids`` = the sampled reflection tokens — so only reflection tokens can ever enter the loss, by
  construction (the first attempt is prompt; the retry is never forwarded through the trained graph at all);
* extra fields with the retry's reward and the episode's texts, which TRL forwards to ``rrr_reward``.

Groups whose first attempt passed have nothing to reflect on: they get a one-token dummy completion with
``env_mask=[0]`` and reward ``None`` (advantage 0, no weight in the loss normaliser) and are counted as skipped.
"""

from __future__ import annotations

import random
import time

from rrr.episode import Episode, EpisodeConfig, run_episodes
from rrr.generation.base import SamplingParams
from rrr.tasks.base import MIN_VERIFICATIONS, Task, TaskDataError, check_verifier_error_rate
from rrr.training import trl_adapter as adapter


def reflection_sampling(args) -> SamplingParams:
    """The reflection phase samples exactly as the GRPO trainer scores: its temperature, top-p, top-k, min-p and
    repetition penalty (TRL's own generation uses the same fields)."""
    return SamplingParams(
        args.max_completion_length,
        args.temperature,
        top_p=args.top_p,
        top_k=args.top_k or 0,
        min_p=args.min_p or 0.0,
        repetition_penalty=args.repetition_penalty,
    )


def episode_config_from_args(args, group: int) -> EpisodeConfig:
    """The episode settings of one training step, from an ``RRRConfig``.

    Attempts and retries are not trained, so they sample with neutral filters (no top-k/top-p/min-p, no penalty) at
    their own temperatures; the reflection follows :func:`reflection_sampling`.
    """
    return EpisodeConfig(
        attempt=SamplingParams(args.attempt_max_tokens, args.attempt_temperature),
        reflection=reflection_sampling(args),
        retry=SamplingParams(args.retry_max_tokens, args.retry_temperature),
        reflections_per_failure=group,
        retries_per_reflection=args.retries_per_reflection,
        first_attempt_tries=args.first_attempt_tries if args.first_attempt_source == "online" else 1,
        leak_penalty=args.leak_penalty,
    )


def stored_first_attempts(task: Task, examples: list[dict], column: str) -> list[str]:
    """The stored failed attempts of a column-mode batch; a missing or empty one is an error, never a silent online
    sample (``run_episodes`` samples for ``None``) or a reflection on nothing. ``preflight_training`` rejects such
    rows at start-up; this guards a trainer built without it."""
    attempts = [ex.get(column) for ex in examples]
    for ex, attempt in zip(examples, attempts):
        if not isinstance(attempt, str) or not attempt.strip():
            raise TaskDataError(
                f"task {task.example_id(ex)!r} has no stored first attempt in column {column!r} ({attempt!r:.40}) "
                "although first_attempt_source='column'; remove such rows or use first_attempt_source: online"
            )
    return attempts


class RRRRollout:
    """Callable ``rollout_func(prompts, trainer) -> dict`` for ``GRPOTrainer``."""

    def __init__(self, task: Task, args):
        self.task = task
        self.args = args

    def __call__(self, prompts: list, trainer) -> dict:
        start = time.perf_counter()
        rows = adapter.batch_rows(trainer)
        group = adapter.group_size(trainer)
        if len(rows) != len(prompts) or len(prompts) % group:
            raise RuntimeError(
                f"rollout got {len(prompts)} prompts and {len(rows)} rows for groups of {group}; "
                "TRL's batching contract changed (see rrr/training/trl_adapter.py)"
            )
        n_groups = len(prompts) // group
        for g in range(n_groups):
            if any(prompts[g * group + j] != prompts[g * group] for j in range(group)):
                raise RuntimeError("a GRPO group holds different prompts; TRL's RepeatSampler contract changed")
        examples = [rows[g * group] for g in range(n_groups)]
        first_attempts = None
        if self.args.first_attempt_source == "column":
            first_attempts = stored_first_attempts(self.task, examples, self.args.first_attempt_column)
        generator = self.make_generator(trainer)
        episodes = run_episodes(
            self.task, generator, examples, episode_config_from_args(self.args, group), first_attempts=first_attempts
        )
        out = self._assemble(episodes, group, generator, trainer)
        self._log(episodes, trainer, time.perf_counter() - start)
        return out

    def make_generator(self, trainer):
        """The engine the episode runs on: the trainer's current policy (:class:`trl_adapter.TrainerGenerator`).

        A subclass may wrap it (to time or count each phase, as ``rrr.bench.real_model`` does) or, in tests, replace
        it with a scripted one; the episode only needs ``generate`` (plus ``render`` and ``any_rank``)."""
        return adapter.TrainerGenerator(trainer)

    # ----------------------------------------------------------------------------------------------------------------
    def _assemble(self, episodes: list[Episode], group: int, generator, trainer) -> dict:
        use_logprobs = adapter.uses_vllm(trainer)
        eos = trainer.processing_class.eos_token_id
        mask_no_signal = self.args.no_signal_groups == "mask"
        out: dict[str, list] = {
            k: []
            for k in (
                "prompt_ids",
                "completion_ids",
                "logprobs",
                "env_mask",
                "rrr_reward",
                "rrr_skipped",
                "rrr_retry_success",
                "rrr_leaked",
                "rrr_first_attempt",
                "rrr_retry",
            )
        }
        records: list[dict | None] = []
        for ep in episodes:
            if ep.solved_without_reflection:
                dummy_prompt = generator.render(self.task.attempt_messages(ep.example))
                for _ in range(group):
                    out["prompt_ids"].append(dummy_prompt)
                    out["completion_ids"].append([eos])
                    out["logprobs"].append([0.0])
                    out["env_mask"].append([0])
                    out["rrr_reward"].append(None)
                    out["rrr_skipped"].append(True)
                    out["rrr_retry_success"].append(None)
                    out["rrr_leaked"].append(False)
                    out["rrr_first_attempt"].append(ep.attempt.text)
                    out["rrr_retry"].append("")
                    records.append(None)
                continue
            silent = mask_no_signal and ep.no_signal
            for outcome in ep.reflections:
                refl = outcome.reflection
                out["prompt_ids"].append(refl.prompt_ids)
                out["completion_ids"].append(refl.token_ids)
                # None (not 0.0) where the engine reported no logprob: TRL then leaves that token's IS ratio at 1
                out["logprobs"].append(refl.logprobs if refl.logprobs is not None else [None] * len(refl.token_ids))
                out["env_mask"].append([0 if silent else 1] * len(refl.token_ids))
                out["rrr_reward"].append(outcome.reward)
                out["rrr_skipped"].append(False)
                out["rrr_retry_success"].append(outcome.success_rate)
                out["rrr_leaked"].append(outcome.leaked)
                out["rrr_first_attempt"].append(ep.attempt.text)
                out["rrr_retry"].append(outcome.retries[0].text)
                records.append(
                    {
                        "task_id": ep.example_id,
                        "first_attempt": ep.attempt.text,
                        "first_attempt_verdict": ep.attempt.verdict.reason,
                        "attempts_sampled": len(ep.attempts),
                        "reflection": outcome.text,
                        "reflection_tokens": len(refl.token_ids),
                        "retries": [g.text for g in outcome.retries],
                        "retry_passed": [v.passed for v in outcome.verdicts],
                        "retry_verdicts": [v.reason for v in outcome.verdicts],
                        "leaked": outcome.leaked,
                        "reward": outcome.reward,
                        "no_signal_group": ep.no_signal,
                    }
                )
        if not use_logprobs:
            out["logprobs"] = None
        adapter.set_episode_records(trainer, records)
        return out

    def _log(self, episodes: list[Episode], trainer, seconds: float) -> None:
        failed = [ep for ep in episodes if not ep.solved_without_reflection]
        outcomes = [o for ep in failed for o in ep.reflections]
        # the *first* attempt of each task only: resampled attempts (first_attempt_tries > 1) are drawn until one fails,
        # so averaging over all of them would overstate accuracy (true 0.50 reads 0.71 at 4 tries)
        first_tries = [ep.attempts[0].verdict.passed for ep in episodes if ep.attempts]
        n, nf, no = len(episodes), len(failed), len(outcomes)
        sums = {
            "rrr/first_attempt_acc": sum(first_tries),
            "rrr/attempts_per_task": sum(len(ep.attempts) for ep in episodes),
            "rrr/skipped_frac": n - nf,
            "rrr/retry_success": sum(o.success_rate for o in outcomes),
            "rrr/leak_rate": sum(o.leaked for o in outcomes),
            "rrr/no_signal_frac": sum(ep.no_signal for ep in failed),
            "rrr/all_pass_frac": sum(ep.no_signal and ep.reflections[0].success_rate == 1 for ep in failed),
            "rrr/all_fail_frac": sum(ep.no_signal and ep.reflections[0].success_rate == 0 for ep in failed),
            "rrr/reflection_len": sum(o.reflection.num_tokens for o in outcomes),
            "rrr/retry_len": sum(g.num_tokens for o in outcomes for g in o.retries),
        }
        counts = {
            "rrr/first_attempt_acc": len(first_tries),
            "rrr/attempts_per_task": n,
            "rrr/skipped_frac": n,
            "rrr/retry_success": no,
            "rrr/leak_rate": no,
            "rrr/no_signal_frac": nf,
            "rrr/all_pass_frac": nf,
            "rrr/all_fail_frac": nf,
            "rrr/reflection_len": no,
            "rrr/retry_len": sum(len(o.retries) for o in outcomes),
        }
        verdicts = [a.verdict for ep in episodes for a in ep.attempts] + [v for o in outcomes for v in o.verdicts]
        sums["rrr/verifier_errors"] = sum(v.error is not None for v in verdicts)
        counts["rrr/verifier_errors"] = len(verdicts)
        totals = adapter.log_metrics(trainer, sums, counts)
        self._check_verifier_errors(trainer, totals["rrr/verifier_errors"])
        adapter.log_scalar(trainer, "rrr/rollout_seconds", seconds)
        # every token the three phases generated: the compute budget that the outcome-GRPO ablation is matched to
        adapter.log_total(trainer, "rrr/generated_tokens", sum(ep.generated_tokens for ep in episodes))

    def _check_verifier_errors(self, trainer, step_total: tuple[float, float]) -> None:
        """Stop (on every rank at once: the totals are global) once verifier errors pass the configured rate.

        The rate is over the whole run and only judged after ``MIN_VERIFICATIONS``, so one odd completion early on
        does not end a run, while a verifier that fails on a fifth of its inputs does within a step or two.
        """
        errors, total = adapter.running_total(trainer, "verifier_errors", step_total)
        where = f"RRR training on task {self.task.name!r}"
        rate = self.args.max_verifier_error_rate
        check_verifier_error_rate(int(errors), int(total), rate, where, min_total=MIN_VERIFICATIONS)


class ShuffledRewardRollout(RRRRollout):
    """The shuffled-reward control: RRR exactly, except that each group's rewards are permuted among its reflections.

    The reward values of a group are unchanged — so are the advantages' magnitudes, the no-signal masking and every
    logged metric and episode record (they keep the true rewards) — only the link between a reflection and the
    reward *it* earned is cut. A gain that survives this control comes from extra training, not from credit
    assignment. The permutation draws from this rollout's own RNG (``seed``), never from the global ones that
    sampling and dropout use, so the control changes nothing but the rewards' order.

        build_trainer(args, model_args, rollout_factory=functools.partial(ShuffledRewardRollout, seed=1))
    """

    def __init__(self, task: Task, args, seed: int):
        super().__init__(task, args)
        self.rng = random.Random(seed)

    def __call__(self, prompts: list, trainer) -> dict:
        out = super().__call__(prompts, trainer)
        shuffle_within_groups(out["rrr_reward"], adapter.group_size(trainer), self.rng)
        return out


def shuffle_within_groups(rewards: list, group: int, rng: random.Random) -> None:
    """Permute ``rewards`` in place within each block of ``group`` consecutive rows (one GRPO group); a group with
    a ``None`` (solved at the first attempt: nothing was trained) is left as it is."""
    for start in range(0, len(rewards), group):
        block = rewards[start : start + group]
        if any(r is None for r in block):
            continue
        rng.shuffle(block)
        rewards[start : start + group] = block


def rrr_reward(
    completions,
    rrr_reward,
    rrr_skipped,
    rrr_first_attempt=None,
    rrr_retry=None,
    rrr_leaked=None,
    log_extra=None,
    **kwargs,
) -> list[float | None]:
    """The RRR reward: the retry's verifier result (minus any leak penalty), computed in the rollout.

    ``None`` for groups solved at the first attempt (TRL turns it into advantage 0). The first attempt, retry and
    leak flag become columns of TRL's completions table.
    """
    if log_extra is not None:
        if rrr_first_attempt is not None:
            log_extra("first_attempt", list(rrr_first_attempt))
        if rrr_retry is not None:
            log_extra("retry", list(rrr_retry))
        if rrr_leaked is not None:
            log_extra("leaked", [bool(x) for x in rrr_leaked])
    return [None if skipped else float(r) for r, skipped in zip(rrr_reward, rrr_skipped)]
