"""What APIGen teaches and how it is benchmarked: the oracle teacher's hooks and the bench fixtures.

``Task`` declares these hooks (``docs/tasks.md``) so that the curriculum's oracle teacher, the SFT data builder and
``rrr bench verifiers`` never branch on a task: ``worked_solution`` spells out one call per request (the skill the
verifier checks), ``oracle_reflections`` and ``plausible_mistakes`` are the oracle's lessons and its near-miss
attempts, and the ``bench_*`` hooks build a realistic mix of right, wrong, lesson and leaking texts for the verifier
benchmark. They are kept apart from ``APIGenTask`` because they are about *teaching* the task, not defining it;
``APIGenLessons`` is mixed into ``APIGenTask`` and uses its ``reference_answer`` and ``_reference``.
"""

from __future__ import annotations

import json
from typing import Any

from rrr.tasks.apigen.calls import _Reject
from rrr.tasks.base import Example, Verdict


def _fmt_argument(value: Any) -> str:
    """An argument value as JSON (``"Paris"``, ``3``, ``true``) for ``APIGenTask.worked_solution``."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _reference_calls(example: Example) -> list[dict[str, Any]]:
    """The reference calls of ``example`` as a list of dicts (empty when its ``answers`` do not parse)."""
    answers = example.get("answers")
    try:
        calls = json.loads(answers) if isinstance(answers, str) else answers
    except ValueError:
        return []
    if isinstance(calls, dict):
        calls = [calls]
    return [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []


def _mutate_value(value: Any) -> Any:
    """A different value of the same JSON type (a benchmark's wrong argument)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return round(value + 1.5, 2)
    if isinstance(value, str):
        return value.lower() if value != value.lower() else value + "x"
    if isinstance(value, list):
        return value[:-1] if value else [0]
    if isinstance(value, dict):
        return {} if value else {"x": 1}
    return "none"


class APIGenLessons:
    """The oracle-teacher and benchmark hooks of ``Task``, for ``APIGenTask`` (a mixin: no state of its own)."""

    # ------------------------------------------------------------------------------------------------------------
    # Teaching (the oracle teacher's curriculum and lessons)
    # ------------------------------------------------------------------------------------------------------------
    def worked_solution(self, example: Example) -> str | None:
        """Which tool answers each part of the query and with which arguments, then the calls (the oracle's curriculum).

        E.g. ``The query needs 2 calls.`` / ``1. get_weather: city="Paris", units="metric"`` / ... /
        ``<answer>[...]</answer>``. Spelling out one call per request and its argument values is the skill the
        verifier checks (the right calls as a multiset), so it is what a student should imitate.
        """
        answer = self.reference_answer(example)
        if answer is None:
            return None
        try:
            calls = self._reference(example).calls
        except _Reject:
            return None
        if not calls:
            return answer
        lines = [f"The query needs {len(calls)} call{'s' if len(calls) > 1 else ''}, one per request:"]
        for i, call in enumerate(calls, 1):
            arguments = ", ".join(f"{name}={_fmt_argument(value)}" for name, value in call.arguments.items())
            lines.append(f"{i}. {call.name}: {arguments or 'no arguments'}")
        lines.append("Each uses only its tool's argument names, with values taken from the query.")
        lines.append(answer)
        return "\n".join(lines)

    def oracle_reflections(self, example: Example, attempt: str, verdict: Verdict) -> list[str]:
        """The verifier's reason, how many calls to which tools the query needs (names, not arguments), and the
        rule: one call per request, the schema's argument names, values copied from the query."""
        calls = _reference_calls(example)
        names: dict[str, int] = {}
        for call in calls:
            names[str(call.get("name"))] = names.get(str(call.get("name")), 0) + 1
        needed = ", ".join(f"{name}" if k == 1 else f"{name} ({k} times)" for name, k in names.items())
        count = f"{len(calls)} call{'s' if len(calls) != 1 else ''}"
        rule = (
            "Next time I will map each request in the query to one call, use only the argument names in the tool's "
            "schema, copy the values exactly from the query, and leave out optional arguments the query does not "
            "mention."
        )
        texts = []
        if verdict.reason and calls:
            texts.append(f"My tool calls were wrong: {verdict.reason}. The query needs {count}: {needed}. {rule}")
        if calls:
            texts.append(f"My tool calls did not match the query, which needs {count}: {needed}. {rule}")
        texts.append(f"My tool calls did not match the query. {rule}")
        return texts

    def plausible_mistakes(self, example: Example) -> list[str]:
        """The reference calls with one argument value changed (a number off by one, a string's case) or dropped,
        then the last call dropped, then the first call repeated."""
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

    # ------------------------------------------------------------------------------------------------------------
    # Benchmark fixtures (rrr bench verifiers)
    # ------------------------------------------------------------------------------------------------------------
    def bench_reasoning(self, example: Example) -> tuple[str, ...]:
        calls = json.loads(example["answers"])
        names = ", ".join(dict.fromkeys(call["name"] for call in calls))
        query = example["query"][:70]
        return (
            f'The user asks: "{query}". The tool {names} matches, so I fill in the arguments from the query and '
            "leave optional ones out unless they are given.",
            f"I read the query and look for each separate request. There are {len(calls)} calls to make, with "
            f"{names}. Argument names must match the schema exactly and values need the right types.",
            f"Let me map the request to the schemas: {names} covers what is asked. I check each required "
            "parameter against the query, use numbers for numeric fields and write one object per call.",
        )

    def bench_wrong_answers(self, example: Example, reference: str) -> list[str]:
        """The first argument of a call mutated, a dropped call, a renamed tool."""
        calls = json.loads(example["answers"])
        out = []
        for index, call in enumerate(calls):
            arguments = call.get("arguments") or {}
            if arguments:
                key = next(iter(arguments))
                mutated = json.loads(json.dumps(calls))
                mutated[index]["arguments"][key] = _mutate_value(arguments[key])
                out.append("<answer>" + json.dumps(mutated) + "</answer>")
        if len(calls) > 1:
            out.append("<answer>" + json.dumps(calls[:-1]) + "</answer>")  # a dropped call
        renamed = json.loads(json.dumps(calls))
        renamed[0]["name"] += "_v2"
        out.append("<answer>" + json.dumps(renamed) + "</answer>")
        return out

    def bench_lesson(self, example: Example, reference: str) -> str:
        calls = json.loads(example["answers"])
        return (
            f"I picked the wrong tool and guessed an argument name. The query needs {calls[0]['name']}; next time I "
            "will copy argument names from the schema and only add optional arguments the query mentions."
        )

    def bench_leak(self, example: Example, reference: str) -> str:
        calls = json.loads(example["answers"])
        return " ".join(
            f"I should have called {call['name']} with "
            + ", ".join(f"{key} {json.dumps(value)}" for key, value in (call.get("arguments") or {}).items())
            + "."
            for call in calls
        )
