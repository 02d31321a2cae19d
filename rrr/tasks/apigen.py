"""APIGen / xLAM function calling: answer a user query with the right tool call(s).

Data
----
Each example has a ``query`` (str), the ``tools`` offered (a JSON string: a list of ``{name, description,
parameters: {param: {type, description, default}}}``) and the reference ``answers`` (a JSON string: a list of
``{"name": ..., "arguments": {...}}``; several entries are parallel calls, possibly of the same tool). Both stay JSON
*strings* in the ``Dataset`` because Arrow cannot hold the heterogeneous nested dicts of 60k different tools; every
method also accepts already-parsed lists. Sources:

* ``Salesforce/xlam-function-calling-60k`` (the default; **gated**: accept its terms on the hub and log in). It has a
  single ``train`` split of 60,000 rows, so ``load`` carves two deterministic, disjoint splits out of it: ``test`` is
  the **last 2,000 rows** (``HUB_TEST_ROWS``) and ``train`` the 58,000 before them, in the file's order;
* a local ``.json``/``.jsonl``/``.parquet``/``.csv`` file or saved dataset with the same columns (``tools`` and
  ``answers`` may be stored parsed; ``prepare`` turns them back into JSON strings);
* ``source="generated"``: a seeded offline generator of xlam-style examples over 15 small tool schemas (weather,
  currency, stocks, units, search, time zones, ...), 1-3 tools offered per query (with distractors) and 1-3 reference
  calls, parallel calls of one tool included.

Verification
------------
The calls are extracted from the completion from the first form that is present, in this order:

1. the **last** ``<answer>…</answer>`` (the format the prompt asks for; its content may be a JSON list, a single
   call object, a fenced json block or ``<tool_call>`` blocks). When an answer tag is present it is authoritative:
   invalid JSON inside it fails, without looking elsewhere;
2. every ``<tool_call>{…}</tool_call>`` block (Hermes/Qwen chat templates emit one per call);
3. the last fenced json block (models trained on markdown do this unprompted);
4. the whole stripped completion when it starts like JSON (xLAM's own output format).

These are the forms instruction-tuned models actually produce; accepting them judges *which calls* a model makes,
not whether it follows one house style, which is what the RRR paper's APIGen reward measures. A call is an object
with a ``name`` and ``arguments``; ``arguments`` may also be a JSON string (OpenAI style), be called ``parameters``
(Llama 3.1 style), or the call may be wrapped as ``{"type": "function", "function": {...}}``; a missing
``arguments`` means no arguments.

A completion passes iff its calls equal the reference calls **as a multiset**: same number of calls, and every call
matched one-to-one by name, argument names and argument values. Order does not matter because parallel calls are
independent (the dataset's order is arbitrary: "weather in Paris and in Rome" may be answered Rome first), but
multiplicity does: a dropped or duplicated call is a different action. Values are compared after a canonical
encoding: numbers numerically (``3 == 3.0``, as JSON does not distinguish them) but booleans are not numbers
(``true != 1``) and strings are not numbers (``"3" != 3``); strings exactly; lists in order; objects by key. An
**optional argument stated at its declared default** is the same call as one that leaves it out: when a tool's schema
in ``tools`` marks an argument optional (xlam: ``"type": "str, optional"``; JSON schema: not in ``required``) and
declares a ``"default"``, that argument is dropped from both sides whenever its value equals the default
(canonically), so ``units="metric"`` with default ``"metric"`` passes either way. A different value, an argument the
tool does not declare, and a missing required argument still fail.

Model output is hostile data: the completion is size-capped before any parsing, every JSON payload is size-capped
and its bracket nesting depth pre-checked before ``json.loads``, ``NaN``/``Infinity``/``1e999`` and giant integers
are rejected, and nothing is ever evaluated. ``verify`` returns a ``Verdict`` for any input and never raises.
Reference answers are parsed once per distinct JSON string (an LRU cache), so verification stays well above 10,000
checks per second on one core.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rrr.tasks.base import Example, Task, TaskDataError, Verdict
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
#: Rows of the single hub split that form the ``test`` split (the last ones); ``train`` is everything before them.
HUB_TEST_ROWS = 2_000

HUB_SOURCE = "Salesforce/xlam-function-calling-60k"
_HUB_GATED_HINT = (
    f"{HUB_SOURCE} is gated: accept the terms at https://huggingface.co/datasets/{HUB_SOURCE} and log in "
    "(`huggingface-cli login` or set HF_TOKEN); without the hub, use source='generated' or a local .jsonl/.parquet "
    "copy with columns query, tools, answers."
)

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


# ----------------------------------------------------------------------------------------------------------------
# Synthetic generator: xlam-style tools, templated queries
# ----------------------------------------------------------------------------------------------------------------
_CITIES = [
    "Paris", "Rome", "Tokyo", "Nairobi", "Lima", "Oslo", "Toronto", "Mumbai", "Sydney", "Cairo", "Berlin", "Madrid",
    "Seoul", "Austin", "Lisbon", "Dublin", "Hanoi", "Santiago",
]  # fmt: skip
_CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "INR", "BRL", "MXN"]
_SYMBOLS = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA", "META", "NFLX", "IBM", "ORCL", "INTC", "AMD"]
_EXCHANGES = ["NASDAQ", "NYSE", "LSE", "TSX"]
_UNIT_PAIRS = [
    ("kilometers", "miles"), ("miles", "kilometers"), ("kilograms", "pounds"), ("pounds", "kilograms"),
    ("celsius", "fahrenheit"), ("fahrenheit", "celsius"), ("liters", "gallons"), ("feet", "meters"),
]  # fmt: skip
_SEARCHES = [
    "best hiking trails in Peru", "how to repot a fern", "history of the printing press", "cheap flights to Lisbon",
    "electric bike reviews", "sourdough starter recipe", "python asyncio tutorial", "solar panel efficiency",
    "marathon training plan", "origami crane instructions",
]  # fmt: skip
_TIMEZONES = [
    "Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "Africa/Nairobi", "America/Lima",
    "Asia/Kolkata", "Europe/London", "America/Los_Angeles", "Pacific/Auckland",
]  # fmt: skip
_PHRASES = [
    "good morning", "where is the train station", "thank you very much", "the meeting starts at noon",
    "I would like a coffee", "how much does this cost", "see you tomorrow", "the library is closed today",
]  # fmt: skip
_LANGUAGES = ["French", "Spanish", "German", "Japanese", "Italian", "Portuguese", "Korean", "Swahili"]
_MOVIES = [
    ("Inception", 2010), ("Spirited Away", 2001), ("The Matrix", 1999), ("Parasite", 2019), ("Amelie", 2001),
    ("Arrival", 2016), ("Casablanca", 1942), ("Whiplash", 2014), ("Roma", 2018), ("Up", 2009),
]  # fmt: skip
_CUISINES = ["Italian", "Thai", "Mexican", "Ethiopian", "Japanese", "Lebanese", "Indian", "vegan"]
_ARTISTS = ["Adele", "Radiohead", "Miles Davis", "Bjork", "Fela Kuti", "Taylor Swift", "Daft Punk", "Nina Simone"]
_AIRLINES = ["BA", "AF", "LH", "UA", "DL", "QF", "EK", "KL"]


def _param(kind: str, description: str, default: Any = None, optional: bool = False) -> dict:
    spec: dict[str, Any] = {"description": description, "type": kind + (", optional" if optional else "")}
    if optional:
        spec["default"] = default
    return spec


def _money(rng: random.Random) -> float | int:
    return rng.randint(5, 5000) if rng.random() < 0.5 else round(rng.uniform(1, 5000), 2)


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _fmt_argument(value: Any) -> str:
    """An argument value as JSON (``"Paris"``, ``3``, ``true``) for ``APIGenTask.worked_solution``."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _join_words(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True)
