"""Every text check on model output runs in linear time: no regular expression (or parser) can be made to hang.

Python's ``re`` backtracks, so a pattern with two quantifiers that can trade the same characters takes quadratic or
exponential time on the right input — and degenerate RL policies write exactly such inputs ("= = = = ...",
"1234-1234-..."). Three layers:

* an **inventory**: every ``re`` call and compiled pattern under ``rrr/`` is found with ``ast`` (so a new one fails
  here until it is added to the fuzzing below), and every pattern that can be fuzzed is;
* **pattern fuzzing**: each pattern gets 100 kB inputs built from its own pieces (every literal word, every class
  member, repeated alone, after each word, and in pairs), read off its parse tree, the worst screened at 10 kB
  re-run at 100 kB;
* **entry points**: ``verify`` / ``leaks_answer`` / the demo's witness parser on hostile 100 kB texts (unclosed
  tags, case-changing characters, every piece above).

The bound is 0.5 s per call (generous on a loaded 2-core machine; the measured worst cases are milliseconds).
"""

from __future__ import annotations

import ast
import itertools
import json
import re
import re._parser as sre_parse
import time
from pathlib import Path

import pytest

from rrr.tasks import countdown, get_task, scheduling
from rrr.tasks import scheduling_demo as demo_task
from rrr.tasks.apigen import calls as apigen_calls
from rrr.tasks.apigen import verify as apigen_verify

ROOT = Path(__file__).resolve().parent.parent / "rrr"
SIZE = 100_000
SCREEN = 10_000
BOUND_S = 0.5

#: Every ``re`` use under rrr/: (path, function, constant pattern or None) -> why it is safe / where it is tested.
#: ``None`` = the pattern is not a literal (built from parts or at run time); those are fuzzed through the module
#: attributes or entry points named beside them.
INVENTORY: dict[tuple[str, str, str | None], str] = {
    ("tasks/countdown.py", "compile", r"(\d+)|([-+*/])|([()])|(=)|(\s+)|([^\d\s()=+*/-]+)"): "fuzzed",
    ("tasks/scheduling.py", "compile", r"\bpeak[\s*_]*+(?:(?:[:=]|is\b)[\s*_]*+)?(\d++)"): "fuzzed",
    ("tasks/scheduling.py", "compile", None): "leak patterns: fuzzed as module attributes",
    (
        "tasks/scheduling.py",
        "compile",
        r"\b(\d++)\s++rooms?\s++(?:are\s++|is\s++)?(?:needed|required|necessary|enough|suffice)",
    ): "fuzzed",
    (
        "tasks/scheduling.py",
        "compile",
        r"\b(?:need|needs|needed|require|requires|required|use|uses|take|takes)\s++"
        r"(?:only\s++|just\s++|exactly\s++|at\s++least\s++)?(\d++)\s++rooms?\b",
    ): "fuzzed",
    ("tasks/scheduling.py", "compile", r"\bminimum\b[^.\n<\d]{0,40}?(?:\bis\b|=|:)\s*+(\d++)\b"): "fuzzed",
    ("tasks/apigen/calls.py", "compile", r'[\[\]{}"\\]'): "fuzzed",
    ("tasks/apigen/verify.py", "escape", None): "builds a literal for _mentioned / _number_mentioned: entry points",
    ("tasks/apigen/verify.py", "search", None): "_mentioned / _number_mentioned: tested directly and via leaks_answer",
    ("tasks/countdown.py", "finditer", r" ([-+*/]) "): "fuzzed (runs on reference answers, not model output)",
    ("tasks/countdown.py", "finditer", r"\d+"): "fuzzed (reference answers)",
    ("tasks/base.py", "fullmatch", r"-?\d+"): "fuzzed (reference answers)",
    ("curriculum/teachers.py", "match", r"^https?://"): "fuzzed (a configured URL, not model output)",
    ("curriculum/teachers.py", "findall", r"Solved (\d+)/(\d+)"): "fuzzed (a teacher's journal text)",
    ("training/checkpoints.py", "compile", r"^checkpoint-(\d+)$"): "fuzzed (directory names, not model output)",
    (
        "training/checkpoints.py",
        "fullmatch",
        r"optimizer(\.pt|\.bin|_\d+)|rank\d+-of-\d+-optimizer\.pt",
    ): "fuzzed (file names in a checkpoint)",
    ("training/checkpoints.py", "fullmatch", r"rng_state(_\d+)?\.pth"): "fuzzed (file names in a checkpoint)",
    (
        "utils/secrets.py",
        "compile",
        r"(?i)(\bbearer\s++|\b(?:x-)?api[-_]key[\"']?+\s*+[:=]\s*+[\"']?+)[^\s\"',;}]{6,}+|\bsk-[A-Za-z0-9_-]{8,}+",
    ): "fuzzed (credential shapes in server replies and log lines)",
}
_RE_FUNCS = {"compile", "search", "match", "fullmatch", "finditer", "findall", "sub", "subn", "split", "escape"}


