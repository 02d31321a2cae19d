"""Countdown: combine the given numbers with + - * / and parentheses to hit a target.

The rules (TinyZero's task, judged strictly and with a binary reward):

* the final answer is the **last** ``<answer>…</answer>`` of the completion;
* it is an arithmetic expression of non-negative integer literals, binary ``+ - * /``, unary minus and parentheses —
  nothing else: no unary plus, no powers, no ``//`` or ``%``, no decimals, no names or calls. Unary minus buys nothing
  (``-a + b`` is ``b - a``; on 1,000 generated instances it made no new target reachable) but rejecting a correct
  ``-3 + 5 * 4`` would withhold a reward for a style choice;
* every given number is used exactly once (the multiset of literals equals the multiset of ``nums``);
* its value equals ``target`` **exactly**.

Two conveniences, both documented so that the reward stays predictable: a single ``= <target>`` may end (or
``<target> =`` may begin) the answer, as in ``(3 + 5) * 2 = 16`` — the stated number must be the target; and the
typographic/LaTeX operators ``×  ∗  ·  \\times  \\cdot`` (→ ``*``), ``÷  ∕  \\div`` (→ ``/``) and ``−  –`` (→ ``-``) are
normalised to ASCII before parsing, since small chat models write them often and they are not ambiguous. Every
Unicode space (``str.isspace()`` or category Zs: U+00A0, U+2009, U+202F, ...) counts as a space.

Why ``ast`` + ``Fraction`` rather than TinyZero's ``eval`` + ``abs(result - target) < 1e-5``: model output is data,
never code, so the answer is parsed with ``ast.parse(mode="eval")`` and walked with a whitelist of node types — nothing
is ever executed, and a hostile answer can at worst be rejected. Exact rational arithmetic makes ``1 / 3 * 3`` equal
``1`` exactly, and rejects ``1000001 / 1000000`` for a target of 1, which a 1e-5 float tolerance would accept: the
reward is a property of the expression, not of IEEE rounding. With at most 200 characters of ``+ - * /`` (no powers)
the numbers involved stay small, so exact arithmetic is cheap.

Data: the hub dataset ``Jiayi-Pan/Countdown-Tasks-3to4`` has a single ``train`` split of ~490k rows (``target`` int,
``nums`` 3–4 ints). ``CountdownTask.load`` carves deterministic, disjoint splits out of it by row position: ``test``
is the last 2,000 rows, ``validation`` the 500 rows before them, and ``train`` everything before that. The seeded
generator (``source="generated"``) builds only solvable instances from a random expression tree and partitions the
number multisets by a stable hash, so generated ``train``/``validation``/``test`` sets never share an instance.
"""

from __future__ import annotations

import ast
import hashlib
import json
import random
import re
import unicodedata
import zlib
from collections import Counter
from fractions import Fraction
from functools import lru_cache
from numbers import Integral
from typing import Any, ClassVar

from rrr.tasks.base import Example, Task, TaskDataError, Verdict
from rrr.tasks.parsing import last_answer

#: Answers longer than this are rejected before parsing: a Countdown equation is a few dozen characters.
MAX_EXPR_CHARS = 200
#: ``leaks_answer`` scans at most this many characters of a reflection (a lesson is a paragraph, not a book).
MAX_LEAK_SCAN_CHARS = 4_000
#: ``solve`` is exhaustive; beyond this many numbers the search would no longer be instant.
MAX_SOLVE_NUMS = 6

#: Rows of the single hub split reserved for the held-out splits, counted from the end (see ``CountdownTask.load``).
HUB_TEST_ROWS = 2_000
HUB_VALIDATION_ROWS = 500

_SPLIT_ALIASES = {"train": "train", "test": "test", "validation": "validation", "valid": "validation"}
_SPLIT_ALIASES.update({"val": "validation", "dev": "validation"})
#: Generated instances go to a split by ``crc32(sorted nums) % 100``, so generated splits are disjoint by design.
_GEN_BUCKETS = {"test": range(0, 10), "validation": range(10, 20), "train": range(20, 100)}

