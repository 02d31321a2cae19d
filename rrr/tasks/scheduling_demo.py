"""``DemoSchedulingTask``: min-rooms scheduling with prompts and answers short enough for a 1M-parameter student.

The scheduling task's own prompts (``rrr.tasks.scheduling``) are written for instruct models: ~90 words of rules
and format instructions per prompt. A randomly initialised model that must learn the task in a minute of CPU SFT
spends its capacity on that prose. This subclass keeps everything that makes the task honest — the generator
(tight rooms, traps for heuristics, a held-out pool disjoint from training by canonical hash), the verifier,
``leaks_answer`` and ``majority_baseline`` — and changes only the text:

* **prompt**: ``meetings 9-11 10-12 11-13``;
* **first attempt** (the oracle's ``worked_solution``): a *direct* answer, ``<answer>2</answer>``. A worked sweep in
  the first attempt makes a tiny student ~100% right after SFT (``docs/background.md``): nothing would
  be left to reflect on;
* **reflection** (``witness_reflection``): *where* the peak is, ``at 12 : 11-13 12-14`` — an hour and the meetings
  running then. It points at the overlap the attempt should have counted and does not state the number (the retry
  counts the list), so ``leaks_answer`` is False on it;
* **retry**: the attempt's format again, with the reflection in context.

A tiny student's witnesses are rarely *faithful* (the listed meetings are mostly not the ones running at that hour:
``check_witness`` measures it, and the demo reports it); what RRR improves is how many meetings the reflection points
at. The demo reports that honestly, beside a shift-rule baseline of what the failure signal alone is worth.

**Why min-rooms and not YES/NO** (measured while building the demo): the generator's rooms are always tight
(``rooms`` is the peak or the peak - 1), so the peak is a function of the YES/NO label: after a failed attempt
``peak 2 <= 2 -> YES``, the peak *must* be 3. Strict mode therefore does not stop RRR from learning to flip: 91% of the
SFT student's failed attempts stated a peak in ``{rooms, rooms + 1}``, and a LoRA RRR run learned exactly that flip
(retry success on held-out failures 52% -> 98% while the reflections' listed meetings stayed wrong). With a numeric
answer a failure only rules out one number, so the reflection has to locate the peak. The majority baseline is then
"always the most common number of rooms" (~39% on the test set), not 50%.

Registered as ``get_task("scheduling_demo")`` (``rrr.demo`` and the tiny ablation run it).
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

from rrr.tasks.base import Example, Task, Verdict
from rrr.tasks.scheduling import (
    MinRoomsSchedulingTask,
    closed_overlap,
    max_overlap,
    naive_adjacent_peak,
    parse_meetings,
)

__all__ = [
    "DemoSchedulingTask",
    "check_witness",
    "compact_meetings",
    "direct_answer",
    "parse_witness",
    "peak_witness",
]


def _small_number(text: str) -> int | None:
    """1 to 3 ASCII digits as an int, else None."""
    return int(text) if 1 <= len(text) <= 3 and text.isascii() and text.isdigit() else None


def parse_witness(reflection: object) -> tuple[int, list[tuple[int, int]]] | None:
    """``"at 12 : 11-13 12-14"`` -> ``(12, [(11, 13), (12, 14)])``; None for anything else. Never raises.

    The grammar: optional whitespace, ``at``, whitespace, an hour, optional whitespace, ``:``, then zero or more
    whitespace-separated ``start-end`` items (numbers of 1 to 3 ASCII digits). A small parser, not a regular
    expression: the pattern it replaces (items separated by *optional* whitespace) could split "1234-1234-..." in
    exponentially many ways and took > 30 s on 22 repetitions; this is one pass over the text.
    """
    if not isinstance(reflection, str):
        return None
    body = reflection.strip()
    if not body.startswith("at") or len(body) < 3 or not body[2].isspace():
        return None
    head, colon, rest = body[2:].partition(":")
    hour = _small_number(head.strip())
    if not colon or hour is None:
        return None
    listed = []
    for item in rest.split():
        start, dash, end = item.partition("-")
        start_hour, end_hour = _small_number(start), _small_number(end)
        if not dash or start_hour is None or end_hour is None:
            return None
        listed.append((start_hour, end_hour))
    return hour, listed


def compact_meetings(meetings) -> str:
    """``[[9, 11], [10, 12]]`` -> ``"9-11 10-12"``."""
    return " ".join(f"{start}-{end}" for start, end in meetings)


def direct_answer(rooms: int) -> str:
    """The demo's attempt format: ``<answer>3</answer>``."""
    return f"<answer>{rooms}</answer>"


