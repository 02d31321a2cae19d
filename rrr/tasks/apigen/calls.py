"""Tool calls out of text: safe JSON, the normalised call, and the completion forms the verifier accepts.

Everything here reads **model output**, so it is written for hostile input: the completion and each JSON payload
are size-capped, bracket nesting is pre-checked by one linear scan before ``json.loads`` (no recursion blow-up, no
backtracking regex), non-finite numbers and giant integers are rejected, and the four accepted forms (``<answer>``,
``<tool_call>`` blocks, a fenced json block, bare JSON; see the package docstring) are found with ``str.find`` /
``rfind`` only. Anything that cannot be judged raises ``_Reject``, whose message becomes the ``Verdict``'s reason.

A call is normalised to ``_Call(name, arguments, key)`` where ``key`` is a hashable canonical form (``_canon``) in
which equal JSON values are equal (``3 == 3.0``, ``true != 1``), so comparing calls as a multiset is a ``Counter``
comparison. Reference answers go through the same parser (``_reference_from_json``, cached per JSON string), so
what a row check accepts is exactly what the verifier reads.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rrr.tasks.parsing import last_answer

#: Completions longer than this fail before any search (a model's tool calls are a few hundred characters).
MAX_COMPLETION_CHARS = 1_000_000
#: A single JSON payload (answer content, tool_call block, fenced block, arguments string) longer than this fails.
MAX_PAYLOAD_CHARS = 100_000
#: Maximum bracket nesting of a payload (list of calls > call > arguments > values: real data needs < 10).
MAX_DEPTH = 32
#: More calls than this in one completion fail (xlam answers have at most a handful).
MAX_CALLS = 64
#: Integers with more digits than this are rejected (``int()`` of huge digit strings is quadratic).
MAX_INT_DIGITS = 100

_TOOL_CALL_OPEN, _TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
_FENCE = "```"
# Only the characters that matter to the nesting scan: brackets, quotes and backslashes (escapes inside strings).
_DEPTH_TOKENS = re.compile(r'[\[\]{}"\\]')


class _Reject(Exception):
    """Internal: the completion (or example) cannot be judged; the message becomes the Verdict's reason."""


# ----------------------------------------------------------------------------------------------------------------
# Safe JSON
# ----------------------------------------------------------------------------------------------------------------
def _parse_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise _Reject(f"number with {len(text)} digits")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_INT_DIGITS + 20:
        raise _Reject(f"number with {len(text)} characters")
    value = float(text)
    if not math.isfinite(value):
        raise _Reject(f"non-finite number {text[:20]}")
    return value


def _parse_constant(text: str) -> Any:
    raise _Reject(f"non-finite number {text}")


# One decoder for every payload (``json.loads`` with keyword arguments would build a new one per call).
_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)


def _check_depth(payload: str) -> None:
    """Reject payloads nested deeper than ``MAX_DEPTH`` before ``json.loads`` sees them.

    Counting brackets is enough for almost every real payload (fewer brackets than the limit cannot nest deeper);
    otherwise a scan over the brackets, quotes and backslashes only — so brackets inside strings do not count —
    stops at the first level over the limit. Linear in the payload, no regex backtracking.
    """
    if payload.count("[") + payload.count("{") <= MAX_DEPTH:
        return
    depth = 0
    in_string = False
    skip = -1
    for match in _DEPTH_TOKENS.finditer(payload):
        pos = match.start()
        if pos == skip:
            continue
        char = payload[pos]
        if in_string:
            if char == '"':
                in_string = False
            elif char == "\\":
                skip = pos + 1
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise _Reject("too deeply nested")
        elif char in "]}":
            depth -= 1


def _loads(payload: str, what: str = "JSON") -> Any:
    """``json.loads`` with every guard: size, depth, finite numbers, bounded integers. Raises ``_Reject``."""
    if len(payload) > MAX_PAYLOAD_CHARS:
        raise _Reject(f"{what} too long ({len(payload)} chars)")
    if not payload:
        raise _Reject(f"empty {what}")
    _check_depth(payload)
    try:
        return _DECODER.decode(payload)
    except _Reject:
        raise
    except json.JSONDecodeError as exc:
        raise _Reject(f"invalid {what} ({exc.msg} at char {exc.pos})") from None
    except RecursionError:
        raise _Reject("too deeply nested") from None
    except (ValueError, TypeError, MemoryError, OverflowError) as exc:
        raise _Reject(f"invalid {what} ({type(exc).__name__})") from None


# ----------------------------------------------------------------------------------------------------------------
# Calls: normalisation and canonical form
# ----------------------------------------------------------------------------------------------------------------
class _Bool:
    """Canonical booleans: distinct objects, so ``true`` never equals ``1`` (Python's ``True == 1``)."""

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "true" if self.value else "false"


_TRUE, _FALSE = _Bool(True), _Bool(False)


def _canon(value: Any) -> Any:
    """A hashable canonical form in which equal JSON values are equal.

    Numbers stay numbers (``3 == 3.0`` and ``hash(3) == hash(3.0)``); booleans become singletons; lists and objects
    become tagged tuples / frozensets so a list never equals an object with the same items.
    """
    kind = type(value)
    if kind is str or kind is int or kind is float or value is None:
        return value
    if kind is bool:
        return _TRUE if value else _FALSE
    if kind is dict:
        return ("{}", frozenset((key, _canon(item)) for key, item in value.items()))
    if kind is list or kind is tuple:
        return ("[]", tuple(_canon(item) for item in value))
    # Subclasses (numpy scalars, enums) from already-parsed datasets: reduce to the JSON type they stand for.
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return _canon(dict(value))
    raise _Reject(f"unsupported value of type {kind.__name__}")