_ALLOWED_CHARS = frozenset("0123456789+-*/() ")
_SYMBOLS = (
    ("\\times", "*"),
    ("\\cdot", "*"),
    ("\\div", "/"),
    ("×", "*"),
    ("∗", "*"),
    ("·", "*"),
    ("⋅", "*"),
    ("÷", "/"),
    ("∕", "/"),
    ("−", "-"),
    ("–", "-"),
)
#: Every character that is whitespace to Python or a Unicode space separator (Zs) -> " ".
_WHITESPACE = str.maketrans(
    {c: " " for c in map(chr, range(0x110000)) if c != " " and (c.isspace() or unicodedata.category(c) == "Zs")}
)
_OP_NAMES = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
# Linear tokeniser for the leak scan: each alternative is a single character class (no nested quantifiers).
_TOKEN_RE = re.compile(r"(\d+)|([-+*/])|([()])|(=)|(\s+)|([^\d\s()=+*/-]+)")


# ----------------------------------------------------------------------------------------------------------------
# Safe evaluation
# ----------------------------------------------------------------------------------------------------------------
class _Reject(Exception):
    """Internal: an expression is not an allowed Countdown expression (the message is the Verdict reason)."""


def normalize_expression(expr: str) -> str:
    """Map typographic/LaTeX operators to ASCII and whitespace to spaces (the fast path skips pure ASCII)."""
    if "\\" in expr or not expr.isascii():
        for old, new in _SYMBOLS:
            if old in expr:
                expr = expr.replace(old, new)
    return expr.translate(_WHITESPACE).strip()


def _walk(node: ast.AST, literals: list[int]) -> Fraction | None:
    """Evaluate a whitelisted tree exactly; None means "undefined" (a division by zero somewhere below)."""
    if isinstance(node, ast.BinOp):
        op = type(node.op)
        if op not in _OP_NAMES:
            raise _Reject(f"disallowed syntax: {op.__name__}")
        left = _walk(node.left, literals)
        right = _walk(node.right, literals)
        if left is None or right is None:
            return None
        if op is ast.Add:
            return left + right
        if op is ast.Sub:
            return left - right
        if op is ast.Mult:
            return left * right
        if right == 0:
            return None
        return left / right
    if isinstance(node, ast.Constant):
        value = node.value
        if type(value) is not int:  # bool is a subclass of int; floats/complex/str are not numbers here
            raise _Reject(f"disallowed literal: {type(value).__name__}")
        literals.append(value)
        return Fraction(value)
    if isinstance(node, ast.UnaryOp):
        if type(node.op) is ast.USub:
            operand = _walk(node.operand, literals)
            return None if operand is None else -operand
        kind = {ast.UAdd: "unary plus"}.get(type(node.op), type(node.op).__name__)
        raise _Reject(f"disallowed syntax: {kind}")
    raise _Reject(f"disallowed syntax: {type(node).__name__}")


def _evaluate(expr: str) -> tuple[str | None, tuple[int, ...], Fraction | None]:
    """``(error, literals, value)`` of a normalised expression; ``value`` None with no error = division by zero.

    Over-long expressions are rejected *before* the cache, so its keys are at most ``MAX_EXPR_CHARS`` characters
    (32,768 entries: a few MB at most, whatever the model writes).
    """
    if len(expr) > MAX_EXPR_CHARS:
        return f"answer too long ({len(expr)} chars)", (), None
    return _evaluate_cached(expr)


@lru_cache(maxsize=32_768)
def _evaluate_cached(expr: str) -> tuple[str | None, tuple[int, ...], Fraction | None]:
    """``_evaluate`` of an expression of at most ``MAX_EXPR_CHARS`` characters (a GRPO group repeats answers)."""
    if not expr:
        return "empty answer", (), None
    bad = set(expr) - _ALLOWED_CHARS
    if bad:
        return f"disallowed character {min(bad)!r}", (), None
    try:
        tree = ast.parse(expr, mode="eval")
        literals: list[int] = []
        value = _walk(tree.body, literals)
    except _Reject as exc:
        return str(exc), (), None
    except (SyntaxError, ValueError):  # ValueError: e.g. null bytes / over-long literals, all excluded above anyway
        return "not a valid arithmetic expression", (), None
    except (RecursionError, MemoryError):
        return "expression too deeply nested", (), None
    return None, tuple(literals), value