class _Tool:
    """One synthetic tool: its xlam schema, a sampler of arguments and a phrase that states every argument value."""

    name: str
    description: str
    parameters: dict
    sample: Callable[[random.Random], dict]
    phrase: Callable[[random.Random, dict], str]

    def schema(self) -> dict:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


def _maybe(rng: random.Random, probability: float, args: dict, key: str, value: Any) -> dict:
    if rng.random() < probability:
        args[key] = value
    return args


def _weather_phrase(rng: random.Random, a: dict) -> str:
    lead = rng.choice(
        ["get the current weather in {}", "check what the weather is like in {}", "fetch the weather for {}"]
    )
    return lead.format(a["city"]) + (f" in {a['units']} units" if "units" in a else "")


def _search_sample(rng: random.Random) -> dict:
    args = _maybe(rng, 0.4, {"query": rng.choice(_SEARCHES)}, "num_results", rng.choice([3, 5, 15, 20, 50]))
    return _maybe(rng, 0.35, args, "safe_search", rng.random() < 0.5)


def _restaurant_sample(rng: random.Random) -> dict:
    args = {"location": rng.choice(_CITIES), "cuisine": rng.choice(_CUISINES)}
    return _maybe(rng, 0.35, _maybe(rng, 0.35, args, "max_price", rng.randint(1, 4)), "open_now", rng.random() < 0.6)


