"""The RRR rollout: TRL's ``rollout_func``, built on the shared episode code.

TRL hands us the batch's prompts, already repeated G times consecutively (one GRPO group per task). We run one RRR
episode per group with the current policy and return, for every row, the **reflection** as the GRPO completion:

* ``prompt_ids`` = task + failed attempt + reflection request, exactly as the engine saw them;
* ``completion_ids`` = the sampled reflection tokens — so only reflection tokens can ever enter the loss, by
  construction (the first attempt is prompt; the retry is never forwarded through the trained graph at all);
* extra fields with the retry's reward and the episode's texts, which TRL forwards to ``rrr_reward``.

Groups whose first attempt passed have nothing to reflect on: they get a one-token dummy completion with
``env_mask=[0]`` and reward ``None`` (advantage 0, no weight in the loss normaliser) and are counted as skipped.
Under ``no_signal_groups: mask`` a group whose reflections all earned the same reward gets such dummy rows too (with
its true rewards), so the trainer scores one short row instead of G full ones (see :meth:`RRRRollout._assemble`).

With ``signal_oversample > 0`` each step also runs episodes on a few extra training tasks and trains those whose
groups have signal in place of the batch's groups that have none (``docs/signal-aware.md``).
"""

from __future__ import annotations

import math
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

    #: Rows of a masked no-signal group as one-token dummies (one short shared prompt per group) instead of its G real
    #: reflections with ``env_mask`` zero: the same loss and gradient, fewer tokens scored (see :meth:`_assemble`).
    #: A class attribute so that a test can build today's full masked rows and compare the two.
    cheap_masked_rows: bool = True

    def __init__(self, task: Task, args):
        self.task = task
        self.args = args
        #: Draws the extra tasks of ``signal_oversample``; created on the first step (it needs the process index).
        self.extra_rng: random.Random | None = None

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
        n_extra = self.extra_task_count(n_groups, trainer)
        extras = self.draw_extra_tasks(trainer, n_extra, frozenset(self.task.example_id(ex) for ex in examples))
        first_attempts = None
        if self.args.first_attempt_source == "column":
            column = self.args.first_attempt_column
            first_attempts = stored_first_attempts(self.task, examples + extras, column)
        generator = self.make_generator(trainer)
        # the batch's own tasks and the extras in the same three phase calls: as many engine calls as without extras
        episodes = run_episodes(
            self.task,
            generator,
            examples + extras,
            episode_config_from_args(self.args, group),
            first_attempts=first_attempts,
        )
        own, extra = episodes[:n_groups], episodes[n_groups:]
        trained, replaced = select_signal_groups(own, extra)
        out = self._assemble(trained, group, generator, trainer, replaced=replaced if n_extra else None)
        self._log(
            episodes, trainer, time.perf_counter() - start, trained=trained, n_extra=len(extra), generator=generator
        )
        return out

    # ----------------------------------------------------------------------------------------------------------------
    def extra_task_count(self, n_groups: int, trainer) -> int:
        """``ceil(n_groups * signal_oversample)`` extra tasks in training, none in evaluation (an evaluation scores the
        batch it was given). It depends on the config and the batch shape only — the same on every rank, so every
        rank's phase calls keep the same size."""
        fraction = getattr(self.args, "signal_oversample", 0.0) or 0.0
        if fraction <= 0 or not trainer.model.training:
            return 0
        return math.ceil(round(n_groups * fraction, 9))  # round: 10 * 0.3 is 3.0000000000000004, not 4 tasks

    def draw_extra_tasks(self, trainer, n: int, exclude: frozenset[str] = frozenset()) -> list[dict]:
        """``min(n, len(dataset))`` distinct rows of the trainer's training dataset, drawn with this rollout's own RNG,
        avoiding the tasks in ``exclude`` (the batch's own: a task trained twice in one step would count double)
        while the dataset has enough others.

        Seeded from ``args.seed`` and the process index, so ranks draw different tasks and a rerun draws the same
        ones; never the global ``random``/``torch`` RNGs, whose state decides sampling and dropout (drawing extras
        must not change what the batch's own tasks sample). The count depends on ``n`` and the dataset's size only,
        never on which tasks were drawn, so it is the same on every rank."""
        if n == 0:
            return []
        dataset = trainer.train_dataset
        if dataset is None or not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise RuntimeError(
                "signal_oversample needs a map-style training dataset to draw extra tasks from; set signal_oversample: 0"
            )
        if self.extra_rng is None:
            rank = trainer.accelerator.process_index
            self.extra_rng = random.Random(f"rrr-signal-oversample:{self.args.seed}:{rank}")
        candidates = [
            dict(dataset[i]) for i in self.extra_rng.sample(range(len(dataset)), min(len(dataset), n + len(exclude)))
        ]
        fresh = [row for row in candidates if self.task.example_id(row) not in exclude]
        repeats = [row for row in candidates if self.task.example_id(row) in exclude]
        return (fresh + repeats)[:n]

    def make_generator(self, trainer):
        """The engine the episode runs on: the trainer's current policy (:class:`trl_adapter.TrainerGenerator`).

        A subclass may wrap it (to time or count each phase, as ``rrr.bench.real_model`` does) or, in tests, replace
        it with a scripted one; the episode only needs ``generate`` (plus ``render`` and ``any_rank``)."""
        return adapter.TrainerGenerator(trainer)

    # ----------------------------------------------------------------------------------------------------------------
    def _assemble(
        self, episodes: list[Episode], group: int, generator, trainer, replaced: dict[int, Episode] | None = None
    ) -> dict:
        """TRL's rows, G per episode in order: the reflections as completions, dummies where nothing is trained.

        ``replaced`` (only with ``signal_oversample``) maps a group's position to the batch's own episode that an
        extra replaced there; it adds the ``rrr_task_id`` field (the completions table's ``task_id`` column: the
        table's ``prompt`` column shows the batch's dataset prompt, not the substitute's) and ``substitutes_for`` to
        the episode records.

        **Cheap masked rows.** Under ``no_signal_groups: mask`` the G rows of a no-signal group are one-token dummies
        (``completion_ids=[eos]``, ``env_mask=[0]``) sharing one single-token prompt, with the group's true rewards.
        TRL's loss is the same as with the G real reflections masked: every term of ``_compute_loss`` (policy, KL,
        entropy mask, IS ratios) is multiplied by ``completion_mask * env_mask`` before it is reduced, so a row whose
        mask is all zero adds exactly 0 to each numerator, and no row of it gradient; the normalisers do not change
        either — ``dapo``/``bnpo``/``cispo``/``vespo`` divide by the number of unmasked tokens (0 from either row),
        ``grpo``/``sapo`` average per-row means over the same number of rows (0 for either row: the row sum is 0 and
        the denominator is clamped to 1), ``dr_grpo``/``luspo`` divide by the row count. The rewards, hence every
        advantage (group- and batch-scaled alike), are the true ones. What differs is only the padding around the
        other rows, which moves their positions and changes float rounding, not the value
        (``tests/test_signal_aware.py`` compares loss and gradients both ways); and TRL's completion-length and
        clipped-ratio logs, which now see a one-token row. ``episodes.jsonl`` keeps the real reflections.
        """
        use_logprobs = adapter.uses_vllm(trainer)
        eos = trainer.processing_class.eos_token_id
        mask_no_signal = self.args.no_signal_groups == "mask"
        keys = [
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
        ]
        if replaced is not None:
            keys.append("rrr_task_id")
        out: dict[str, list] = {k: [] for k in keys}
        records: list[dict | None] = []
        for position, ep in enumerate(episodes):
            first = len(out["prompt_ids"])
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
            else:
                silent = mask_no_signal and ep.no_signal
                cheap = silent and self.cheap_masked_rows
                for outcome in ep.reflections:
                    refl = outcome.reflection
                    if cheap:  # one token of the real prompt: the same single-token prompt for the whole group
                        out["prompt_ids"].append(list(ep.reflections[0].reflection.prompt_ids[:1]) or [eos])
                        out["completion_ids"].append([eos])
                        out["logprobs"].append([0.0])
                        out["env_mask"].append([0])
                    else:
                        out["prompt_ids"].append(refl.prompt_ids)
                        out["completion_ids"].append(refl.token_ids)
                        # None (not 0.0) where the engine reported no logprob: TRL then leaves that token's IS ratio
                        # at 1
                        logprobs = refl.logprobs if refl.logprobs is not None else [None] * len(refl.token_ids)
                        out["logprobs"].append(logprobs)
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
                    if replaced is not None and position in replaced:
                        records[-1]["substitutes_for"] = replaced[position].example_id
            if replaced is not None:
                out["rrr_task_id"].extend([ep.example_id] * (len(out["prompt_ids"]) - first))
        if not use_logprobs:
            out["logprobs"] = None
        adapter.set_episode_records(trainer, records)
        return out

    def _log(
        self,
        episodes: list[Episode],
        trainer,
        seconds: float,
        trained: list[Episode] | None = None,
        n_extra: int = 0,
        generator=None,
    ) -> None:
        """Per-step metrics over every episode run (the batch's own and any extras), plus what was trained.

        ``trained`` (default: ``episodes``) are the step's GRPO groups; ``rrr/signal_group_frac`` is the fraction of
        them with signal and ``rrr/tokens_per_signal_group`` every generated token of the step (extras included)
        per such group — NaN on a step without one; ``rrr/no_signal_token_frac`` the share of generated tokens that
        did not end in a trained group with signal (skipped, no-signal, and extras left out). On HF generate,
        ``rrr/prompt_tokens_saved_frac`` is the share of prompt tokens that shared-prefix prefill and the carried KV
        cache did not feed the model (NaN on vLLM, whose prefix caching is internal). Every rank logs every key,
        whatever its data."""
        trained = episodes if trained is None else trained
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
        signal_groups = sum(has_signal(ep) for ep in trained)
        generated = sum(ep.generated_tokens for ep in episodes)
        sums["rrr/signal_group_frac"], counts["rrr/signal_group_frac"] = signal_groups, len(trained)
        sums["rrr/tokens_per_signal_group"], counts["rrr/tokens_per_signal_group"] = generated, signal_groups
        useful = sum(ep.generated_tokens for ep in trained if has_signal(ep))
        sums["rrr/no_signal_token_frac"], counts["rrr/no_signal_token_frac"] = generated - useful, generated
        prefix = getattr(generator, "prefix_stats", None) or {}
        sums["rrr/prompt_tokens_saved_frac"] = prefix.get("prompt_tokens_saved", 0)
        counts["rrr/prompt_tokens_saved_frac"] = prefix.get("prompt_tokens", 0)
        totals = adapter.log_metrics(trainer, sums, counts)
        self._check_verifier_errors(trainer, totals["rrr/verifier_errors"])
        adapter.log_scalar(trainer, "rrr/rollout_seconds", seconds)
        # every token the three phases generated: the compute budget that the outcome-GRPO ablation is matched to
        adapter.log_total(trainer, "rrr/generated_tokens", generated)
        adapter.log_total(trainer, "rrr/oversampled_tasks", n_extra)

    def _check_verifier_errors(self, trainer, step_total: tuple[float, float]) -> None:
        """Stop (on every rank at once: the totals are global) once verifier errors pass the configured rate.

        The rate is over the whole run and only judged after ``MIN_VERIFICATIONS``, so one odd completion early on
        does not end a run, while a verifier that fails on a fifth of its inputs does within a step or two.
        """
        errors, total = adapter.running_total(trainer, "verifier_errors", step_total)
        where = f"RRR training on task {self.task.name!r}"
        rate = self.args.max_verifier_error_rate
        check_verifier_error_rate(int(errors), int(total), rate, where, min_total=MIN_VERIFICATIONS)