def peak_witness(meetings) -> tuple[int, list[tuple[int, int]]]:
    """The earliest start time at which the peak is reached, and the meetings running then (sorted)."""
    best_t, best = None, []
    for t in sorted({s for s, _ in meetings}):
        active = sorted(m for m in meetings if m[0] <= t < m[1])
        if len(active) > len(best):
            best_t, best = t, active
    return best_t, best


def check_witness(example: Example, reflection: str) -> str:
    """Classify a reflection as a witness: ``"peak"`` (the listed meetings are exactly those running at the stated
    hour, and as many as the peak), ``"valid"`` (exactly the running ones, at an hour that is not a peak),
    ``"wrong_meetings"`` (parsable, but not the meetings running then) or ``"unparsed"``. Never raises."""
    try:
        witness = parse_witness(reflection)
        meetings = parse_meetings(example.get("meetings"))
        if witness is None or isinstance(meetings, str):
            return "unparsed"
        hour, listed = witness
        listed = sorted(listed)
        running = sorted(m for m in meetings if m[0] <= hour < m[1])
        if listed != running:
            return "wrong_meetings"
        return "peak" if len(listed) == max_overlap(meetings) else "valid"
    except Exception:  # pragma: no cover - a diagnostic must never take a run down
        return "unparsed"


class DemoSchedulingTask(MinRoomsSchedulingTask):
    """Min-rooms scheduling with compact prompts, a direct first attempt and witness reflections."""

    name = "scheduling_demo"
    reflection_instruction = "wrong . where is the peak ?"
    retry_instruction = "retry"

    #: The generic strategies (self-improvement is not part of the demo; these keep the curriculum it builds
    #: unchanged since the demo's numbers were measured).
    initial_strategy = None
    oracle_procedure = None
    #: Not benchmarked: its verifier is ``scheduling_min_rooms``'s, which ``rrr.bench.verifiers`` already times.
    bench_configs: ClassVar[dict[str, dict[str, Any]] | None] = {}

    def __init__(self, strict: bool = False, variant: str = "min_rooms", **unknown: Any) -> None:
        super().__init__(strict=strict, variant=variant, **unknown)

    def attempt_prompt(self, example: Example) -> str:
        meetings = example.get("meetings") or []
        try:
            return f"meetings {compact_meetings(meetings)}"
        except (TypeError, ValueError):
            return f"meetings {meetings}"

    def reference_answer(self, example: Example) -> str | None:
        truth = self._ground_truth(example)
        if isinstance(truth, str):
            return None
        peak, _ = truth
        return f"peak {peak} {direct_answer(peak)}" if self.strict else direct_answer(peak)

    def worked_solution(self, example: Example) -> str | None:
        """The direct answer (no sweep): the oracle curriculum teaches *what* to answer, RRR *how to check it*."""
        return self.reference_answer(example)

    def witness_reflection(self, example: Example) -> str | None:
        """``at 12 : 11-13 12-14``: where the peak is and which meetings make it (the number is left to the retry)."""
        meetings = parse_meetings(example.get("meetings"))
        if isinstance(meetings, str):
            return None
        t, active = peak_witness(meetings)
        return f"at {t} : {compact_meetings(active)}"

    def oracle_reflections(self, example: Example, attempt: str, verdict: Verdict) -> list[str]:
        """Only the witness (``Task``'s default): the scheduling task's prose lessons are not the demo's format."""
        return Task.oracle_reflections(self, example, attempt, verdict)

    def describe_reflection(self, example: Example, reflection: str) -> str | None:
        """``check_witness``: ``"peak"``, ``"valid"``, ``"wrong_meetings"`` or ``"unparsed"``."""
        return check_witness(example, reflection)

    def plausible_mistakes(self, example: Example) -> list[str]:
        """Wrong first attempts in the demo's format, most plausible first (each fails ``verify``).

        The mistakes the generator is built to punish — touching meetings counted as clashing
        (``closed_overlap``), a chain of neighbours counted as the peak (``naive_adjacent_peak``) — then peaks off by
        one or two.
        """
        meetings = parse_meetings(example.get("meetings"))
        if isinstance(meetings, str):
            return []
        peak = max_overlap(meetings)
        candidates = [closed_overlap(meetings), naive_adjacent_peak(meetings), peak + 1, peak - 1, peak + 2, peak - 2]
        out = []
        for p in dict.fromkeys(candidates):
            if p == peak or p < 1:
                continue
            text = f"peak {p} {direct_answer(p)}" if self.strict else direct_answer(p)
            if not self.verify(example, text).passed:
                out.append(text)
        return out

    def synthesize_failure(self, example: Example, rng: random.Random) -> str | None:
        """One plausible wrong attempt: a designed mistake half the time, else a random one of the list."""
        mistakes = self.plausible_mistakes(example)
        if not mistakes:
            return None
        return mistakes[0] if rng.random() < 0.5 else rng.choice(mistakes)
