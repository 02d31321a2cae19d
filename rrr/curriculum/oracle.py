"""What the offline oracle teacher knows beyond ``task.worked_solution``: lessons and plausible mistakes.

* ``oracle_reflection(task, example, attempt, verdict)`` — the reflection a good student would write after a failed
  attempt: it names the mistake (from the verdict and the task's solver) and the rule that avoids it, and never
  states the answer. Every candidate text is checked with ``task.leaks_answer``; the most informative one that does
  not leak is returned.
* ``synthesize_failure(task, example, rng)`` — a *plausible* wrong attempt, so the reflection-SFT dataset can be built
  without a model that fails: the mistakes the scheduling generator is designed to punish (counting touching meetings
  as clashing, counting a chain of neighbours as the peak, an off-by-one peak), a wrong operator in a Countdown
  equation, a dropped call or argument in a tool call. Only attempts the verifier rejects are returned.

Built-in tasks get task-specific texts; any other task (a user's own ``Task``) gets generic ones built from the
verdict's reason and a flipped/perturbed answer, which is enough for the pipeline to run end to end. A task can do
better by defining two optional hooks, which the oracle then prefers:

* ``task.witness_reflection(example) -> str | None`` — the reflection to teach (e.g. the demo's ``at 12 : 11-13
  12-14``: where the peak is, without the number), still checked with ``leaks_answer``;
* ``task.synthesize_failure(example, rng) -> str | None`` — a plausible wrong attempt in the task's own format.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from rrr.tasks.base import Example, Task, Verdict
from rrr.tasks.parsing import last_answer


def _first_safe(task: Task, example: Example, candidates: list[str]) -> str:
    """The first candidate that does not leak the answer (the last one is the generic fallback)."""
    for text in candidates:
        if text and not task.leaks_answer(example, text):
            return text
    return candidates[-1]


# ----------------------------------------------------------------------------------------------------------------
# Reflections
# ----------------------------------------------------------------------------------------------------------------
def oracle_reflection(task: Task, example: Example, attempt: str, verdict: Verdict) -> str:
    """A lesson about the failed ``attempt`` that does not state the answer (see the module docstring)."""
    from rrr.tasks.apigen import APIGenTask
    from rrr.tasks.countdown import CountdownTask
    from rrr.tasks.scheduling import SchedulingTask

    witness = getattr(task, "witness_reflection", None)
    if callable(witness):
        candidates = [witness(example) or ""]
    elif isinstance(task, SchedulingTask):
        candidates = _scheduling_reflections(task, example, attempt)
    elif isinstance(task, CountdownTask):
        candidates = _countdown_reflections(task, example, verdict)
    elif isinstance(task, APIGenTask):
        candidates = _apigen_reflections(example, verdict)
    else:
        candidates = []
    candidates += _generic_reflections(verdict)
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


def _scheduling_reflections(task, example: Example, attempt: str) -> list[str]:
    from rrr.tasks.scheduling import format_meetings, max_overlap, parse_meetings, stated_peak

    meetings = parse_meetings(example.get("meetings"))
    if isinstance(meetings, str):
        return []
    peak = max_overlap(meetings)
    starts = sorted({s for s, _ in meetings})
    best_t, best = starts[0], []
    for t in starts:
        active = [m for m in sorted(meetings) if m[0] <= t < m[1]]
        if len(active) > len(best):
            best_t, best = t, active
    digits = stated_peak(attempt) if isinstance(attempt, str) else None
    stated = int(digits) if digits is not None and len(digits) <= 6 else None
    min_rooms = task.variant == "min_rooms"
    if stated is None:
        mistake = "I answered without counting the peak explicitly."
    elif stated > peak:
        mistake = (
            f"I counted a peak of {stated}, but no time has that many meetings running at once: meetings that only "
            "touch (one ends when the next starts) do not clash, and two meetings that both overlap a third need "
            "not overlap each other."
        )
    elif stated < peak:
        mistake = f"I counted a peak of {stated}, but I missed meetings that run at the same time."
    else:
        mistake = (
            "My count of the peak was right, but I compared it with the rooms the wrong way: all meetings fit "
            "exactly when the peak is at most the number of rooms."
        )
    if len(best) == 1 and not min_rooms:
        witness = (
            f"At most one meeting runs at any time (e.g. only {format_meetings(best)} at {best_t}), so the peak is 1."
        )
    elif min_rooms:
        witness = f"At {best_t}, the meetings {format_meetings(best)} are all running at once."
    else:
        witness = f"At {best_t}, the meetings {format_meetings(best)} are all running, so the peak is {peak}."
    if min_rooms:
        rule = "Next time I will list the meetings running at each start time and answer with the largest count."
    else:
        rule = (
            "Next time I will list the meetings running at each start time, take the largest count as the peak, and "
            "compare it with the number of rooms."
        )
    return [f"{mistake} {witness} {rule}", f"{mistake} {rule}"]


def _countdown_reflections(task, example: Example, verdict: Verdict) -> list[str]:
    from rrr.tasks.countdown import _worked_steps

    nums, target = example.get("nums"), example.get("target")
    reference = task.reference_answer(example)
    steps = _worked_steps(last_answer(reference) or "") if reference else []
    reason = verdict.reason or "it did not reach the target"
    rule = (
        f"I must use each of {list(nums or [])} exactly once and reach exactly {target}: combine two values at a "
        "time, keep track of what is left, and check the final expression before answering."
    )
    texts = []
    if steps:
        texts.append(f"My equation was wrong: {reason}. {rule} A useful first step here is {steps[0]}.")
    texts.append(f"My equation was wrong: {reason}. {rule}")
    return texts


def _reference_calls(example: Example) -> list[dict[str, Any]]:
    answers = example.get("answers")
    try:
        calls = json.loads(answers) if isinstance(answers, str) else answers
    except ValueError:
        return []
    if isinstance(calls, dict):
        calls = [calls]
    return [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []


def _apigen_reflections(example: Example, verdict: Verdict) -> list[str]:
    calls = _reference_calls(example)
    names: dict[str, int] = {}
    for call in calls:
        names[str(call.get("name"))] = names.get(str(call.get("name")), 0) + 1
    needed = ", ".join(f"{name}" if k == 1 else f"{name} ({k} times)" for name, k in names.items())
    count = f"{len(calls)} call{'s' if len(calls) != 1 else ''}"
    rule = (
        "Next time I will map each request in the query to one call, use only the argument names in the tool's "
        "schema, copy the values exactly from the query, and leave out optional arguments the query does not mention."
    )
    texts = []
    if verdict.reason and calls:
        texts.append(f"My tool calls were wrong: {verdict.reason}. The query needs {count}: {needed}. {rule}")
    if calls:
        texts.append(f"My tool calls did not match the query, which needs {count}: {needed}. {rule}")
    texts.append(f"My tool calls did not match the query. {rule}")
    return texts


# ----------------------------------------------------------------------------------------------------------------
# Synthetic failed attempts
# ----------------------------------------------------------------------------------------------------------------
def synthesize_failure(task: Task, example: Example, rng: random.Random) -> str | None:
    """A plausible wrong attempt at ``example`` that the verifier rejects, or None when none can be made."""
    from rrr.tasks.apigen import APIGenTask
    from rrr.tasks.countdown import CountdownTask
    from rrr.tasks.scheduling import SchedulingTask

    own = getattr(task, "synthesize_failure", None)
    if callable(own):
        attempt = own(example, rng)
        return attempt if attempt and not task.verify(example, attempt).passed else None
    if isinstance(task, SchedulingTask):
        candidates = _scheduling_mistakes(task, example)
    elif isinstance(task, CountdownTask):
        candidates = _countdown_mistakes(task, example)
    elif isinstance(task, APIGenTask):
        candidates = _apigen_mistakes(example)
    else:
        candidates = _generic_mistakes(task, example)
    failing = [c for c in dict.fromkeys(candidates) if c and not task.verify(example, c).passed]
    if not failing:
        return None
    # Prefer the designed mistakes (listed first) but keep some variety.
    return failing[0] if len(failing) == 1 or rng.random() < 0.5 else rng.choice(failing)


def _scheduling_mistakes(task, example: Example) -> list[str]:
    from rrr.tasks.scheduling import closed_overlap, max_overlap, naive_adjacent_peak, parse_meetings, parse_rooms

    meetings = parse_meetings(example.get("meetings"))
    if isinstance(meetings, str):
        return []
    peak = max_overlap(meetings)
    wrong = [closed_overlap(meetings), naive_adjacent_peak(meetings), peak + 1, peak - 1]
    out = []
    for p in wrong:
        if p == peak or p < 1:
            continue
        if task.variant == "min_rooms":
            out.append(f"peak: {p}, so {p} rooms are needed.\n<answer>{p}</answer>")
            continue
        rooms = parse_rooms(example.get("rooms"))
        if isinstance(rooms, str):
            return []
        if p <= rooms:
            out.append(f"peak: {p} <= {rooms} rooms, so all meetings fit.\n<answer>YES</answer>")
        else:
            out.append(f"peak: {p} > {rooms} rooms, so they do not all fit.\n<answer>NO</answer>")
    return out


_OTHER_OPS = {"+": "-*", "-": "+*", "*": "+-", "/": "*-"}


def _countdown_mistakes(task, example: Example) -> list[str]:
    reference = task.reference_answer(example)
    expr = last_answer(reference) if reference else None
    if not expr:
        return []
    out = []
    for m in re.finditer(r" ([-+*/]) ", expr):
        for other in _OTHER_OPS[m.group(1)]:
            out.append(f"<answer>{expr[: m.start(1)]}{other}{expr[m.end(1) :]}</answer>")
    numbers = list(re.finditer(r"\d+", expr))
    if numbers:  # the classic slip: a number used twice instead of another one
        first, last = numbers[0], numbers[-1]
        out.append(f"<answer>{expr[: last.start()]}{first.group()}{expr[last.end() :]}</answer>")
    return out


def _apigen_mistakes(example: Example) -> list[str]:
    calls = _reference_calls(example)
    if not calls:
        return []

    def render(cs: list[dict]) -> str:
        return "<answer>" + json.dumps(cs, ensure_ascii=False) + "</answer>"

    out = []
    for i, call in enumerate(calls):
        args = dict(call.get("arguments") or {})
        for name, value in args.items():
            if isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                changed = dict(args, **{name: value + 1})
            elif isinstance(value, str):
                changed = dict(args, **{name: value.lower() if value != value.lower() else value.title() + " "})
            else:
                continue
            out.append(render([*calls[:i], dict(call, arguments=changed), *calls[i + 1 :]]))
        if args:
            dropped = dict(args)
            dropped.pop(next(iter(dropped)))
            out.append(render([*calls[:i], dict(call, arguments=dropped), *calls[i + 1 :]]))
    if len(calls) > 1:
        out.append(render(calls[:-1]))
    out.append(render([*calls, calls[0]]))
    return out


def _generic_mistakes(task: Task, example: Example) -> list[str]:
    solution = task.worked_solution(example) or task.reference_answer(example)
    if not solution:
        return []
    answer = last_answer(solution)
    if answer is None:
        return [solution[::-1], "I am not sure."]
    flips = {"YES": "NO", "NO": "YES", "TRUE": "FALSE", "FALSE": "TRUE"}
    if answer.upper() in flips:
        wrong = [flips[answer.upper()]]
    elif re.fullmatch(r"-?\d+", answer):
        wrong = [str(int(answer) + 1), str(int(answer) - 1)]
    else:
        wrong = [answer + " (unsure)", ""]
    return [f"<answer>{w}</answer>" for w in wrong]