def _search_phrase(rng: random.Random, a: dict) -> str:
    text = f"search the web for '{a['query']}'"
    extras = []
    if "num_results" in a:
        extras.append(f"showing {a['num_results']} results")
    if "safe_search" in a:
        extras.append("with safe search " + ("on" if a["safe_search"] else "off"))
    return text + (" " + " ".join(extras) if extras else "")


def _restaurant_phrase(rng: random.Random, a: dict) -> str:
    text = f"find {a['cuisine']} restaurants in {a['location']}"
    if "max_price" in a:
        text += f" with a price level of at most {a['max_price']}"
    if "open_now" in a:
        text += " that are open right now" if a["open_now"] else " including ones that are closed right now"
    return text


def _sort_phrase(rng: random.Random, a: dict) -> str:
    text = f"sort the numbers {_join_words([str(x) for x in a['numbers']])}"
    if "descending" in a:
        text += " in descending order" if a["descending"] else " in ascending order"
    return text


_TOOLS: tuple[_Tool, ...] = (
    _Tool(
        "get_current_weather",
        "Returns the current weather conditions for a city.",
        {
            "city": _param("str", "Name of the city, e.g. 'Paris'."),
            "units": _param("str", "Unit system, 'metric' or 'imperial'.", "metric", optional=True),
        },
        lambda r: _maybe(r, 0.35, {"city": r.choice(_CITIES)}, "units", r.choice(["metric", "imperial"])),
        _weather_phrase,
    ),
    _Tool(
        "convert_currency",
        "Converts an amount of money from one currency to another at the latest exchange rate.",
        {
            "amount": _param("float", "The amount of money to convert."),
            "from_currency": _param("str", "ISO 4217 code of the source currency, e.g. 'USD'."),
            "to_currency": _param("str", "ISO 4217 code of the target currency, e.g. 'EUR'."),
        },
        lambda r: dict(zip(("amount", "from_currency", "to_currency"), (_money(r), *r.sample(_CURRENCIES, 2)))),
        lambda r, a: r.choice(["convert {} {} to {}", "find out how much {} {} is worth in {}"]).format(
            _fmt(a["amount"]), a["from_currency"], a["to_currency"]
        ),
    ),
    _Tool(
        "get_stock_price",
        "Fetches the latest trading price of a stock.",
        {
            "symbol": _param("str", "Ticker symbol, e.g. 'AAPL'."),
            "exchange": _param("str", "Stock exchange code.", "NASDAQ", optional=True),
        },
        lambda r: _maybe(r, 0.3, {"symbol": r.choice(_SYMBOLS)}, "exchange", r.choice(_EXCHANGES)),
        lambda r, a: (
            r.choice(["look up the latest stock price of {}", "get the current share price for {}"]).format(a["symbol"])
            + (f" on the {a['exchange']} exchange" if "exchange" in a else "")
        ),
    ),
    _Tool(
        "convert_units",
        "Converts a measurement from one unit to another.",
        {
            "value": _param("float", "The quantity to convert."),
            "from_unit": _param("str", "Unit of the given value, e.g. 'kilometers'."),
            "to_unit": _param("str", "Unit to convert to, e.g. 'miles'."),
        },
        lambda r: dict(
            zip(
                ("value", "from_unit", "to_unit"),
                (r.randint(1, 500) if r.random() < 0.5 else round(r.uniform(0.5, 500), 1), *r.choice(_UNIT_PAIRS)),
            )
        ),
        lambda r, a: f"convert {_fmt(a['value'])} {a['from_unit']} to {a['to_unit']}",
    ),
    _Tool(
        "web_search",
        "Searches the web and returns a list of result pages.",
        {
            "query": _param("str", "The search query."),
            "num_results": _param("int", "Number of results to return.", 10, optional=True),
            "safe_search": _param("bool", "Whether to filter explicit results.", True, optional=True),
        },
        _search_sample,
        _search_phrase,
    ),
    _Tool(
        "get_time_in_timezone",
        "Returns the current local time in an IANA time zone.",
        {"timezone": _param("str", "IANA time zone name, e.g. 'Europe/Paris'.")},
        lambda r: {"timezone": r.choice(_TIMEZONES)},
        lambda r, a: r.choice(["tell me the current time in the {} time zone", "get the local time for {}"]).format(
            a["timezone"]
        ),
    ),
    _Tool(
        "calculate_mortgage_payment",
        "Computes the monthly payment of a fixed-rate mortgage.",
        {
            "principal": _param("float", "The loan amount."),
            "annual_rate": _param("float", "Annual interest rate in percent."),
            "years": _param("int", "Loan term in years."),
        },
        lambda r: {
            "principal": r.choice([100000, 250000, 320000, 415000.5, 180000]),
            "annual_rate": r.choice([3.5, 4.25, 5.0, 6.1, 2.75, 7]),
            "years": r.choice([10, 15, 20, 25, 30]),
        },
        lambda r, a: (
            f"calculate the monthly payment on a {_fmt(a['principal'])} loan at {_fmt(a['annual_rate'])}% annual "
            f"interest over {a['years']} years"
        ),
    ),
    _Tool(
        "translate_text",
        "Translates text into another language.",
        {
            "text": _param("str", "The text to translate."),
            "target_language": _param("str", "Language to translate into, e.g. 'French'."),
            "source_language": _param("str", "Language of the text; detected when omitted.", "auto", optional=True),
        },
        lambda r: _maybe(
            r, 0.3, {"text": r.choice(_PHRASES), "target_language": r.choice(_LANGUAGES)}, "source_language", "English"
        ),
        lambda r, a: (
            f"translate '{a['text']}' into {a['target_language']}"
            + (f" from {a['source_language']}" if "source_language" in a else "")
        ),
    ),
    _Tool(
        "get_movie_details",
        "Fetches plot, cast and ratings of a movie.",
        {
            "title": _param("str", "The movie title."),
            "year": _param("int", "Release year, to disambiguate remakes.", None, optional=True),
        },
        lambda r: (lambda m: _maybe(r, 0.4, {"title": m[0]}, "year", m[1]))(r.choice(_MOVIES)),
        lambda r, a: (
            f"fetch details about the movie '{a['title']}'" + (f" released in {a['year']}" if "year" in a else "")
        ),
    ),
    _Tool(
        "find_restaurants",
        "Finds restaurants near a location.",
        {
            "location": _param("str", "City or neighbourhood."),
            "cuisine": _param("str", "Type of food, e.g. 'Thai'."),
            "max_price": _param("int", "Highest price level from 1 (cheap) to 4 (expensive).", 4, optional=True),
            "open_now": _param("bool", "Only return restaurants that are open now.", False, optional=True),
        },
        _restaurant_sample,
        _restaurant_phrase,
    ),
    _Tool(
        "calculate_average",
        "Computes the arithmetic mean of a list of numbers.",
        {"numbers": _param("List[float]", "The numbers to average.")},
        lambda r: {
            "numbers": [
                r.randint(0, 100) if r.random() < 0.6 else round(r.uniform(0, 100), 1) for _ in range(r.randint(3, 6))
            ]
        },
        lambda r, a: f"compute the average of {_join_words([_fmt(x) for x in a['numbers']])}",
    ),
    _Tool(
        "get_top_tracks",
        "Lists the most popular tracks of a music artist.",
        {
            "artist": _param("str", "Name of the artist."),
            "limit": _param("int", "Maximum number of tracks.", 10, optional=True),
        },
        lambda r: _maybe(r, 0.5, {"artist": r.choice(_ARTISTS)}, "limit", r.choice([3, 5, 20, 25])),
        lambda r, a: (
            f"list the top {a['limit']} tracks by {a['artist']}"
            if "limit" in a
            else f"list the top tracks by {a['artist']}"
        ),
    ),
    _Tool(
        "is_prime",
        "Checks whether an integer is a prime number.",
        {"n": _param("int", "The integer to test.")},
        lambda r: {"n": r.randint(2, 100_000)},
        lambda r, a: r.choice(["check whether {} is a prime number", "tell me if {} is prime"]).format(a["n"]),
    ),
    _Tool(
        "sort_numbers",
        "Sorts a list of integers.",
        {
            "numbers": _param("List[int]", "The integers to sort."),
            "descending": _param("bool", "Sort from largest to smallest.", False, optional=True),
        },
        lambda r: _maybe(
            r, 0.6, {"numbers": [r.randint(-50, 200) for _ in range(r.randint(3, 7))]}, "descending", r.random() < 0.5
        ),
        _sort_phrase,
    ),
    _Tool(
        "get_flight_status",
        "Returns the status (on time, delayed, cancelled) of a flight on a given date.",
        {
            "flight_number": _param("str", "IATA flight number, e.g. 'BA283'."),
            "date": _param("str", "Departure date in YYYY-MM-DD format."),
        },
        lambda r: {
            "flight_number": f"{r.choice(_AIRLINES)}{r.randint(10, 2999)}",
            "date": f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
        },
        lambda r, a: f"check the status of flight {a['flight_number']} on {a['date']}",
    ),
)


