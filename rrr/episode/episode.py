"""Attempt -> reflection -> retry -> verify, batched by phase.

Each phase is **one** batched generation call over every episode in the batch (first attempts of all tasks, then all
reflections, then all retries), because engines are fast on big batches and slow on many small ones. Whether a phase
runs is decided with :func:`rrr.generation.base.any_rank`, so a generator shared by several processes sees the same
calls on every rank (a rank with nothing to generate still takes part with zero rows). Within an
episode the G reflections share the *same* failed attempt — that is what makes them a GRPO group: the only thing
that differs between them is the reflection, so the group-relative advantage credits the reflection alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rrr.generation.base import Generation, Generator, SamplingParams, any_rank
from rrr.tasks.base import Example, Task, Verdict, safe_leaks_answer, safe_verify


@dataclass(frozen=True)
class EpisodeConfig:
    """What one episode samples.

    ``reflections_per_failure`` is the GRPO group size G in training and 1 in the usual evaluation; retries are
    scored as the fraction of ``retries_per_reflection`` samples that pass (one greedy retry is the paper's setup).
    """

    attempt: SamplingParams = SamplingParams(max_new_tokens=256, temperature=1.0)
    reflection: SamplingParams = SamplingParams(max_new_tokens=128, temperature=1.0)
    retry: SamplingParams = SamplingParams(max_new_tokens=256, temperature=0.0)
    reflections_per_failure: int = 1
    retries_per_reflection: int = 1
    #: Online first attempts: sample up to this many and keep the first that fails (1 = the plain first attempt).
    first_attempt_tries: int = 1
    #: Reward subtracted from a reflection that leaks the answer (0 = detect and count only).
    leak_penalty: float = 0.0

    def __post_init__(self):
        for name in ("reflections_per_failure", "retries_per_reflection", "first_attempt_tries"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.retries_per_reflection > 1 and self.retry.greedy:
            raise ValueError("retries_per_reflection > 1 needs a retry temperature > 0 (greedy retries are identical)")
        if self.leak_penalty < 0:
            raise ValueError(f"leak_penalty must be >= 0, got {self.leak_penalty}")


@dataclass
class Attempt:
    """A first attempt and its verdict (``generation`` is None when it came from a dataset column)."""

    text: str
    verdict: Verdict
    generation: Generation | None = None


@dataclass
class ReflectionOutcome:
    """One reflection on the failed attempt, its retries and their verdicts."""

    reflection: Generation
    retries: list[Generation]
    verdicts: list[Verdict]
    leaked: bool
    leak_penalty: float = 0.0

    @property
    def text(self) -> str:
        return self.reflection.text

    @property
    def success_rate(self) -> float:
        return sum(v.passed for v in self.verdicts) / len(self.verdicts)

    @property
    def reward(self) -> float:
        """Fraction of retries that pass, minus the leak penalty when the reflection gave the answer away."""
        return self.success_rate - (self.leak_penalty if self.leaked else 0.0)


@dataclass
class Episode:
    """Everything that happened to one task instance."""

    example: Example
    example_id: str
    #: Every first attempt sampled (online mining may sample several); the last one is the one reflected upon.
    attempts: list[Attempt] = field(default_factory=list)
    reflections: list[ReflectionOutcome] = field(default_factory=list)

    @property
    def attempt(self) -> Attempt:
        return self.attempts[-1]

    @property
    def first_try_passed(self) -> bool:
        """Whether the *first* sampled attempt passed (the paper's "1st try")."""
        return bool(self.attempts) and self.attempts[0].verdict.passed

    @property
    def solved_without_reflection(self) -> bool:
        """No failed attempt was found: nothing to reflect on, no gradient (counted, not trained)."""
        return not self.attempts or self.attempt.verdict.passed

    @property
    def retry_passed(self) -> bool:
        """Whether the first reflection's first retry passed (the paper's "2nd try" on a failed item)."""
        return bool(self.reflections) and self.reflections[0].verdicts[0].passed

    @property
    def passed_within_two(self) -> bool:
        """Solved at the first try, or after one reflection + retry."""
        return self.first_try_passed or self.retry_passed

    @property
    def no_signal(self) -> bool:
        """All reflections earned the same reward: a GRPO group with zero advantage everywhere."""
        rewards = {r.reward for r in self.reflections}
        return len(self.reflections) > 0 and len(rewards) == 1


def run_episodes(
    task: Task,
    generator: Generator,
    examples: list[Example],
    config: EpisodeConfig,
    first_attempts: list[str | None] | None = None,
) -> list[Episode]:
    """Run one RRR episode per example, with one batched generation per phase.

    ``first_attempts`` (one per example) replaces sampling with stored attempts — the paper's offline failure set;
    ``None`` entries are sampled. A stored attempt that passes the verifier counts as solved.
    """
    if first_attempts is not None and len(first_attempts) != len(examples):
        raise ValueError(f"got {len(first_attempts)} first attempts for {len(examples)} examples")
    episodes = [Episode(example=ex, example_id=task.example_id(ex)) for ex in examples]

    # 1) first attempts ------------------------------------------------------------------------------------------
    to_sample = []
    for i, ep in enumerate(episodes):
        stored = first_attempts[i] if first_attempts is not None else None
        if stored is not None:
            ep.attempts.append(Attempt(stored, safe_verify(task, ep.example, stored)))
        else:
            to_sample.append(i)
    tries = config.first_attempt_tries
    pending = to_sample
    for _ in range(tries):  # each round samples only for episodes that have not failed yet
        if not any_rank(generator, bool(pending)):
            break
        gens = generator.generate([task.attempt_messages(episodes[i].example) for i in pending], config.attempt)
        still = []
        for i, gen in zip(pending, gens):
            verdict = safe_verify(task, episodes[i].example, gen.text)
            episodes[i].attempts.append(Attempt(gen.text, verdict, gen))
            if verdict.passed:
                still.append(i)
        pending = still

    # 2) reflections: G per failed episode, all on the same failed attempt ----------------------------------------
    failed = [ep for ep in episodes if not ep.solved_without_reflection]
    group = config.reflections_per_failure
    reflect_convs = [task.reflection_messages(ep.example, ep.attempt.text) for ep in failed for _ in range(group)]
    reflections = (
        generator.generate(reflect_convs, config.reflection) if any_rank(generator, bool(reflect_convs)) else []
    )

    # 3) retries: k per reflection, with the reflection in context ------------------------------------------------
    k = config.retries_per_reflection
    retry_convs = []
    for j, refl in enumerate(reflections):
        ep = failed[j // group]
        retry_convs.extend([task.retry_messages(ep.example, ep.attempt.text, refl.text)] * k)
    retries = generator.generate(retry_convs, config.retry) if any_rank(generator, bool(retry_convs)) else []

    # 4) verify ----------------------------------------------------------------------------------------------------
    for j, refl in enumerate(reflections):
        ep = failed[j // group]
        mine = retries[j * k : (j + 1) * k]
        ep.reflections.append(
            ReflectionOutcome(
                reflection=refl,
                retries=mine,
                verdicts=[safe_verify(task, ep.example, g.text) for g in mine],
                leaked=safe_leaks_answer(task, ep.example, refl.text),
                leak_penalty=config.leak_penalty,
            )
        )
    return episodes