def has_signal(episode: Episode) -> bool:
    """Whether the episode's GRPO group carries a gradient: it failed first, and its reflections' rewards differ."""
    return not episode.solved_without_reflection and not episode.no_signal


def select_signal_groups(own: list[Episode], extra: list[Episode]) -> tuple[list[Episode], dict[int, Episode]]:
    """The step's groups: the batch's own episodes, each one without signal replaced, in order, by the next extra
    episode with signal while any is left. Returns the episodes to train (one per own position) and, per replaced
    position, the own episode it replaced. Own groups with signal always stay, at their position."""
    substitutes = iter([ep for ep in extra if has_signal(ep)])
    trained, replaced = [], {}
    for position, ep in enumerate(own):
        sub = None if has_signal(ep) else next(substitutes, None)
        if sub is not None:
            replaced[position] = ep
        trained.append(ep if sub is None else sub)
    return trained, replaced


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
    rrr_task_id=None,
    log_extra=None,
    **kwargs,
) -> list[float | None]:
    """The RRR reward: the retry's verifier result (minus any leak penalty), computed in the rollout.

    ``None`` for groups solved at the first attempt (TRL turns it into advantage 0). The first attempt, retry and
    leak flag become columns of TRL's completions table, and so does the task id under ``signal_oversample`` (a
    substituted group's rows are another task's than the table's ``prompt`` column shows).
    """
    if log_extra is not None:
        if rrr_first_attempt is not None:
            log_extra("first_attempt", list(rrr_first_attempt))
        if rrr_retry is not None:
            log_extra("retry", list(rrr_retry))
        if rrr_leaked is not None:
            log_extra("leaked", [bool(x) for x in rrr_leaked])
        if rrr_task_id is not None:
            log_extra("task_id", [str(x) for x in rrr_task_id])
    return [None if skipped else float(r) for r, skipped in zip(rrr_reward, rrr_skipped)]