def _example_rng(seed: int, split: str, index: int) -> random.Random:
    """A per-example RNG from a stable hash (never ``hash()``, which is salted per process)."""
    digest = hashlib.sha256(f"apigen|{split}|{seed}|{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _generate_one(rng: random.Random) -> tuple[str, list[dict], list[dict]]:
    n_calls = rng.choices([1, 2, 3], weights=[0.5, 0.35, 0.15])[0]
    first, second, third = rng.sample(range(len(_TOOLS)), 3)
    if n_calls == 1:
        plan = [first]
    elif n_calls == 2:
        plan = [first, first] if rng.random() < 0.5 else [first, second]
    else:
        plan = rng.choice([[first, first, first], [first, first, second], [first, second, third]])
    needed = list(dict.fromkeys(plan))
    others = [i for i in range(len(_TOOLS)) if i not in needed]
    offered = needed + rng.sample(others, rng.randint(len(needed), 3) - len(needed))
    rng.shuffle(offered)

    calls: list[dict] = []
    clauses: list[str] = []
    for tool_index in plan:
        tool = _TOOLS[tool_index]
        for _ in range(20):  # parallel calls of one tool must differ, or the "parallel" call is a duplicate
            arguments = tool.sample(rng)
            if all(c["name"] != tool.name or c["arguments"] != arguments for c in calls):
                break
        else:
            continue
        calls.append({"name": tool.name, "arguments": arguments})
        clauses.append(tool.phrase(rng, arguments))
    if len(clauses) == 1:
        sentence = clauses[0]
    elif len(clauses) == 2:
        sentence = f"{clauses[0]}, and also {clauses[1]}"
    else:
        sentence = f"{', '.join(clauses[:-1])}, and finally {clauses[-1]}"
    query = sentence[0].upper() + sentence[1:] + "."
    return query, [_TOOLS[i].schema() for i in offered], calls


# ----------------------------------------------------------------------------------------------------------------
# The task
# ----------------------------------------------------------------------------------------------------------------
def _as_json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


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


class APIGenTask(Task):
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
        """Multiset comparison of the completion's calls with the reference calls (see the module docstring)."""
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

    # ------------------------------------------------------------------------------------------------------------
    # Teaching (the oracle teacher) and benchmark fixtures
    # ------------------------------------------------------------------------------------------------------------
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
