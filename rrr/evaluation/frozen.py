"""Reflect on frozen failures: several students' reflections on the *same* failed first attempts, compared paired.

Why: training changes a student's first attempts too, so "2nd try before vs after" from two independent evaluations
mixes a change in *which* problems fail with a change in how well the student recovers from a failure. Holding the
failures fixed — one reference student's failed first attempts on held-out problems, read from its evaluation's
``samples.jsonl`` — and asking every student to reflect on exactly those attempts and retry isolates the skill RRR
trains. Per-failure scores of two students give a paired interval (``rrr.evaluation.stats.paired_difference``), much
narrower than two independent ones.

Two scores per failure and student: ``greedy`` (one greedy reflection, greedy retry: 0 or 1) and ``sampled``
(``samples`` reflections at ``temperature``, greedy retry each: the fraction that pass) — the second is what RRR's
reward sees during training and has less variance. Used by ``make demo`` and ``make ablate``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from rrr.episode import Episode, EpisodeConfig, run_episodes
from rrr.evaluation.stats import mean_interval, paired_difference
from rrr.generation.base import Generator, SamplingParams
from rrr.tasks import Task, safe_verify
from rrr.utils.config import documented
from rrr.utils.io import read_jsonl


@documented
@dataclass
class FrozenConfig:
    r"""How each student reflects on the frozen failures.

    reflection_max_tokens (`int`, defaults to `256`):
        Token budget of each reflection.
    retry_max_tokens (`int`, defaults to `512`):
        Token budget of the (greedy) retry after it.
    samples (`int`, defaults to `4`):
        Reflections sampled per failure for the `sampled` score (0: greedy only).
    temperature (`float`, defaults to `1.0`):
        Temperature of the sampled reflections.
    seed (`int`, defaults to `0`):
        Seed of the sampled reflections.
    """

    reflection_max_tokens: int = 256
    retry_max_tokens: int = 512
    samples: int = 4
    temperature: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.samples < 0:
            raise ValueError(f"samples must be >= 0, got {self.samples}")
        if self.samples and self.temperature <= 0:
            raise ValueError("sampled reflections need temperature > 0 (or samples: 0 for greedy only)")


@dataclass
class FrozenScores:
    """One student's per-failure scores (aligned with the frozen failures) and the episodes behind them."""

    greedy: list[float]
    sampled: list[float]
    leaked: list[float]
    greedy_episodes: list[Episode] = field(default_factory=list, repr=False)
    sampled_episodes: list[Episode] = field(default_factory=list, repr=False)

    def scores(self) -> dict[str, list[float]]:
        """The per-failure lists (JSON-ready; ``FrozenScores(**scores)`` rebuilds this without the episodes)."""
        return {"greedy": self.greedy, "sampled": self.sampled, "leaked": self.leaked}

    def summary(self) -> dict[str, Any]:
        return {
            "greedy": mean_interval(self.greedy),
            "sampled": mean_interval(self.sampled) if self.sampled else None,
            "leak_rate": mean_interval(self.leaked),
        }

    def sample_rows(self, student: str) -> list[dict[str, Any]]:
        """One JSON row per failure: the attempt, the greedy reflection and retry, the sampled reflections."""
        rows = []
        sampled = self.sampled_episodes or [None] * len(self.greedy_episodes)
        for gep, sep in zip(self.greedy_episodes, sampled):
            row = {
                "student": student,
                "id": gep.example_id,
                "attempt": gep.attempt.text,
                "greedy_reflection": gep.reflections[0].text,
                "greedy_retry": gep.reflections[0].retries[0].text,
                "greedy_retry_passed": gep.retry_passed,
            }
            if sep is not None:
                row["sampled_reflections"] = [o.text for o in sep.reflections]
                row["sampled_retry_passed"] = [o.verdicts[0].passed for o in sep.reflections]
            rows.append(row)
        return rows


def load_frozen_failures(samples_path: str, examples: list[dict], task: Task) -> tuple[list[dict], list[str]]:
    """The failed first attempts in an evaluation's ``samples.jsonl``, with their examples (in file order)."""
    if not os.path.exists(samples_path):
        raise FileNotFoundError(f"{samples_path} is missing: evaluate the reference student first")
    by_id = {task.example_id(ex): ex for ex in examples}
    failed = [r for r in read_jsonl(samples_path) if not r["attempt_passed"]]
    missing = [r["id"] for r in failed if r["id"] not in by_id]
    if missing:
        raise ValueError(
            f"{len(missing)} failures in {samples_path} are not among the given examples (e.g. {missing[0]!r}): "
            "evaluate with the same split, n and seed"
        )
    return [by_id[r["id"]] for r in failed], [r["attempt"] for r in failed]


def score_on_frozen(
    task: Task, generator: Generator, examples: list[dict], attempts: list[str], config: FrozenConfig
) -> FrozenScores:
    """Reflect (greedy, and ``config.samples`` at T) on each frozen failed attempt, retry greedily, verify.

    Every frozen attempt must still fail the verifier: one that passes (the task or its generator changed since the
    failures were recorded) has nothing to reflect on, and is an error rather than a silently shorter table.
    """
    passing = [i for i, (ex, a) in enumerate(zip(examples, attempts)) if safe_verify(task, ex, a).passed]
    if passing:
        raise ValueError(
            f"{len(passing)} of {len(attempts)} frozen 'failed' attempts pass the verifier now (e.g. example "
            f"{task.example_id(examples[passing[0]])!r}): the task, its data or its generator changed since the "
            "failures were recorded. Re-run the evaluation that produced them."
        )
    greedy_cfg = EpisodeConfig(
        reflection=SamplingParams(config.reflection_max_tokens, 0.0),
        retry=SamplingParams(config.retry_max_tokens, 0.0),
    )
    greedy_eps = run_episodes(task, generator, examples, greedy_cfg, first_attempts=attempts)
    sampled_eps: list[Episode] = []
    if config.samples:
        sampled_cfg = EpisodeConfig(
            reflection=SamplingParams(config.reflection_max_tokens, config.temperature, seed=config.seed),
            retry=SamplingParams(config.retry_max_tokens, 0.0),
            reflections_per_failure=config.samples,
        )
        sampled_eps = run_episodes(task, generator, examples, sampled_cfg, first_attempts=attempts)
    leaked_from = sampled_eps or greedy_eps
    return FrozenScores(
        greedy=[float(ep.retry_passed) for ep in greedy_eps],
        sampled=[sum(o.success_rate for o in ep.reflections) / len(ep.reflections) for ep in sampled_eps],
        leaked=[float(o.leaked) for ep in leaked_from for o in ep.reflections],
        greedy_episodes=greedy_eps,
        sampled_episodes=sampled_eps,
    )


def paired_gains(scores: dict[str, FrozenScores], reference: str) -> dict[str, dict[str, Any]]:
    """Each student's paired difference from ``reference`` (greedy, and sampled when scored)."""
    ref = scores[reference]
    gains = {}
    for name, s in scores.items():
        if name == reference:
            continue
        gains[name] = {"greedy": paired_difference(s.greedy, ref.greedy)}
        if s.sampled and ref.sampled:
            gains[name]["sampled"] = paired_difference(s.sampled, ref.sampled)
    return gains
