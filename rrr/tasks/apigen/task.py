"""``APIGenTask``: the task's prompts, row checks, verifier entry points and data hooks, on ``Task``'s contract.

This is what ``get_task("apigen")`` returns. It wires the parts together: calls are read by ``calls``, judged by
``verify``, examples come from ``data`` (or the hub / a local file through ``Task.load``), and the teaching and
benchmark hooks come from ``lessons.APIGenLessons``. The rules it implements are in the package docstring.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar

from rrr.tasks.apigen.calls import (
    MAX_COMPLETION_CHARS,
    _extract_calls,
    _Reference,
    _reference_from_json,
    _reference_from_value,
    _Reject,
)
from rrr.tasks.apigen.data import _HUB_GATED_HINT, HUB_SOURCE, HUB_TEST_ROWS, _as_json_text, _example_rng, _generate_one
from rrr.tasks.apigen.lessons import APIGenLessons
from rrr.tasks.apigen.verify import _compare, _declared_defaults, _mentioned, _value_mentioned
from rrr.tasks.base import Example, Task, TaskDataError, Verdict


class APIGenTask(APIGenLessons, Task):
    """Function calling on xlam-function-calling-60k (or the offline generator): emit the right tool calls."""

    name: ClassVar[str] = "apigen"
    required_columns: ClassVar[tuple[str, ...]] = ("query", "tools", "answers")
    default_source: ClassVar[str] = HUB_SOURCE
    reflection_instruction: ClassVar[str] = (
        "Your tool calls were wrong. Reflect briefly on what went wrong — a wrong tool, a missing or extra call, a "
        "wrong argument name or value — and how to do better next time. Do not write the tool calls."
    )
    retry_instruction: ClassVar[str] = (
        "Using your reflection, try again. Give the tool calls as a JSON list of "
        '{"name": ..., "arguments": {...}} inside <answer></answer>.'
    )
    #: The hub dataset has one split: ``Task.load`` carves ``test`` = its last ``HUB_TEST_ROWS`` (2,000) rows in file
    #: order and ``train`` = the 58,000 before them.
    single_split_sources: ClassVar[tuple[str, ...]] = (HUB_SOURCE,)
    held_out_splits: ClassVar[dict[str, int]] = {"test": HUB_TEST_ROWS}
    hub_access_hint: ClassVar[str | None] = _HUB_GATED_HINT
    initial_strategy: ClassVar[str | None] = (
        "1. Identify what the user asks for.\n2. Call the matching tool with the arguments taken from the query."
    )
    oracle_procedure: ClassVar[str | None] = (
        "1. Split the query into its independent requests; each request needs exactly one call (several requests "
        "may call the same tool).\n"
        "2. For each request pick the tool whose description matches, and use the exact argument names of its "
        "schema.\n"
        "3. Copy values from the query with the right types; include an optional argument only when the query "
        "specifies it.\n"
        "4. Answer with the JSON list of all calls inside <answer></answer>."
    )

    # ------------------------------------------------------------------------------------------------------------
    # Prompts
    # ------------------------------------------------------------------------------------------------------------
    def attempt_prompt(self, example: Example) -> str:
        tools = _as_json_text(example.get("tools", "[]"))
        return (
            "You can call the following tools (JSON schemas):\n"
            f"{tools}\n\n"
            f"Query: {example.get('query', '')}\n\n"
            "Answer with the tool calls that fulfil the query: a JSON list of objects "
            '{"name": <tool name>, "arguments": {<argument name>: <value>, ...}}, one object per call (a query may '
            "need several calls, including several calls of the same tool), inside <answer></answer>. Use only the "
            "tools listed, their exact argument names, and values of the right type; include an optional argument "
            "only when the query specifies it."
        )

    def reference_answer(self, example: Example) -> str | None:
        answers = example.get("answers") if isinstance(example, Mapping) else None
        if answers is None:
            return None
        if isinstance(answers, str):
            try:
                answers = json.loads(answers)
            except ValueError:
                return None
        return "<answer>" + json.dumps(answers, ensure_ascii=False) + "</answer>"

    # ------------------------------------------------------------------------------------------------------------
    # Verification
    # ------------------------------------------------------------------------------------------------------------
    def row_problem(self, example: Example) -> str | None:
        """A row whose ``answers`` are not a JSON list of calls (nothing could ever pass it), whose ``tools`` are not
        JSON (the prompt would show garbage), or whose ``query`` is empty. ``answers`` go through the verifier's own
        parser and guards, so what passes here is what ``verify`` reads."""
        problem = super().row_problem(example)
        if problem:
            return problem
        query = example.get("query")
        if not isinstance(query, str) or not query.strip():
            return f"query must be non-empty text, got {query!r:.60}"
        tools = example.get("tools")
        if isinstance(tools, str):
            try:  # the dataset's own text, shown in the prompt, not parsed by the verifier: the plain parser will do
                json.loads(tools)
            except json.JSONDecodeError as exc:
                return f"tools is not JSON ({exc.msg} at char {exc.pos})"
            except (ValueError, RecursionError) as exc:
                return f"tools is not JSON ({type(exc).__name__})"
        try:
            self._reference(example)
        except _Reject as exc:
            return f"answers: {exc}"
        return None

    def _reference(self, example: Example) -> _Reference:
        if not isinstance(example, Mapping):
            raise _Reject(f"example is {type(example).__name__}, not a mapping")
        answers = example.get("answers")
        if isinstance(answers, str):
            return _reference_from_json(answers)
        if isinstance(answers, (list, Mapping)):
            return _reference_from_value(answers)
        raise _Reject("no answers" if answers is None else f"answers of type {type(answers).__name__}")

    def verify(self, example: Example, completion: str) -> Verdict:
        """Multiset comparison of the completion's calls with the reference calls (see the ``rrr.tasks.apigen`` docstring)."""
        try:
            if not isinstance(completion, str):
                return Verdict(False, f"completion is {type(completion).__name__}, not text")
            try:
                reference = self._reference(example)
            except _Reject as exc:
                return Verdict(False, f"malformed example: {exc}")
            try:
                calls = _extract_calls(completion)
            except _Reject as exc:
                return Verdict(False, str(exc))
            return _compare(reference, calls, _declared_defaults(example.get("tools")))
        except Exception as exc:  # a bug here must cost one sample, not a training run; the reason says so
            return Verdict(False, f"verifier error: {type(exc).__name__}", error=type(exc).__name__)

    def leaks_answer(self, example: Example, reflection: str) -> bool:
        """True when the reflection hands the retry its answer instead of a lesson.

        Two rules: (1) the reflection itself passes ``verify`` (a correct call list in any accepted form); or
        (2) it writes out, for **every** reference call, the tool's name and **all** of its argument values (strings
        case-insensitively as whole words, numbers numerically — ``5`` matches ``5.0`` but not ``15`` — booleans as
        ``true``/``false``, lists and objects through all their items), e.g. "I should have called get_current_weather
        for Paris in metric units" when that is the whole reference. Naming the tool alone, or some of the values, is
        a lesson, not a leak. A call without arguments leaks by its name alone. Never raises.
        """
        try:
            if not isinstance(reflection, str) or len(reflection) > MAX_COMPLETION_CHARS:
                return False
            if self.verify(example, reflection).passed:
                return True
            calls = self._reference(example).calls
            if not calls:
                return False
            text = reflection.lower()
            return all(_mentioned(text, call.name.lower()) and _value_mentioned(text, call.arguments) for call in calls)
        except Exception:
            return False

    # ------------------------------------------------------------------------------------------------------------
    # Data
    # ------------------------------------------------------------------------------------------------------------
    def generate(self, n: int, seed: int = 0, split: str = "train") -> list[Example]:
        """``n`` synthetic examples, deterministic per ``(seed, split, index)``; different splits draw differently.

        Each example is drawn from its own RNG, so the first ``k`` examples of ``generate(n)`` are the same for every
        ``n >= k``.
        """
        if n < 0:
            raise TaskDataError(f"n must be >= 0, got {n}")
        rows = []
        for index in range(n):
            query, tools, answers = _generate_one(_example_rng(seed, split, index))
            rows.append(
                {
                    "id": f"apigen-{split}-{seed}-{index}",
                    "query": query,
                    "tools": json.dumps(tools, ensure_ascii=False),
                    "answers": json.dumps(answers, ensure_ascii=False),
                }
            )
        return rows

    def prepare(self, ds):
        """Store ``tools``/``answers`` as JSON strings when a file held them parsed (lists of objects).

        JSON strings are the one representation every source shares, and the verifier's reference cache is keyed
        by them.
        """
        columns = [c for c in ("tools", "answers") if c in ds.column_names]
        parsed = [c for c in columns if getattr(ds.features[c], "dtype", None) not in ("string", "large_string")]
        if not parsed:
            return ds
        return ds.map(lambda row: {c: _as_json_text(row[c]) for c in parsed}, desc="apigen: tools/answers to JSON")
