"""Stage 1 — teacher self-improvement without gradients (the Linguistic RL journaling loop).

The teacher solves training problems in batches with its *current strategy*; the task's verifier marks each solution
and the teacher is shown which it got right; after each batch it writes a journal entry (what worked, what failed,
edge cases); every ``distill_every`` batches — and once more at the end — the recent journal is distilled into a new
strategy that replaces the old one. The learned strategy is the natural-language curriculum of stage 2.

Everything is saved under ``output_dir`` and rewritten atomically after every batch, so an interrupted run leaves
consistent files (and, with the teacher cache, resumes for free):

* ``batches.json`` — per-batch ``n``, ``correct``, ``accuracy`` and the strategy version used;
* ``journal.json`` / ``journal.md`` — every journal entry;
* ``strategies.json`` and ``strategies/v{k}.md`` — every strategy version (v0 is the initial one);
* ``attempts.jsonl`` — every solution with its verdict (the source of the reflection-SFT failures).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rrr.curriculum.teachers import SolveResult, Teacher
from rrr.tasks.base import Example, Task, safe_verify
from rrr.utils.io import atomic_write_json, atomic_write_text


@dataclass
class SelfImproveConfig:
    """Knobs of the journaling loop (defaults: Linguistic RL's validated scheduling run)."""

    #: Problems per batch; one journal entry per batch.
    batch_size: int = 10
    #: Distill the journal into a new strategy after every this many batches (plus once after the last batch).
    distill_every: int = 5
    #: The distillation prompt sees the last this many characters of the journal (Linguistic RL: 5,000).
    journal_window_chars: int = 5_000
    #: Show a tqdm progress bar over batches.
    progress: bool = True

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.distill_every < 1:
            raise ValueError(f"distill_every must be >= 1, got {self.distill_every}")
        if self.journal_window_chars < 1:
            raise ValueError(f"journal_window_chars must be >= 1, got {self.journal_window_chars}")


@dataclass
class SelfImproveResult:
    """What stage 1 produced; ``final_strategy`` is the curriculum's strategy."""

    strategies: list[dict[str, Any]] = field(default_factory=list)
    journal: list[dict[str, Any]] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[SolveResult] = field(default_factory=list)

    @property
    def final_strategy(self) -> str:
        return self.strategies[-1]["text"]

    @property
    def accuracy(self) -> float:
        """Training accuracy over all batches (the strategy changes along the way)."""
        return sum(a.passed for a in self.attempts) / max(1, len(self.attempts))

    @property
    def failures(self) -> list[SolveResult]:
        return [a for a in self.attempts if not a.passed]


def self_improve(
    task: Task,
    teacher: Teacher,
    examples: Sequence[Example],
    output_dir: str,
    config: SelfImproveConfig | None = None,
    initial_strategy: str | None = None,
) -> SelfImproveResult:
    """Run the journaling loop over ``examples`` (see the module docstring); returns and saves the result."""
    config = config or SelfImproveConfig()
    examples = [dict(ex) for ex in examples]
    if not examples:
        raise ValueError("self_improve needs at least one training example")
    strategy = initial_strategy or teacher.initial_strategy(task)
    result = SelfImproveResult(strategies=[{"version": 0, "after_batch": 0, "text": strategy}])
    batches = [examples[i : i + config.batch_size] for i in range(0, len(examples), config.batch_size)]
    since_distill = 0

    from tqdm.auto import tqdm

    bar = tqdm(batches, desc="stage 1: self-improvement", unit="batch", disable=not config.progress)
    for b, batch in enumerate(bar, 1):
        version = len(result.strategies) - 1
        completions = teacher.solve_many(task, batch, strategy)
        solved = [
            SolveResult(ex, text, safe_verify(task, ex, text), strategy_version=version)
            for ex, text in zip(batch, completions)
        ]
        result.attempts.extend(solved)
        correct = sum(r.passed for r in solved)
        result.batches.append(
            {
                "batch": b,
                "n": len(solved),
                "correct": correct,
                "accuracy": correct / len(solved),
                "strategy_version": version,
            }
        )
        entry = teacher.journal(task, strategy, solved)
        result.journal.append({"batch": b, "accuracy": correct / len(solved), "text": entry})
        since_distill += 1
        if since_distill >= config.distill_every or b == len(batches):
            window = _journal_text(result.journal)[-config.journal_window_chars :]
            strategy = teacher.distill(task, window, strategy)
            result.strategies.append({"version": len(result.strategies), "after_batch": b, "text": strategy})
            since_distill = 0
        bar.set_postfix(acc=f"{correct}/{len(solved)}", strategy=f"v{len(result.strategies) - 1}")
        save_self_improvement(result, task, output_dir)
    return result


def _journal_text(journal: list[dict[str, Any]]) -> str:
    return "\n\n".join(f"## Batch {e['batch']} (accuracy {e['accuracy']:.0%})\n{e['text']}" for e in journal)


def save_self_improvement(result: SelfImproveResult, task: Task, output_dir: str) -> None:
    """Write the stage-1 artifacts (each file atomically; see the module docstring)."""
    os.makedirs(output_dir, exist_ok=True)
    atomic_write_json(os.path.join(output_dir, "batches.json"), result.batches)
    atomic_write_json(os.path.join(output_dir, "journal.json"), result.journal)
    atomic_write_text(
        os.path.join(output_dir, "journal.md"),
        f"# Teacher journal ({task.name})\n\n" + _journal_text(result.journal) + "\n",
    )
    atomic_write_json(os.path.join(output_dir, "strategies.json"), result.strategies)
    for s in result.strategies:
        header = f"# Strategy v{s['version']} ({task.name}, after batch {s['after_batch']})\n\n"
        atomic_write_text(os.path.join(output_dir, "strategies", f"v{s['version']}.md"), header + s["text"] + "\n")
    lines = [
        json.dumps(
            {
                "example_id": task.example_id(a.example),
                "example": a.example,
                "completion": a.completion,
                "passed": a.passed,
                "reason": a.verdict.reason,
                "strategy_version": a.strategy_version,
            },
            ensure_ascii=False,
            default=str,
        )
        for a in result.attempts
    ]
    atomic_write_text(os.path.join(output_dir, "attempts.jsonl"), "".join(line + "\n" for line in lines))