def _fmt_value(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _usage_problems(literals: tuple[int, ...], nums: list[int]) -> str | None:
    """None when ``literals`` and ``nums`` are the same multiset, else a short description of the difference."""
    used, given = Counter(literals), Counter(nums)
    if used == given:
        return None
    problems = []
    for value, count in used.items():
        have = given.get(value, 0)
        if have == 0:
            problems.append(f"uses {value}, which is not one of the numbers")
        elif count > have:
            problems.append(
                f"uses {value} twice" if (count, have) == (2, 1) else f"uses {value} {count} times (given {have})"
            )
    missing = sorted((given - used).elements())
    if missing:
        problems.append(f"missing number{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))}")
    return "; ".join(problems)


def _split_stated_result(expr: str, target: int) -> tuple[str, str | None]:
    """Strip a single ``= <int>`` (or leading ``<int> =``); the stated number must be the target."""
    if "=" not in expr:
        return expr, None
    parts = expr.split("=")
    if len(parts) != 2:
        return expr, "more than one '='"
    lhs, rhs = parts[0].strip(), parts[1].strip()
    if rhs.isascii() and rhs.isdigit():
        stated, expr = rhs, lhs
    elif lhs.isascii() and lhs.isdigit():
        stated, expr = lhs, rhs
    else:
        return expr, "'=' must be followed by the target number"
    if int(stated) != target:
        return expr, f"states the result is {int(stated)}, but the target is {target}"
    return expr, None


def check_expression(expr: str, nums: list[int], target: int) -> Verdict:
    """Judge one answer string (the content of the answer tag) against validated ``nums`` and ``target``."""
    if len(expr) > MAX_EXPR_CHARS * 4:  # before normalising: don't even copy a huge string around
        return Verdict(False, f"answer too long ({len(expr)} chars)")
    expr = normalize_expression(expr)
    expr, problem = _split_stated_result(expr, target)
    if problem:
        return Verdict(False, problem)
    error, literals, value = _evaluate(expr)
    if error:
        return Verdict(False, error)
    problem = _usage_problems(literals, nums)
    if problem:
        return Verdict(False, problem)
    if value is None:
        return Verdict(False, "division by zero")
    if value != target:
        return Verdict(False, f"evaluates to {_fmt_value(value)}, not {target}")
    return Verdict(True, "correct")


def _example_parts(example: Any) -> tuple[list[int], int]:
    """Validated ``(nums, target)`` of an example; raises ``TaskDataError`` with a readable reason."""
    if not isinstance(example, dict):
        raise TaskDataError(f"example is a {type(example).__name__}, not a dict")
    nums, target = example.get("nums"), example.get("target")
    # Fast path for the common case (plain Python ints, as every loader yields): the ABC checks below cost ~25% of
    # a verification (bool is excluded: type(True) is bool, not int).
    if type(nums) is list and nums and type(target) is int and all(type(x) is int and x >= 0 for x in nums):
        return nums, target
    if hasattr(nums, "tolist") and not isinstance(nums, (list, tuple)):  # numpy arrays from formatted datasets
        nums = nums.tolist()
    if not isinstance(nums, (list, tuple)) or not nums:
        raise TaskDataError(f"nums must be a non-empty list of integers, got {nums!r:.60}")
    if any(not isinstance(x, Integral) or isinstance(x, bool) or x < 0 for x in nums):
        raise TaskDataError(f"nums must be non-negative integers, got {list(nums)!r:.60}")
    if not isinstance(target, Integral) or isinstance(target, bool):
        raise TaskDataError(f"target must be an integer, got {target!r:.60}")
    return [int(x) for x in nums], int(target)


# ----------------------------------------------------------------------------------------------------------------
# Expression trees: solver and generator
# ----------------------------------------------------------------------------------------------------------------
# A tree is an int leaf or (op, left, right).
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


def _format_tree(tree: Any) -> tuple[str, int]:
    """Minimal-parenthesis rendering; re-association it allows (a + (b - c) → a + b - c) is exact over rationals."""
    if isinstance(tree, int):
        return str(tree), 3
    op, left, right = tree
    ls, lp = _format_tree(left)
    rs, rp = _format_tree(right)
    prec = _PREC[op]
    if op in "*/" and lp == 1:
        ls = f"({ls})"
    if (op == "-" and rp == 1) or (op == "*" and rp == 1) or (op == "/" and rp <= 2):
        rs = f"({rs})"
    return f"{ls} {op} {rs}", prec


def format_tree(tree: Any) -> str:
    return _format_tree(tree)[0]


def _combine(a: Fraction, b: Fraction):
    """All values of ``a op b`` and ``b op a`` (each unordered pair once for + and *)."""
    yield a + b, "+", False
    yield a * b, "*", False
    yield a - b, "-", False
    yield b - a, "-", True
    if b != 0:
        yield a / b, "/", False
    if a != 0:
        yield b / a, "/", True


def solve(nums: list[int], target: int) -> str | None:
    """An expression using every number of ``nums`` once that equals ``target`` exactly, or None if there is none.

    Exhaustive dynamic programming over subsets of the numbers (every expression tree splits its numbers into two
    disjoint subsets at the root), keeping one expression per reachable value; the last step inverts the operation
    to look the target up instead of enumerating it. Four numbers take a couple of milliseconds.
    """
    values = [int(x) for x in nums]
    k = len(values)
    if k == 0 or k > MAX_SOLVE_NUMS:
        raise ValueError(f"solve supports 1 to {MAX_SOLVE_NUMS} numbers, got {k}")
    goal = Fraction(int(target))
    full = (1 << k) - 1
    table: dict[int, dict[Fraction, Any]] = {1 << i: {Fraction(v): v} for i, v in enumerate(values)}
    if k == 1:
        return str(values[0]) if values[0] == goal else None
    for mask in range(1, full):  # every proper sub-mask is numerically smaller, so it is filled in first
        if mask in table:
            continue
        reach: dict[Fraction, Any] = {}
        low = mask & -mask
        sub = (mask - 1) & mask
        while sub:
            if sub & low:
                for a, ta in table[sub].items():
                    for b, tb in table[mask ^ sub].items():
                        for value, op, swap in _combine(a, b):
                            if value not in reach:
                                reach[value] = (op, tb, ta) if swap else (op, ta, tb)
            sub = (sub - 1) & mask
        table[mask] = reach
    low = full & -full
    sub = (full - 1) & full
    while sub:
        if sub & low:
            found = _find_root(table[sub], table[full ^ sub], goal)
            if found is not None:
                return format_tree(found)
        sub = (sub - 1) & full
    return None


def _find_root(left: dict[Fraction, Any], right: dict[Fraction, Any], goal: Fraction) -> Any:
    """A tree ``a op b`` (or ``b op a``) equal to ``goal`` with a from ``left`` and b from ``right``, or None."""
    for a, ta in left.items():
        if a == 0 or goal == 0:  # inverses would divide by zero: enumerate this (rare) case
            for b, tb in right.items():
                for value, op, swap in _combine(a, b):
                    if value == goal:
                        return (op, tb, ta) if swap else (op, ta, tb)
            continue
        for need, op, swap in (
            (goal - a, "+", False),
            (a - goal, "-", False),
            (a + goal, "-", True),
            (goal / a, "*", False),
            (a / goal, "/", False),
            (a * goal, "/", True),
        ):
            tb = right.get(need)
            if tb is not None and not (op == "/" and need == 0):
                return (op, tb, ta) if swap else (op, ta, tb)
    return None


#: The operators a plausible mistake swaps each operator for.
_OTHER_OPS = {"+": "-*", "-": "+*", "*": "+-", "/": "*-"}


def _split_seed(seed: int, split: str) -> int:
    """A 64-bit RNG seed from ``(seed, split)`` that is stable across processes (unlike ``hash()``)."""
    digest = hashlib.sha256(f"rrr-countdown:{int(seed)}:{split}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _instance_bucket(nums: list[int]) -> int:
    """Stable bucket 0..99 of a multiset of numbers (independent of their order)."""
    return zlib.crc32(repr(sorted(nums)).encode()) % 100


def _canonical_split(split: str) -> str:
    return _SPLIT_ALIASES.get(str(split).lower(), "train")


def _worked_steps(expr: str) -> list[str]:
    """``["3 + 5 = 8", "8 * 2 = 16"]``: the binary operations of a valid expression in evaluation order."""
    steps: list[str] = []

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant):
            return Fraction(node.value)
        assert isinstance(node, ast.BinOp)
        left, right = walk(node.left), walk(node.right)
        op = _OP_NAMES[type(node.op)]
        value = {"+": left + right, "-": left - right, "*": left * right, "/": left / right}[op]
        shown = [f"({_fmt_value(v)})" if v < 0 or v.denominator != 1 else _fmt_value(v) for v in (left, right)]
        steps.append(f"{shown[0]} {op} {shown[1]} = {_fmt_value(value)}")
        return value

    try:
        walk(ast.parse(normalize_expression(expr), mode="eval").body)
    except (SyntaxError, AssertionError, ZeroDivisionError, KeyError, ValueError, TypeError):
        return []
    return steps


# ----------------------------------------------------------------------------------------------------------------
# Leak detection helpers
# ----------------------------------------------------------------------------------------------------------------
def _tokenize(text: str) -> list[tuple[str, str]]:
    """Tokens ``(kind, text)``: kind ``n`` number, ``o`` operator, ``(``/``)``, ``=``, ``|`` anything else (a break)."""
    tokens: list[tuple[str, str]] = []
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastindex
        if kind == 1:
            tokens.append(("n", m.group()))
        elif kind == 2:
            tokens.append(("o", m.group()))
        elif kind == 3:
            tokens.append((m.group(), m.group()))
        elif kind == 4:
            tokens.append(("=", "="))
        elif kind == 6 and (not tokens or tokens[-1][0] != "|"):
            tokens.append(("|", ""))
    return tokens


def _expression_value(tokens: list[tuple[str, str]]) -> tuple[tuple[int, ...], Fraction] | None:
    error, literals, value = _evaluate(" ".join(t for _, t in tokens))
    if error or value is None:
        return None
    return literals, value


def _contains_solution(tokens: list[tuple[str, str]], nums: list[int], target: int) -> bool:
    """Does a run of tokens (no breaks, no '=') contain a sub-expression using exactly ``nums`` that equals target?"""
    k = len(nums)
    positions = [i for i, (kind, _) in enumerate(tokens) if kind == "n"]
    wanted = sorted(nums)
    for w in range(len(positions) - k + 1):
        first, last = positions[w], positions[w + k - 1]
        if last - first > MAX_EXPR_CHARS // 2:  # joined with spaces it is over MAX_EXPR_CHARS: never an answer
            continue
        if sorted(int(tokens[p][1]) for p in positions[w : w + k]) != wanted:
            continue
        starts = [first]
        while starts[-1] > 0 and len(starts) < 12:  # widen over "(" and unary minus ("-" after "(", an op or nothing)
            prev = starts[-1] - 1
            if tokens[prev][0] != "(" and not (
                tokens[prev] == ("o", "-") and (prev == 0 or tokens[prev - 1][0] in ("(", "o"))
            ):
                break
            starts.append(prev)
        ends = [last]
        while ends[-1] + 1 < len(tokens) and tokens[ends[-1] + 1][0] == ")" and len(ends) < 12:
            ends.append(ends[-1] + 1)
        for s in starts:
            for e in ends:
                result = _expression_value(tokens[s : e + 1])
                if result is not None and result[1] == target:
                    return True
    return False


def _steps(tokens: list[tuple[str, str]], k: int) -> list[tuple[Counter, int]]:
    """Correct equations ``<expr> = <int>`` in a run: (multiset of operands, stated result)."""
    steps: list[tuple[Counter, int]] = []
    seg_start = 0
    for t, (kind, _) in enumerate(tokens):
        if kind != "=":
            continue
        if t + 1 < len(tokens) and tokens[t + 1][0] == "n":
            result = int(tokens[t + 1][1])
            numbers = 0
            chars = 0
            for s in range(t - 1, seg_start - 1, -1):
                # Bounded look-back: a longer left-hand side would be rejected as too long anyway, and without the
                # bound "((((...1+1=2" evaluated thousands of ever longer prefixes (quadratic: 1 s on 4 kB).
                chars += len(tokens[s][1]) + 1
                if chars > MAX_EXPR_CHARS + 1:
                    break
                if tokens[s][0] == "n":
                    numbers += 1
                    if numbers > k:
                        break
                if tokens[s][0] in ("n", "(") and numbers >= 2:
                    found = _expression_value(tokens[s:t])
                    if found is not None and found[1] == result:
                        steps.append((Counter(found[0]), result))
                        if len(steps) >= 64:
                            return steps
        seg_start = t + 1
    return steps


def _chain_reaches(nums: list[int], target: int, steps: list[tuple[Counter, int]]) -> bool:
    """Can the stated steps turn exactly ``nums`` into ``target`` (e.g. "3+5=8, then 8*2=16")?"""
    if not steps:
        return False
    seen: set[tuple[int, ...]] = set()
    stack = [Counter(nums)]
    while stack:
        state = stack.pop()
        key = tuple(sorted(state.elements()))
        if key in seen:
            continue
        seen.add(key)
        if key == (target,) and len(nums) > 1:
            return True
        if len(seen) > 10_000:
            return False
        for operands, result in steps:
            if not operands - state:  # all operands available
                nxt = state - operands
                nxt[result] += 1
                stack.append(nxt)
    return False


# ----------------------------------------------------------------------------------------------------------------
# The task
# ----------------------------------------------------------------------------------------------------------------
class CountdownTask(Task):
    """Countdown (TinyZero): reach ``target`` from ``nums`` with + - * /, each number exactly once.

    Constructor options (``get_task("countdown", max_target=100)``) shape only the generator.
    """

    name: ClassVar[str] = "countdown"
    required_columns: ClassVar[tuple[str, ...]] = ("nums", "target")
    default_source: ClassVar[str] = "Jiayi-Pan/Countdown-Tasks-3to4"
    #: Hub datasets that publish a single ``train`` split, which ``Task.load`` carves by position: ``test`` = the last
    #: ``HUB_TEST_ROWS`` (2,000) rows, ``validation`` = the ``HUB_VALIDATION_ROWS`` (500) before them, ``train`` = all
    #: earlier rows (for ``Jiayi-Pan/Countdown-Tasks-3to4``, ~490k rows).
    single_split_sources: ClassVar[tuple[str, ...]] = ("Jiayi-Pan/Countdown-Tasks-3to4",)
    held_out_splits: ClassVar[dict[str, int]] = {"test": HUB_TEST_ROWS, "validation": HUB_VALIDATION_ROWS}
    split_aliases: ClassVar[dict[str, str]] = _SPLIT_ALIASES
    initial_strategy: ClassVar[str | None] = (
        "1. Try combinations of the numbers with + - * / until one reaches the target.\n"
        "2. Use each number exactly once."
    )
    oracle_procedure: ClassVar[str | None] = (
        "1. Combine two of the remaining values at a time with + - * /, writing each step as a = b op c.\n"
        "2. Aim for a value close to the target (multiply to get near it, then add or subtract what is left; divide "
        "only when it comes out exact).\n"
        "3. Track which numbers are used: each given number exactly once, none twice, none left out.\n"
        "4. Check that the final expression evaluates exactly to the target before answering."
    )
    reflection_instruction: ClassVar[str] = (
        "Your equation was wrong. In a few sentences, say what went wrong — a number used twice or left out, "
        "an arithmetic mistake, or a result that missed the target — and how to do better next time. "
        "Do not write the final equation."
    )
    retry_instruction: ClassVar[str] = (
        "Using your reflection, try again: use each number exactly once to make the target, and give the final "
        "equation in <answer></answer> tags."
    )

    def __init__(self, *, min_nums: int = 3, max_nums: int = 4, max_number: int = 99, max_target: int = 999):
        if not 2 <= min_nums <= max_nums <= MAX_SOLVE_NUMS:
            raise ValueError(f"need 2 <= min_nums <= max_nums <= {MAX_SOLVE_NUMS}, got {min_nums}, {max_nums}")
        if max_number < 1 or max_target < 1:
            raise ValueError(f"max_number and max_target must be >= 1, got {max_number}, {max_target}")
        self.min_nums, self.max_nums = int(min_nums), int(max_nums)
        self.max_number, self.max_target = int(max_number), int(max_target)

    def row_problem(self, example: Example) -> str | None:
        """A row without a non-empty list of non-negative integer ``nums`` and an integer ``target``."""
        try:
            _example_parts(example)
        except TaskDataError as exc:
            return str(exc)
        return None

    # -------------------------------------------------------------------------------------------------- prompts
    def attempt_prompt(self, example: Example) -> str:
        nums, target = _example_parts(example)
        return (
            f"Using the numbers {nums}, create an equation that equals {target}. You may use +, -, *, / and "
            "parentheses, and must use each number exactly once. Reason briefly, then give the final equation in "
            "<answer></answer> tags, for example <answer>(1 + 2) / 3</answer>."
        )

    # ------------------------------------------------------------------------------------------- verification
    def verify(self, example: Example, completion: str) -> Verdict:
        """Binary verdict on the last ``<answer>``; never raises, never executes the answer."""
        try:
            try:
                nums, target = _example_parts(example)
            except TaskDataError as exc:
                return Verdict(False, f"malformed example: {exc}")
            if not isinstance(completion, str):
                return Verdict(False, f"completion is not a string ({type(completion).__name__})")
            answer = last_answer(completion)
            if answer is None:
                return Verdict(False, "no <answer> tag")
            return check_expression(answer, nums, target)
        except Exception as exc:  # defence in depth: a verifier bug must cost one reward, not a training run
            return Verdict(False, f"verifier error: {type(exc).__name__}", error=type(exc).__name__)

    def leaks_answer(self, example: Example, reflection: str) -> bool:
        """True when the reflection contains a correct solution: in answer tags, as a bare expression in the prose
        ("I should have written (3+5)*2"), or as a chain of correct steps ("3+5=8, then 8*2=16") that uses every
        number once and ends at the target. Only the first ``MAX_LEAK_SCAN_CHARS`` characters are scanned."""
        try:
            if not isinstance(reflection, str):
                return False
            nums, target = _example_parts(example)
            if self.verify(example, reflection).passed:
                return True
            tokens = _tokenize(normalize_expression(reflection[:MAX_LEAK_SCAN_CHARS]))
            run: list[tuple[str, str]] = []
            runs: list[list[tuple[str, str]]] = []
            for tok in [*tokens, ("|", "")]:
                if tok[0] == "|":
                    if run:
                        runs.append(run)
                    run = []
                else:
                    run.append(tok)
            steps: list[tuple[Counter, int]] = []
            for run in runs:
                segment: list[tuple[str, str]] = []
                for tok in [*run, ("=", "=")]:
                    if tok[0] == "=":
                        if _contains_solution(segment, nums, target):
                            return True
                        segment = []
                    else:
                        segment.append(tok)
                if len(steps) < 64:
                    steps.extend(_steps(run, len(nums)))
            return _chain_reaches(nums, target, steps[:64])
        except Exception:
            return False

    def reference_answer(self, example: Example) -> str | None:
        """The example's ``solution`` column when it verifies, else one found by ``solve``; None if unsolvable."""
        try:
            nums, target = _example_parts(example)
        except TaskDataError:
            return None
        solution = example.get("solution")
        if isinstance(solution, str) and solution:
            candidate = f"<answer>{solution}</answer>"
            if self.verify(example, candidate).passed:
                return candidate
        try:
            expr = solve(nums, target)
        except ValueError:
            return None
        return None if expr is None else f"<answer>{expr}</answer>"

    def worked_solution(self, example: Example) -> str | None:
        """The reference equation built up one operation at a time, then the answer (the oracle's curriculum).

        E.g. for ``nums=[3, 5, 2], target=16``: ``3 + 5 = 8`` / ``8 * 2 = 16`` / a check that every number was used
        once / ``<answer>(3 + 5) * 2</answer>``. Teaching the steps, not just the final expression, is what lets a
        student learn the search rather than memorise answers. None when the instance has no solution.
        """
        answer = self.reference_answer(example)
        if answer is None:
            return None
        expr = last_answer(answer) or ""
        steps = _worked_steps(expr)
        if not steps:  # a single number: nothing to combine
            return answer
        nums, target = _example_parts(example)
        lines = [f"I need {target} from {nums}, using each number exactly once. Combining two values at a time:"]
        lines += steps
        lines.append(f"That reaches {target} and uses every number once.")
        lines.append(answer)
        return "\n".join(lines)

    # ----------------------------------------------------------------------------------------------------- data
    def generate(self, n: int, seed: int = 0, split: str = "train") -> list[Example]:
        """``n`` solvable instances with a reference ``solution``, deterministic per ``(seed, split)``.

        Each instance draws 3–4 numbers, combines them in a random expression tree with exact rational arithmetic and
        keeps it when the value is an integer in ``1..max_target``. The space of number multisets is partitioned by a
        stable hash of the sorted numbers (test 10%, validation 10%, train 80%), so a generated test instance never
        shares its numbers with any generated train instance, whatever the seeds; any other split name draws from the
        train part of the space.
        """
        if not isinstance(n, int) or n < 0:
            raise TaskDataError(f"n must be a non-negative integer, got {n!r}")
        canonical = _canonical_split(split)
        buckets = _GEN_BUCKETS[canonical]
        rng = random.Random(_split_seed(seed, str(split)))
        rows: list[Example] = []
        while len(rows) < n:
            k = rng.randint(self.min_nums, self.max_nums)
            nums = [rng.randint(1, self.max_number) for _ in range(k)]
            if _instance_bucket(nums) not in buckets:  # cheap rejection before any arithmetic
                continue
            items: list[tuple[Fraction, Any]] = [(Fraction(x), x) for x in nums]
            while len(items) > 1:
                i, j = rng.sample(range(len(items)), 2)
                (a, ta), (b, tb) = items[i], items[j]
                op = rng.choice("+-*/")
                if op == "+":
                    value = a + b
                elif op == "-":
                    value = a - b
                elif op == "*":
                    value = a * b
                elif b:
                    value = a / b
                else:
                    break  # division by zero: draw a new instance
                items = [item for idx, item in enumerate(items) if idx != i and idx != j]
                items.append((value, (op, ta, tb)))
            if len(items) != 1:
                continue
            value, tree = items[0]
            if value.denominator != 1 or not 1 <= value <= self.max_target:
                continue
            rows.append(
                {
                    "nums": nums,
                    "target": int(value),
                    "solution": format_tree(tree),
                    "id": f"countdown-{split}-{seed}-{len(rows)}",
                }
            )
        return rows

    # ------------------------------------------------------------------------------------------------------------
    # Teaching (the oracle teacher) and benchmark fixtures
    # ------------------------------------------------------------------------------------------------------------
    def oracle_reflections(self, example: Example, attempt: str, verdict: Verdict) -> list[str]:
        """The verifier's reason, the rule (each number once, exactly the target) and, when the solver finds one,
        a useful first step of a solution (a sub-result, not the equation)."""
        nums, target = example.get("nums"), example.get("target")
        reference = self.reference_answer(example)
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

    def plausible_mistakes(self, example: Example) -> list[str]:
        """The solver's equation with one operator swapped, then the classic slip: a number used twice (the last
        literal replaced by the first)."""
        reference = self.reference_answer(example)
        expr = last_answer(reference) if reference else None
        if not expr:
            return []
        out = []
        for m in re.finditer(r" ([-+*/]) ", expr):
            for other in _OTHER_OPS[m.group(1)]:
                out.append(f"<answer>{expr[: m.start(1)]}{other}{expr[m.end(1) :]}</answer>")
        numbers = list(re.finditer(r"\d+", expr))
        if numbers:
            first, last = numbers[0], numbers[-1]
            out.append(f"<answer>{expr[: last.start()]}{first.group()}{expr[last.end() :]}</answer>")
        return out

    def bench_reasoning(self, example: Example) -> tuple[str, ...]:
        nums, target = example["nums"], example["target"]
        return (
            f"Let me look at the numbers {nums} and the target {target}. Multiplying the two largest overshoots, "
            "so I combine them differently and adjust with the rest, using each number exactly once.",
            f"I need to reach {target} using {nums}, each exactly once. Adding everything gives {sum(nums)}, which "
            "is not the target, so some numbers must be multiplied or subtracted. After a few tries:",
            f"Target {target}, numbers {nums}. I build most of the target from one product first and correct the "
            "difference with the remaining numbers, checking the arithmetic step by step.",
        )

    def bench_wrong_answers(self, example: Example, reference: str) -> list[str]:
        """The first or last number of the reference changed by one, then every operator swapped."""
        expr = last_answer(reference) or ""
        literals = list(re.finditer(r"\d+", expr))
        out = []
        for match in (literals[0], literals[-1]) if literals else ():
            changed = expr[: match.start()] + str(int(match.group()) + 1) + expr[match.end() :]
            out.append(f"<answer>{changed}</answer>")
        swapped = expr.translate(str.maketrans("+-*/", "-+/*"))
        out.append(f"<answer>{swapped}</answer>")
        return out

    def bench_lesson(self, example: Example, reference: str) -> str:
        nums, target = example["nums"], example["target"]
        return (
            f"I used {nums[0]} twice and left out {nums[-1]}, so the equation could not be right. Next time I will "
            f"tick off each number as I use it and re-check the result against {target} before answering."
        )

    def bench_leak(self, example: Example, reference: str) -> str:
        content = last_answer(reference) or ""
        return f"I should have written {content} instead, since that uses every number exactly once."

    def prepare(self, ds):
        """Decode ``nums`` stored as a JSON string (CSV files) and integer-valued string/float targets."""
        import datasets

        features = ds.features
        nums_feature, target_feature = features.get("nums"), features.get("target")
        nums_is_text = isinstance(nums_feature, datasets.Value) and nums_feature.dtype in ("string", "large_string")
        target_not_int = isinstance(target_feature, datasets.Value) and not target_feature.dtype.startswith("int")
        if not (nums_is_text or target_not_int):
            return ds

        def fix(row: dict) -> dict:
            nums, target = row["nums"], row["target"]
            try:
                if isinstance(nums, str):
                    nums = json.loads(nums)
                if isinstance(target, str):
                    target = int(target.strip())
                elif isinstance(target, float) and target.is_integer():
                    target = int(target)
            except (ValueError, TypeError) as exc:
                if self.on_bad_row == "skip":  # left for row_problem to count
                    return {"nums": None, "target": None}
                raise TaskDataError(
                    f"cannot decode nums/target {row['nums']!r:.60}, {row['target']!r:.60}: {exc}"
                ) from None
            return {"nums": nums, "target": target}

        try:
            return ds.map(fix)
        except TaskDataError:
            raise
        except Exception as exc:
            raise TaskDataError(f"cannot normalise countdown columns: {type(exc).__name__}: {exc}") from None