def _inventory() -> set[tuple[str, str, str | None]]:
    found = set()
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id in ("re", "regex") and node.func.attr in _RE_FUNCS:
                first = node.args[0] if node.args else None
                literal = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
                found.add((str(path.relative_to(ROOT)), node.func.attr, literal))
            elif isinstance(node.func, ast.Attribute) and node.func.attr == "Regex":  # tokenizers' Rust regex
                found.add((str(path.relative_to(ROOT)), "Regex", None))
    return found


def test_inventory_of_every_regular_expression_in_rrr():
    """A new regular expression on text must be added here, with the fuzzing below covering it."""
    found = _inventory()
    # rrr/models/task_tokenizer.py's pre-tokenizer runs in the tokenizers library (Rust), on training text; it is
    # listed, not fuzzed here.
    found.discard(("models/task_tokenizer.py", "Regex", None))
    assert found == set(INVENTORY), {"new": found - set(INVENTORY), "gone": set(INVENTORY) - found}


# ------------------------------------------------------------------------------------------------------------------
# Pattern fuzzing
# ------------------------------------------------------------------------------------------------------------------
def _pieces(pattern: re.Pattern) -> tuple[list[str], list[str]]:
    """(literal words, single characters) of a pattern: its literal runs, and one member of every class."""
    words: list[str] = []
    chars: set[str] = {"x", "\n"}
    category = {"category_digit": "7", "category_space": " \t", "category_word": "a_", "category_not_digit": "x"}

    def walk(items) -> None:
        run = ""
        for op, arg in items:
            name = str(op).lower()
            if name == "literal":
                run += chr(arg)
                chars.add(chr(arg))
                continue
            if run:
                words.append(run)
                run = ""
            if name == "in":
                for sub_op, sub_arg in arg:
                    sub = str(sub_op).lower()
                    if sub == "literal":
                        chars.add(chr(sub_arg))
                    elif sub == "range":
                        chars.update({chr(sub_arg[0]), chr(sub_arg[1])})
                    elif sub == "category":
                        chars.update(category.get(str(sub_arg).lower(), "x"))
            elif name in ("max_repeat", "min_repeat", "possessive_repeat"):
                walk(arg[2])
            elif name in ("subpattern", "atomic_group"):
                walk(arg[-1])
            elif name == "branch":
                for branch in arg[1]:
                    walk(branch)
            elif name in ("assert", "assert_not"):
                walk(arg[1])
        if run:
            words.append(run)

    walk(sre_parse.parse(pattern.pattern, pattern.flags))
    words = {w for w in words if len(w) > 1}
    if not pattern.flags & re.IGNORECASE:
        words |= {w.upper() for w in words}
    return sorted(words), sorted(chars)


