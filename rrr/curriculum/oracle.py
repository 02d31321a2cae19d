"""What the offline oracle teacher does beyond ``task.worked_solution``: lessons and plausible mistakes.

* ``oracle_reflection(task, example, attempt, verdict)`` — the reflection a good student would write after a failed
  attempt: the task's own lessons (``Task.oracle_reflections``: they name the mistake and the rule that avoids it),
  then generic ones built from the verdict's reason. Every candidate is checked with ``task.leaks_answer``; the first
  that does not leak is returned, so a reflection never states the answer.
* ``synthesize_failure(task, example, rng)`` — a *plausible* wrong attempt (``Task.synthesize_failure``, by default
  drawn from ``Task.plausible_mistakes``), so the reflection-SFT dataset can be built without a model that fails.
  Only attempts the verifier rejects are returned.

Everything task-specific lives on the task (``rrr.tasks``, ``docs/tasks.md``); this module never looks at which task
it is given, so a user's own ``Task`` gets the same treatment as a built-in one.
"""

from __future__ import annotations

import random

from rrr.tasks.base import Example, Task, Verdict


def _first_safe(task: Task, example: Example, candidates: list[str]) -> str:
    """The first candidate that does not leak the answer (the last one is the generic fallback)."""
    for text in candidates:
        if text and not task.leaks_answer(example, text):
            return text
    return candidates[-1]


def oracle_reflection(task: Task, example: Example, attempt: str, verdict: Verdict) -> str:
    """A lesson about the failed ``attempt`` that does not state the answer (see the module docstring)."""
    candidates = list(task.oracle_reflections(example, attempt, verdict)) + _generic_reflections(verdict)
    return _first_safe(task, example, candidates)


def _generic_reflections(verdict: Verdict) -> list[str]:
    rule = (
        "Next time I will re-read the problem, work through it step by step, check my result against every "
        "requirement, and only then give the final answer in the requested format."
    )
    texts = []
    if verdict.reason:
        texts.append(f"My answer was wrong: {verdict.reason}. {rule}")
    texts.append(f"My answer was wrong. {rule}")
    return texts


def synthesize_failure(task: Task, example: Example, rng: random.Random) -> str | None:
    """A plausible wrong attempt at ``example`` that the verifier rejects, or None when none can be made."""
    attempt = task.synthesize_failure(example, rng)
    return attempt if attempt and not task.verify(example, attempt).passed else None