@dataclass(frozen=True)
class _Call:
    name: str
    arguments: dict
    key: Any  # (name, canonical arguments): what the multiset compares

    def render(self, limit: int = 160) -> str:
        parts = []
        for arg, value in self.arguments.items():
            try:
                shown = json.dumps(value, ensure_ascii=False, default=str)
            except (ValueError, TypeError, RecursionError):
                shown = "?"
            parts.append(f"{arg}={shown}")
        text = f"{self.name}({', '.join(parts)})"
        return text if len(text) <= limit else text[: limit - 1] + "…"


def _make_call(obj: Any, index: int) -> _Call:
    if not isinstance(obj, Mapping):
        raise _Reject(f"call {index + 1} is not a JSON object")
    function = obj.get("function")
    if "name" not in obj and isinstance(function, Mapping):  # {"type": "function", "function": {...}}
        obj = function
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise _Reject(f"call {index + 1} has no name")
    if "arguments" in obj:
        arguments = obj["arguments"]
    else:
        arguments = obj.get("parameters")
    if arguments is None:
        arguments = {}
    elif isinstance(arguments, str):  # OpenAI style: arguments as a JSON string
        arguments = _loads(arguments, "arguments JSON") if arguments.strip() else {}
    if not isinstance(arguments, Mapping):
        raise _Reject(f"arguments of {name} are not a JSON object")
    arguments = dict(arguments)
    return _Call(name, arguments, (name, _canon(arguments)))


def _calls_from_value(value: Any) -> list[_Call]:
    """A parsed JSON value as a list of calls: a list of call objects, one call object, or ``{"tool_calls": [...]}``."""
    if isinstance(value, list):
        items = value
    elif isinstance(value, Mapping):
        if "name" not in value and "function" not in value and isinstance(value.get("tool_calls"), list):
            items = value["tool_calls"]
        else:
            items = [value]
    else:
        raise _Reject("JSON is not a tool call or a list of tool calls")
    if len(items) > MAX_CALLS:
        raise _Reject(f"too many calls ({len(items)})")
    return [_make_call(item, i) for i, item in enumerate(items)]


@dataclass(frozen=True)
class _Reference:
    calls: tuple[_Call, ...]
    counts: Counter


def _reference_from_value(value: Any) -> _Reference:
    try:
        calls = _calls_from_value(value)
    except RecursionError:
        raise _Reject("answers too deeply nested") from None
    return _Reference(tuple(calls), Counter(call.key for call in calls))


#: JSON strings longer than this are parsed on every call instead of cached, so the caches hold bounded keys.
MAX_CACHED_JSON_CHARS = 16_384


def _reference_from_json(answers: str) -> _Reference:
    """Parsed reference answers, cached by their JSON string: a training step verifies G completions per example."""
    if len(answers) > MAX_CACHED_JSON_CHARS:
        return _reference_from_value(_loads(answers, "answers JSON"))
    return _reference_from_json_cached(answers)


@functools.lru_cache(maxsize=8192)
def _reference_from_json_cached(answers: str) -> _Reference:
    return _reference_from_value(_loads(answers, "answers JSON"))


# ----------------------------------------------------------------------------------------------------------------
# Extraction from a completion
# ----------------------------------------------------------------------------------------------------------------
def _tool_call_blocks(text: str) -> list[str]:
    blocks: list[str] = []
    pos = 0
    while True:
        start = text.find(_TOOL_CALL_OPEN, pos)
        if start < 0:
            return blocks
        start += len(_TOOL_CALL_OPEN)
        end = text.find(_TOOL_CALL_CLOSE, start)
        if end < 0:
            return blocks
        blocks.append(text[start:end].strip())
        if len(blocks) > MAX_CALLS:
            raise _Reject(f"too many <tool_call> blocks (over {MAX_CALLS})")
        pos = end + len(_TOOL_CALL_CLOSE)


def _fenced_json(text: str) -> str | None:
    """Content of the last ```json fenced block, else of the last untagged fenced block, else None."""
    start = max(text.rfind("```json"), text.rfind("```JSON"))
    if start >= 0:
        body_start = start + len("```json")
        end = text.find(_FENCE, body_start)
        if end >= 0:
            return text[body_start:end].strip()
    end = text.rfind(_FENCE)
    if end < 0:
        return None
    start = text.rfind(_FENCE, 0, end)
    if start < 0:
        return None
    body = text[start + len(_FENCE) : end]
    newline = body.find("\n")
    if newline >= 0 and body[:newline].strip():  # tagged with another language (```python ...)
        return None
    return body.strip()


def _payloads(text: str, in_answer: bool) -> list[str] | None:
    blocks = _tool_call_blocks(text)
    if blocks:
        return blocks
    fenced = _fenced_json(text)
    if fenced is not None:
        return [fenced]
    stripped = text.strip()
    if in_answer or stripped[:1] in ("[", "{"):
        return [stripped]
    return None


def _extract_calls(completion: str) -> list[_Call]:
    if len(completion) > MAX_COMPLETION_CHARS:
        raise _Reject(f"completion too long ({len(completion)} chars)")
    answer = last_answer(completion)
    if answer is not None:
        if not answer:
            raise _Reject("empty <answer>")
        payloads = _payloads(answer, in_answer=True)
        where = "JSON in <answer>"
    else:
        payloads = _payloads(completion, in_answer=False)
        where = "JSON"
    if payloads is None:
        raise _Reject("no tool calls found")
    calls: list[_Call] = []
    for payload in payloads:
        calls.extend(_calls_from_value(_loads(payload, where)))
        if len(calls) > MAX_CALLS:
            raise _Reject(f"too many calls (over {MAX_CALLS})")
    return calls
