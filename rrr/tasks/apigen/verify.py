"""Judging parsed calls: the multiset comparison with declared defaults, and the leak-check helpers.

``_compare`` is the verdict: the completion's calls (from ``calls``) against the reference calls, as a multiset,
with an optional argument stated at its schema's declared default counted as left out (``_declared_defaults`` reads
both xlam's flat schemas and JSON schema; unreadable tools mean no defaults, so they never turn a pass into a
fail). Its failure reasons name the first unexpected and the first missing call, which is what the reflection and
the oracle teacher read.

``_mentioned`` / ``_number_mentioned`` / ``_value_mentioned`` are what ``APIGenTask.leaks_answer`` uses to tell a
reflection that writes out the reference calls' values from one that states a lesson. They build their regular
expressions from ``re.escape`` of one literal with fixed look-arounds, so they run in linear time
(``tests/test_linear_time.py`` fuzzes them on 100 kB inputs).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from rrr.tasks.apigen.calls import MAX_CACHED_JSON_CHARS, _Call, _canon, _loads, _Reference, _Reject
from rrr.tasks.base import Verdict

# ----------------------------------------------------------------------------------------------------------------
# Declared defaults (an optional argument at its default is the same call)
# ----------------------------------------------------------------------------------------------------------------
_NO_DEFAULTS: dict[str, dict[str, Any]] = {}


def _declared_defaults(tools: Any) -> dict[str, dict[str, Any]]:
    """``{tool name: {optional argument: canonical default}}`` from an example's ``tools`` (never raises).

    Both schema styles: xlam's flat ``{"param": {"type": "int, optional", "default": 10}}`` (optional when the type
    says so) and JSON schema's ``{"type": "object", "properties": {...}, "required": [...]}`` (optional when not
    required). An argument without a ``"default"`` key has no default. Unreadable tools mean no defaults: they never
    make a verdict fail that would otherwise pass.
    """
    if isinstance(tools, str):
        if len(tools) > MAX_CACHED_JSON_CHARS:
            return _defaults_from_json(tools)
        return _defaults_from_json_cached(tools)
    try:
        return _defaults_from_value(tools)
    except Exception:
        return _NO_DEFAULTS


@functools.lru_cache(maxsize=8192)
def _defaults_from_json_cached(tools: str) -> dict[str, dict[str, Any]]:
    return _defaults_from_json(tools)


def _defaults_from_json(tools: str) -> dict[str, dict[str, Any]]:
    try:
        return _defaults_from_value(_loads(tools, "tools JSON"))
    except Exception:
        return _NO_DEFAULTS


def _defaults_from_value(tools: Any) -> dict[str, dict[str, Any]]:
    if isinstance(tools, Mapping):
        tools = [tools]
    if not isinstance(tools, (list, tuple)):
        return _NO_DEFAULTS
    out: dict[str, dict[str, Any]] = {}
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        if "name" not in tool and isinstance(tool.get("function"), Mapping):  # {"type": "function", "function": ...}
            tool = tool["function"]
        name, params = tool.get("name"), tool.get("parameters")
        if not isinstance(name, str) or not isinstance(params, Mapping):
            continue
        if params.get("type") == "object" and isinstance(params.get("properties"), Mapping):
            required = params.get("required")
            required = set(required) if isinstance(required, list) else set()
            specs = params["properties"]

            def optional(arg: str, spec: Mapping, required=required) -> bool:
                return arg not in required
        else:
            specs = params

            def optional(arg: str, spec: Mapping) -> bool:
                kind = spec.get("type")
                return isinstance(kind, str) and "optional" in kind.lower()

        defaults = {}
        for arg, spec in specs.items():
            if isinstance(spec, Mapping) and "default" in spec and optional(arg, spec):
                try:
                    defaults[arg] = _canon(spec["default"])
                except (_Reject, RecursionError, TypeError):
                    continue
        if defaults:
            out[name] = defaults
    return out or _NO_DEFAULTS


def _without_defaults(call: _Call, defaults: dict[str, dict[str, Any]]) -> _Call:
    """``call`` with every optional argument that equals its declared default left out (the same call)."""
    declared = defaults.get(call.name)
    if not declared:
        return call
    dropped = [arg for arg, value in call.arguments.items() if arg in declared and _canon(value) == declared[arg]]
    if not dropped:
        return call
    arguments = {arg: value for arg, value in call.arguments.items() if arg not in dropped}
    return _Call(call.name, arguments, (call.name, _canon(arguments)))


# ----------------------------------------------------------------------------------------------------------------
# Comparison
# ----------------------------------------------------------------------------------------------------------------
def _same_calls(reference: _Reference, calls: list[_Call]) -> bool:
    if len(calls) != len(reference.calls):
        return False
    if len(calls) == 1:
        return calls[0].key == reference.calls[0].key
    return dict.__eq__(Counter([call.key for call in calls]), reference.counts)  # Counter.__eq__ is a slow loop


def _compare(reference: _Reference, calls: list[_Call], defaults: dict[str, dict[str, Any]] = _NO_DEFAULTS) -> Verdict:
    """Multiset comparison; with ``defaults`` (see ``_declared_defaults``) arguments at their default are left out.

    The plain comparison runs first (stripping defaults from both sides can only turn a mismatch into a match), so a
    matching completion costs no schema work.
    """
    expected, got = len(reference.calls), len(calls)
    if not _same_calls(reference, calls) and defaults:
        ref_calls = tuple(_without_defaults(call, defaults) for call in reference.calls)
        reference = _Reference(ref_calls, Counter(call.key for call in ref_calls))
        calls = [_without_defaults(call, defaults) for call in calls]
    if _same_calls(reference, calls):
        return Verdict(True, "the call matches" if expected == 1 else f"all {expected} calls match")
    remaining = Counter(reference.counts)
    unexpected = []
    for call in calls:
        if remaining[call.key] > 0:
            remaining[call.key] -= 1
        else:
            unexpected.append(call)
    missing = []
    for call in reference.calls:
        if remaining[call.key] > 0:
            remaining[call.key] -= 1
            missing.append(call)
    details = []
    if unexpected:
        reference_names = {call.name for call in reference.calls}
        prefix = "" if unexpected[0].name in reference_names else "wrong tool: "
        details.append(f"{prefix}unexpected call {unexpected[0].render()}")
    if missing:
        details.append(f"missing call {missing[0].render()}")
    if got != expected:
        head = f"expected {expected} call{'s' if expected != 1 else ''}, got {got}"
        return Verdict(False, head + (": " + "; ".join(details) if details else ""))
    return Verdict(False, "; ".join(details) or "calls differ")


# ----------------------------------------------------------------------------------------------------------------
# Leak detection helpers
# ----------------------------------------------------------------------------------------------------------------
def _mentioned(text: str, token: str) -> bool:
    """``token`` occurs in ``text`` (both lower-case) not glued to other word characters."""
    if not token:
        return True
    pattern = re.escape(token)
    if token[0].isalnum() or token[0] == "_":
        pattern = r"(?<![0-9a-z_])" + pattern
    if token[-1].isalnum() or token[-1] == "_":
        pattern += r"(?![0-9a-z_])"
    return re.search(pattern, text) is not None


def _number_mentioned(text: str, value: int | float) -> bool:
    if isinstance(value, float) and not value.is_integer():
        body = re.escape(repr(value)) + "0*"
    else:
        body = re.escape(str(int(value))) + r"(?:\.0+)?"
    return re.search(r"(?<![0-9a-z_.])" + body + r"(?![0-9a-z_]|\.[0-9])", text) is not None


def _value_mentioned(text: str, value: Any) -> bool:
    if isinstance(value, bool):
        return _mentioned(text, "true" if value else "false")
    if isinstance(value, (int, float)):
        return _number_mentioned(text, value)
    if isinstance(value, str):
        return _mentioned(text, value.strip().lower())
    if value is None:
        return _mentioned(text, "null") or _mentioned(text, "none")
    if isinstance(value, Mapping):
        return all(_value_mentioned(text, item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return all(_value_mentioned(text, item) for item in value)
    return False