def _fit(piece: str, size: int) -> str:
    return (piece * (size // max(1, len(piece)) + 1))[:size]


def _candidates(pattern: re.Pattern, size: int):
    """Every piece repeated; every pair of pieces alternated; each word followed by a run of every piece and by
    every alternating pair of separators (the "answer= = = ..." shape), then a character that breaks the match."""
    words, chars = _pieces(pattern)
    separators = [c for c in chars if not c.isalnum()]
    for c in chars:
        yield _fit(c, size)
    for a, b in itertools.combinations(chars, 2):
        yield _fit(a + b, size)
    for w in words:
        yield _fit(w, size)
        yield _fit(w + " ", size)
        for c in chars:
            yield w + _fit(c, size) + "x"
            yield _fit(w + c, size)
        for a, b in itertools.combinations(separators, 2):
            yield w + _fit(a + b, size) + "x"
    for c in chars:  # "1234-1234-...": digit runs longer than a bounded repeat, joined by each character
        yield _fit("1234" + c, size)


def _time(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def _scan(pattern: re.Pattern, text: str) -> None:
    for _ in pattern.finditer(text):
        pass


def _module_patterns() -> dict[str, re.Pattern]:
    out = {}
    for module in (countdown, scheduling, apigen_calls, apigen_verify, demo_task):
        for name, value in vars(module).items():
            values = value if isinstance(value, tuple) else (value,)
            for i, item in enumerate(values):
                if isinstance(item, re.Pattern):
                    out[f"{module.__name__}.{name}[{i}]"] = item
    for path, func, literal in INVENTORY:
        if literal is not None:
            out[f"{path}:{func}:{literal}"] = re.compile(literal)
    return out


PATTERNS = _module_patterns()


def test_every_scheduling_leak_pattern_is_fuzzed():
    leak = [*scheduling._LEAK_LABEL_PATTERNS, *scheduling._LEAK_NUMBER_PATTERNS, scheduling.PEAK_PATTERN]
    assert all(any(p is q for q in PATTERNS.values()) for p in leak)
    assert not any(isinstance(v, re.Pattern) for v in vars(demo_task).values())  # the witness is parsed, not matched


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_is_linear_on_pathological_input(name):
    pattern = PATTERNS[name]
    screened = sorted(((_time(_scan, pattern, text), text) for text in _candidates(pattern, SCREEN)), reverse=True)
    worst = _retimed(pattern, screened[0][1])
    assert worst < BOUND_S / 5, (name, worst, screened[0][1][:40])
    # the worst shapes at full size: linear means ~10x the 10 kB time, far below the bound
    for _, text in screened[:8]:
        piece = text[: min(len(text), 200)]
        big = _fit(piece, SIZE) if len(set(piece)) < 8 else text[:40] + _fit(text[40:240], SIZE - 40) + "x"
        elapsed = _time(_scan, pattern, big)
        if elapsed >= BOUND_S:
            elapsed = _retimed(pattern, big)
        assert elapsed < BOUND_S, (name, elapsed, big[:40])


def _retimed(pattern: re.Pattern, text: str) -> float:
    """The fastest of three runs: a busy machine can stall one run, but not the pattern's own cost."""
    return min(_time(_scan, pattern, text) for _ in range(3))


def test_the_fuzzing_finds_the_old_quadratic_scheduling_pattern():
    """The screening above, at 3 kB, on the pattern this file was written for: its worst input is ~100x slower."""
    sep = r"[\s:=\"'*`>\-]*"
    old = re.compile(rf"\banswer{sep}(?:(?:is|=){sep})?(yes|no)\b", re.IGNORECASE)
    new = re.compile(rf"\banswer{sep}+(?:is{sep}+)?(yes|no)\b", re.IGNORECASE)  # the fix, on the same pieces

    _, text = max((_time(_scan, old, text), text) for text in _candidates(old, 3_000))
    assert text.startswith("answer") and "=" in text  # the shape the probe found: "answer= = = ...x"

    assert _retimed(old, text) > 20 * max(_retimed(new, text), 1e-4)


# ------------------------------------------------------------------------------------------------------------------
# Entry points: the verifiers, leak checks and the demo's witness parser
# ------------------------------------------------------------------------------------------------------------------
def _hostile_texts() -> list[str]:
    pieces = [
        "= ", "=", "answer", "answer = ", "peak", "peak: ", "minimum", "rooms ", "1234-", "1-", "12-34 ", "at 1 : ",
        "(", ")", "1+", "1+1=2 ", "((", "3 + 5 = 8, ", "-", "--", "İ", "K", "ſ", "<answer>", "</answer>",
        "<ANSWER>", "</ANSWER>", "<answer>İ", "<tool_call>", "</tool_call>", "```", "```json", "{", "[", '"', "\\",
        '{"name": "f", "arguments": {', "should be ", "must answer ", "need ", "1.50", "0", " ", "\u2009", "\n",
    ]  # fmt: skip
    texts = [_fit(p, SIZE) for p in pieces]
    texts += ["answer" + _fit("= ", SIZE) + "x", "answer" + "=" * SIZE + "x", "(" * 3990 + "1+1=2"]
    texts += ["at 1:1-" + _fit("1234-", SIZE), "İ" * 50_000 + "<answer>16</answer>", "<answer>" + "x" * SIZE]
    return texts


HOSTILE = _hostile_texts()
CASES = {
    "countdown": (get_task("countdown"), {"nums": [3, 5, 2], "target": 16}),
    "apigen": (
        get_task("apigen"),
        {
            "query": "q",
            "tools": json.dumps([{"name": "f", "parameters": {"x": {"type": "float, optional", "default": 1.5}}}]),
            "answers": json.dumps([{"name": "f", "arguments": {"x": 1.5, "s": "aaa", "n": 1}}]),
        },
    ),
    "scheduling": (get_task("scheduling"), {"meetings": [[9, 11], [10, 12], [11, 13]], "rooms": 2}),
    "scheduling_strict": (get_task("scheduling", strict=True), {"meetings": [[9, 11], [10, 12]], "rooms": 1}),
    "scheduling_min_rooms": (get_task("scheduling_min_rooms"), {"meetings": [[9, 11], [10, 12], [11, 13]]}),
    "scheduling_demo": (get_task("scheduling_demo"), {"meetings": [[9, 11], [10, 12]]}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_verify_and_leaks_answer_are_fast_on_hostile_text(name):
    task, example = CASES[name]
    worst = 0.0
    for text in HOSTILE:
        worst = max(worst, _time(task.verify, example, text), _time(task.leaks_answer, example, text))
    assert worst < BOUND_S, (name, worst)


def test_witness_parser_is_fast_and_exact():
    ex = {"meetings": [[9, 11], [10, 12], [11, 13]]}
    for text in [*HOSTILE, "at 1:" + "1234-" * 22, "at 1:1-" + "1234-" * 30 + "x"]:
        assert _time(demo_task.check_witness, ex, text) < BOUND_S
    assert demo_task.parse_witness(" at 11 :  10-12 11-13\n") == (11, [(10, 12), (11, 13)])
    assert demo_task.parse_witness("at 11:") == (11, [])
    for bad in ("at 11 : 10-1211-13", "at 11 : 1-2-3", "at1 : 1-2", "at 1234 : 1-2", "at 1 : 1-", "at ١ : 1-2"):
        assert demo_task.parse_witness(bad) is None, bad


def test_apigen_mention_checks_are_fast():
    for text in HOSTILE:
        low = text.lower()
        assert _time(apigen_verify._number_mentioned, low, 1.5) < BOUND_S
        assert _time(apigen_verify._number_mentioned, low, 1) < BOUND_S
        assert _time(apigen_verify._mentioned, low, "aaa") < BOUND_S
    assert _time(apigen_verify._number_mentioned, "1.5" + "0" * SIZE + "1", 1.5) < BOUND_S
    assert _time(apigen_verify._mentioned, "a" * SIZE, "a" * 50) < BOUND_S


def test_countdown_leak_cache_keys_stay_bounded():
    """Only expressions of at most MAX_EXPR_CHARS characters are ever cached, whatever the reflection."""
    task, example = CASES["countdown"]
    countdown._evaluate_cached.cache_clear()
    for text in HOSTILE:
        task.leaks_answer(example, text)
    # lru_cache keeps its keys internally; evaluate every key it could hold through the public wrapper instead
    assert countdown._evaluate("(" * (countdown.MAX_EXPR_CHARS + 1))[0].startswith("answer too long")
    info = countdown._evaluate_cached.cache_info()
    assert info.currsize <= info.maxsize
    before = info.currsize
    countdown._evaluate("1 + " * 1000 + "1")  # over the limit: answered without touching the cache
    assert countdown._evaluate_cached.cache_info().currsize == before
