"""Countdown task: generator, exact safe verifier, solver, leak detection and data loading."""

from __future__ import annotations

import json
import re
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrr.tasks import TaskDataError, Verdict, get_task
from rrr.tasks.countdown import HUB_TEST_ROWS, HUB_VALIDATION_ROWS, CountdownTask, solve

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EX = {"nums": [3, 5, 2], "target": 16}


@pytest.fixture(scope="module")
def task() -> CountdownTask:
    return CountdownTask()


def oracle(expr: str) -> Fraction | None:
    """Independent exact evaluator for test-built expressions (digits, + - * /, parentheses only)."""
    assert re.fullmatch(r"[\d+\-*/() ]*", expr) and "**" not in expr and "//" not in expr
    try:
        return eval(re.sub(r"\d+", lambda m: f"F({m.group()})", expr), {"F": Fraction, "__builtins__": {}})
    except ZeroDivisionError:
        return None


def tagged(expr: str) -> str:
    return f"Let me think step by step. <answer>{expr}</answer>"


@st.composite
def expressions(draw, nums: list[int]) -> str:
    """A random fully parenthesised expression using each of ``nums`` once, in a random order."""
    items = [str(x) for x in draw(st.permutations(nums))]
    while len(items) > 1:
        i = draw(st.integers(0, len(items) - 2))
        op = draw(st.sampled_from("+-*/"))
        items[i : i + 2] = [f"({items[i]} {op} {items[i + 1]})"]
    return items[0]


@st.composite
def instances(draw) -> tuple[list[int], str, Fraction]:
    nums = draw(st.lists(st.integers(1, 30), min_size=3, max_size=4))
    expr = draw(expressions(nums))
    value = oracle(expr)
    return nums, expr, value


# ------------------------------------------------------------------------------------------------------- registry
def test_get_task_returns_countdown():
    task = get_task("countdown")
    assert isinstance(task, CountdownTask)
    assert task.name == "countdown"
    assert task.required_columns == ("nums", "target")
    assert task.default_source == "Jiayi-Pan/Countdown-Tasks-3to4"
    assert isinstance(get_task("countdown", max_target=100), CountdownTask)
    with pytest.raises(ValueError):
        get_task("countdown", min_nums=5, max_nums=3)


# ------------------------------------------------------------------------------------------------------ generator
@FAST
@given(seed=st.integers(0, 2**40), split=st.sampled_from(["train", "test", "validation", "other"]))
def test_generated_solutions_pass(task, seed, split):
    rows = task.generate(15, seed=seed, split=split)
    assert len(rows) == 15
    assert len({r["id"] for r in rows}) == 15
    for row in rows:
        assert 3 <= len(row["nums"]) <= 4
        assert all(type(x) is int and 1 <= x <= 99 for x in row["nums"])
        assert type(row["target"]) is int and 1 <= row["target"] <= 999
        assert oracle(row["solution"]) == row["target"]
        assert sorted(map(int, re.findall(r"\d+", row["solution"]))) == sorted(row["nums"])
        verdict = task.verify(row, tagged(row["solution"]))
        assert verdict.passed, (row, verdict)
        assert task.reference_answer(row) == f"<answer>{row['solution']}</answer>"


def test_generator_deterministic_and_splits_differ(task):
    assert task.generate(50, seed=7, split="train") == task.generate(50, seed=7, split="train")
    assert task.generate(50, seed=7, split="train") != task.generate(50, seed=8, split="train")
    train = task.generate(400, seed=7, split="train")
    test = task.generate(400, seed=7, split="test")
    validation = task.generate(400, seed=7, split="validation")
    key = lambda r: tuple(sorted(r["nums"]))  # noqa: E731
    assert not {key(r) for r in train} & {key(r) for r in test}
    assert not {key(r) for r in train} & {key(r) for r in validation}
    assert not {key(r) for r in test} & {key(r) for r in validation}
    assert task.generate(0) == []
    with pytest.raises(TaskDataError):
        task.generate(-1)


def test_generator_options():
    small = CountdownTask(min_nums=4, max_nums=4, max_number=10, max_target=50)
    for row in small.generate(100, seed=1):
        assert len(row["nums"]) == 4 and max(row["nums"]) <= 10 and 1 <= row["target"] <= 50
        assert small.verify(row, tagged(row["solution"])).passed


# --------------------------------------------------------------------------------------------------- verification
@FAST
@given(inst=instances())
def test_random_expressions_match_exact_oracle(task, inst):
    nums, expr, value = inst
    if value is None:
        verdict = task.verify({"nums": nums, "target": 1}, tagged(expr))
        assert not verdict.passed and verdict.reason == "division by zero"
        return
    if value.denominator == 1:
        assert task.verify({"nums": nums, "target": int(value)}, tagged(expr)).passed
    verdict = task.verify({"nums": nums, "target": int(value) + 1}, tagged(expr))
    assert not verdict.passed and verdict.reason.startswith("evaluates to")


@FAST
@given(data=st.data())
def test_mutated_solutions_fail(task, data):
    nums = data.draw(st.lists(st.integers(1, 30), min_size=3, max_size=4))
    expr = data.draw(expressions(nums))
    value = oracle(expr)
    if value is None or value.denominator != 1:
        return
    example = {"nums": nums, "target": int(value)}
    assert task.verify(example, tagged(expr)).passed

    # change one literal
    literals = list(re.finditer(r"\d+", expr))
    m = literals[data.draw(st.integers(0, len(literals) - 1))]
    changed = expr[: m.start()] + str(int(m.group()) + 100) + expr[m.end() :]
    verdict = task.verify(example, tagged(changed))
    assert not verdict.passed and "not one of the numbers" in verdict.reason

    # drop a number / duplicate a number
    dropped = data.draw(expressions(nums[1:]))
    verdict = task.verify(example, tagged(dropped))
    assert not verdict.passed and "missing number" in verdict.reason
    duplicated = data.draw(expressions([*nums, nums[0]]))
    verdict = task.verify(example, tagged(duplicated))
    assert not verdict.passed and f"uses {nums[0]}" in verdict.reason

    # swap one operator, only when that changes the value
    ops = [i for i, c in enumerate(expr) if c in "+-*/"]
    i = ops[data.draw(st.integers(0, len(ops) - 1))]
    new_op = data.draw(st.sampled_from([o for o in "+-*/" if o != expr[i]]))
    swapped = expr[:i] + new_op + expr[i + 1 :]
    new_value = oracle(swapped)
    if new_value != value:
        verdict = task.verify(example, tagged(swapped))
        assert not verdict.passed
        assert verdict.reason.startswith("evaluates to") or verdict.reason == "division by zero"


def test_reasons(task):
    cases = {
        "no answer here": "no <answer> tag",
        "<answer></answer>": "empty answer",
        "<answer>(3 + 5) * 3</answer>": "uses 3 twice; missing number 2",
        "<answer>(3 + 5) * 2 * 7</answer>": "uses 7, which is not one of the numbers",
        "<answer>3 + 5 * 2</answer>": "evaluates to 13, not 16",
        "<answer>3 / 2 + 5</answer>": "evaluates to 13/2, not 16",
        "<answer>3 / (5 - 5)</answer>": "uses 5 twice; missing number 2",
        "<answer>3 ** 5 * 2</answer>": "disallowed syntax: Pow",
        "<answer>-3 + 5 * 2</answer>": "evaluates to 7, not 16",
        "<answer>+3 + 5 * 2</answer>": "disallowed syntax: unary plus",
        "<answer>-(3 + 5) * 2</answer>": "evaluates to -16, not 16",
        "<answer>(3 + 5) * 2 = 15</answer>": "states the result is 15, but the target is 16",
    }
    for completion, reason in cases.items():
        assert task.verify(EX, completion) == Verdict(False, reason), completion
    assert task.verify({"nums": [3, 5, 0], "target": 1}, "<answer>3 / 0 + 5</answer>").reason == "division by zero"


def test_accepted_forms(task):
    for expr in [
        "(3 + 5) * 2",
        "(3+5)*2",
        " 2 * ( 5 + 3 ) ",
        "(3 + 5) * 2 = 16",
        "16 = (3 + 5) * 2",
        "(3 + 5) × 2",
        "(3 + 5) \\times 2",
        "2 \\cdot (3 + 5)",
        "((((3 + 5))) * 2)",
        "(3 + 5)\n* 2",
        "(" * 60 + "3 + 5" + ")" * 60 + " * 2",
        "(5 - -3) * 2",
        "-(-3 - 5) * 2",
        "2 * -(-5 - 3)",
    ]:
        assert task.verify(EX, tagged(expr)).passed, expr
    assert task.verify({"nums": [8, 2, 3], "target": 12}, tagged("8 ÷ 2 × 3")).passed
    assert task.verify({"nums": [8, 2, 3], "target": 1}, tagged("8 − 2 − 3")) == Verdict(False, "evaluates to 3, not 1")
    assert not task.verify(EX, tagged("(3 + 5) * 2 == 16")).passed
    assert not task.verify(EX, tagged("(3 + 5) = 8 * 2")).passed


def test_exact_rational_arithmetic(task):
    assert task.verify({"nums": [1, 3, 3], "target": 1}, tagged("(1 / 3) * 3")).passed
    assert task.verify({"nums": [1, 3, 3], "target": 1}, tagged("1 / 3 * 3")).passed
    assert task.verify({"nums": [7, 3, 3], "target": 7}, tagged("7 / 3 * 3")).passed
    assert task.verify({"nums": [1, 5, 5, 1], "target": 24}, tagged("5 * (5 - 1 / 5)")).passed is False  # uses 5 x3
    assert task.verify({"nums": [1, 5, 5, 5], "target": 24}, tagged("5 * (5 - 1 / 5)")).passed
    # within TinyZero's 1e-5 float tolerance, but not exact
    near = task.verify({"nums": [1000000, 1000001], "target": 1}, tagged("1000001 / 1000000"))
    assert not near.passed and near.reason == "evaluates to 1000001/1000000, not 1"
    near = task.verify({"nums": [3, 100000, 300001], "target": 1}, tagged("300001 / 100000 / 3"))
    assert not near.passed


def test_last_answer_is_judged(task):
    good, bad = "<answer>(3 + 5) * 2</answer>", "<answer>3 + 5 + 2</answer>"
    assert not task.verify(EX, f"{good} hmm, actually {bad}").passed
    assert task.verify(EX, f"{bad} no wait {good}").passed
    assert task.verify(EX, "<ANSWER>3 + 5 + 2</ANSWER> or <ANSWER>(3 + 5) * 2</ANSWER>").passed


@pytest.mark.parametrize(
    "completion",
    [
        "<answer>__import__('os').system('echo hi')</answer>",
        "<answer>9**9**9</answer>",
        "<answer>(3+5)**2</answer>",
        "<answer>(1+2)**3</answer>",
        "<answer>1e308*10</answer>",
        "<answer>3.0 * 5 + 2 - 1</answer>",
        "<answer>-3 + 5 * 2 + 9</answer>",
        "<answer>+3 + 5 * 2</answer>",
        "<answer>x + 5 * 2</answer>",
        "<answer>(lambda: 16)()</answer>",
        "<answer>f'{16}'</answer>",
        "<answer>'16'</answer>",
        "<answer>True * 16</answer>",
        "<answer>0x10</answer>",
        "<answer>1_6</answer>",
        "<answer>(3 + 5) // 2</answer>",
        "<answer>(3 + 5) % 2</answer>",
        "<answer>[3, 5, 2]</answer>",
        "<answer>(3 + 5)(2)</answer>",
        "<answer>()</answer>",
        "<answer>(3 + 5) * 2;</answer>",
        "<answer>16\x00</answer>",
        "<answer>" + "1+" * 5_000_000 + "1</answer>",
        "x" * 10_000_000,
        "<answer>" + "(" * 100_000 + "3" + ")" * 100_000 + "</answer>",
        "<answer>" + "(" * 150 + "3 + 5) * 2</answer>",
        "<answer>1</answer>" * 10_000,
        "<answer>(3 + 5) * 2" * 10_000,
        "<answer>" * 10_000,
        "<answer>" + "9" * 5000 + "</answer>",
        "<answer>" + "9" * 150 + " * 3 + 5 + 2</answer>",
        None,
        b"<answer>(3 + 5) * 2</answer>",
        16,
        ["<answer>(3 + 5) * 2</answer>"],
    ],
    ids=lambda c: repr(c)[:40],
)
def test_adversarial_completions(task, completion):
    verdict = task.verify(EX, completion)
    assert isinstance(verdict, Verdict)
    assert verdict.passed is False
    assert isinstance(verdict.reason, str) and verdict.reason
    assert isinstance(task.leaks_answer(EX, completion), bool)


def test_huge_completion_is_fast(task):
    import time

    for completion in ["<answer>" + "(" * 10_000_000 + "</answer>", "x" * 10_000_000, "<ANSWER>" + "1" * 10_000_000]:
        start = time.perf_counter()
        assert not task.verify(EX, completion).passed
        assert not task.leaks_answer(EX, completion)
        assert time.perf_counter() - start < 0.5


@FAST
@given(text=st.text())
def test_arbitrary_text_never_raises(task, text):
    for completion in (text, f"<answer>{text}</answer>", f"{text}<answer>(3 + 5) * 2</answer>{text}"):
        verdict = task.verify(EX, completion)
        assert isinstance(verdict, Verdict) and isinstance(verdict.reason, str)
        assert isinstance(task.leaks_answer(EX, completion), bool)


@FAST
@given(text=st.text(alphabet="0123456789+-*/() =.\n", max_size=60))
def test_arithmetic_looking_text_agrees_with_oracle(task, text):
    verdict = task.verify(EX, f"<answer>{text}</answer>")
    assert isinstance(verdict, Verdict)
    if verdict.passed:
        expr = text.split("=")[0] if text.strip().split("=")[-1].strip() == "16" else text.split("=")[-1]
        assert oracle(expr.replace("\n", " ")) == 16
        assert sorted(map(int, re.findall(r"\d+", expr))) == [2, 3, 5]


@pytest.mark.parametrize(
    "example",
    [
        {"nums": None, "target": 16},
        {"nums": "3,5,2", "target": 16},
        {"nums": [3, 5.0, 2], "target": 16},
        {"nums": [3, True, 2], "target": 16},
        {"nums": [3, -5, 2], "target": 16},
        {"nums": [], "target": 16},
        {"nums": [3, 5, 2], "target": "16"},
        {"nums": [3, 5, 2], "target": 16.0},
        {"nums": [3, 5, 2]},
        {"target": 16},
        None,
        "nums",
    ],
)
def test_malformed_examples(task, example):
    verdict = task.verify(example, "<answer>(3 + 5) * 2</answer>")
    assert verdict.passed is False and verdict.reason.startswith("malformed example:")
    assert task.leaks_answer(example, "(3 + 5) * 2") is False
    assert task.reference_answer(example) is None


def test_tuple_nums_and_numpy_like_values_work(task):
    assert task.verify({"nums": (3, 5, 2), "target": 16}, "<answer>(3 + 5) * 2</answer>").passed
    np = pytest.importorskip("numpy")
    assert task.verify({"nums": np.array([3, 5, 2]), "target": np.int64(16)}, "<answer>(3 + 5) * 2</answer>").passed


# --------------------------------------------------------------------------------------------------------- solver
@FAST
@given(inst=instances())
def test_solve_finds_solutions(inst):
    nums, _, value = inst
    if value is None or value.denominator != 1:
        return
    expr = solve(nums, int(value))
    assert expr is not None
    assert oracle(expr) == value
    assert sorted(map(int, re.findall(r"\d+", expr))) == sorted(nums)


def test_solve_generated_and_unsolvable(task):
    for row in task.generate(30, seed=11):
        expr = solve(row["nums"], row["target"])
        assert expr is not None and task.verify(row, tagged(expr)).passed
    assert solve([1, 1, 1], 100) is None
    assert solve([1, 1, 1, 1], 1000) is None
    assert solve([4, 4, 4, 4], 17) is not None
    assert solve([25, 50, 75, 100], 7) is not None
    assert solve([5, 5, 5, 1], 24) is not None  # needs a non-integer intermediate: 5 * (5 - 1 / 5)
    assert solve([3, 8, 3, 8], 24) is not None  # 8 / (3 - 8 / 3)
    with pytest.raises(ValueError):
        solve([], 1)


def test_reference_answer(task):
    assert task.reference_answer({**EX, "solution": "2 * (5 + 3)"}) == "<answer>2 * (5 + 3)</answer>"
    fallback = task.reference_answer({**EX, "solution": "3 + 5 + 2"})  # wrong solution column: solve instead
    assert fallback is not None and task.verify(EX, fallback).passed
    assert task.verify(EX, task.reference_answer(EX)).passed
    assert task.reference_answer({"nums": [1, 1, 1], "target": 100}) is None


# ------------------------------------------------------------------------------------------------------- leakage
@pytest.mark.parametrize(
    "reflection",
    [
        "I should have written (3+5)*2 instead.",
        "The right equation is 2 * (3 + 5) = 16.",
        "Try (5 + 3) × 2 next time",
        "Use (3+5)*2 - that works.",
        "(e.g. ((3 + 5) * 2))",
        "Reflection: <answer>(3 + 5) * 2</answer>",
        "First 3 + 5 = 8, then 8 * 2 = 16.",
        "Compute 5+3=8 and 8*2=16, using each number once.",
        "Adding gives 3 + 5 = 8 * 2 = 16.",
    ],
)
def test_leaks_answer_true(task, reflection):
    assert task.leaks_answer(EX, reflection) is True


@pytest.mark.parametrize(
    "reflection",
    [
        "I used 5 twice and forgot the 2. I should multiply a sum by the remaining number.",
        "My equation (3 + 5) * 3 used 3 twice; check that every number appears exactly once.",
        "3 + 5 + 2 = 10 is far too small, so multiplication is needed.",
        "I computed 3 + 5 = 8 but then 8 * 3 = 24 overshoots; use the other number.",
        "First 3 + 5 = 9, then 9 * 2 = 18 - the arithmetic was wrong.",
        "Keep the numbers 3, 5 and 2 straight and aim for 16.",
        "",
    ],
)
def test_leaks_answer_false(task, reflection):
    assert task.leaks_answer(EX, reflection) is False


def test_leaks_answer_scans_a_bounded_prefix(task):
    assert task.leaks_answer(EX, "lesson " * 1000 + "(3 + 5) * 2") is False  # beyond the scanned prefix, no tag
    assert task.leaks_answer(EX, "lesson " * 1000 + "<answer>(3 + 5) * 2</answer>") is True  # the verifier sees tags


# ---------------------------------------------------------------------------------------------------------- prompts
def test_prompts(task):
    prompt = task.attempt_prompt(EX)
    assert "[3, 5, 2]" in prompt and "16" in prompt and "<answer>" in prompt and "exactly once" in prompt
    retry = task.retry_messages(EX, "attempt", "reflection")
    assert [m["role"] for m in retry] == ["user", "assistant", "user", "assistant", "user"]
    assert retry[2]["content"] == task.reflection_instruction and "final equation" in task.reflection_instruction
    assert retry[-1]["content"] == task.retry_instruction
    with pytest.raises(TaskDataError):
        task.attempt_prompt({"nums": "oops", "target": 3})


# ------------------------------------------------------------------------------------------------------------- data
def test_load_generated(task):
    ds = task.load(split="train", n=20, seed=3, source="generated")
    assert len(ds) == 20 and {"nums", "target", "solution", "id"} <= set(ds.column_names)
    assert ds[0]["nums"] == task.generate(1, seed=3, split="train")[0]["nums"]
    test = task.load(split="test", n=20, seed=3, source="generated")
    assert ds["nums"] != test["nums"]
    assert all(task.verify(row, task.reference_answer(row)).passed for row in test)


def test_load_local_files(task, tmp_path):
    rows = [{"nums": [3, 5, 2], "target": 16}, {"nums": [1, 2, 3, 4], "target": 24}, {"nums": [7, 1, 1], "target": 5}]
    path = tmp_path / "cd.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = task.load(source=str(path))
    assert len(ds) == 3 and ds[1]["nums"] == [1, 2, 3, 4]
    assert task.verify(ds[0], "<answer>(3 + 5) * 2</answer>").passed
    assert len(task.load(source=str(path), n=2, seed=1)) == 2

    csv = tmp_path / "cd.csv"
    csv.write_text('nums,target\n"[3, 5, 2]",16\n"[1, 2, 3, 4]",24\n')
    ds = task.load(source=str(csv))
    assert ds[0]["nums"] == [3, 5, 2] and ds[0]["target"] == 16
    assert task.verify(ds[0], "<answer>(3 + 5) * 2</answer>").passed

    broken = tmp_path / "broken.csv"
    broken.write_text('nums,target\n"[3, 5,",16\n')
    with pytest.raises(TaskDataError, match="cannot decode"):
        task.load(source=str(broken))

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"nums": [3, 5, 2], "answer": 16}) + "\n")
    with pytest.raises(TaskDataError) as info:
        task.load(source=str(bad))
    assert "target" in str(info.value) and "nums" in str(info.value)


def test_hub_source_offline_is_readable(task):
    try:
        ds = task.load(split="test")
    except TaskDataError as exc:
        message = str(exc)
        assert "Jiayi-Pan/Countdown-Tasks-3to4" in message
        assert "generated" in message  # the hint points at an offline alternative
        assert "Traceback" not in message and len(message) < 1000
    else:  # a machine with a cached copy: the carve-out must still hold
        assert len(ds) == HUB_TEST_ROWS


def test_hub_split_carving(task, monkeypatch):
    import datasets

    total = 5_000
    fake = datasets.Dataset.from_dict({"nums": [[i, 1, 2] for i in range(total)], "target": [i for i in range(total)]})
    calls = []

    def fake_load_dataset(source, split=None, **kwargs):
        calls.append((source, split))
        if split != "train":
            raise ValueError(f"Unknown split {split!r}")
        return fake

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    train, val, test = (task.load(split=s) for s in ("train", "validation", "test"))
    assert all(call == ("Jiayi-Pan/Countdown-Tasks-3to4", "train") for call in calls)
    assert len(test) == HUB_TEST_ROWS and len(val) == HUB_VALIDATION_ROWS
    assert len(train) == total - HUB_TEST_ROWS - HUB_VALIDATION_ROWS
    assert test["target"] == list(range(total - HUB_TEST_ROWS, total))
    assert set(train["target"]).isdisjoint(test["target"]) and set(val["target"]).isdisjoint(test["target"])
    sub = task.load(split="test", n=50, seed=4)
    assert sub["target"] == task.load(split="test", n=50, seed=4)["target"]
    assert set(sub["target"]) <= set(test["target"])
    assert set(task.load(split="train", n=100, seed=4)["target"]).isdisjoint(test["target"])
    with pytest.raises(TaskDataError, match="carved"):
        task.load(split="bogus")
    with pytest.raises(TaskDataError, match="n=5000"):
        task.load(split="test", n=5000)


def test_overuse_reason(task):
    verdict = task.verify({"nums": [1, 3, 3], "target": 1}, tagged("1 / 3 * 3 * 3 / 3"))
    assert verdict == Verdict(False, "uses 3 4 times (given 2)")


def test_every_unicode_space_is_a_space(task):
    """Any str.isspace() / category-Zs character inside the expression reads as a plain space."""
    import unicodedata

    spaces = [c for c in map(chr, range(0x110000)) if c.isspace() or unicodedata.category(c) == "Zs"]
    assert {"\u00a0", "\u2009", "\u202f", "\u3000", "\u1680", "\n"} <= set(spaces)
    for c in spaces:
        assert task.verify(EX, tagged(f"({c}3{c}+{c}5{c}){c}*{c}2{c}")).passed, hex(ord(c))
    # a character that only looks like nothing is not a space: zero-width space (Cf) is still rejected
    assert task.verify(EX, tagged("(3\u200b+ 5) * 2")).reason == "disallowed character '\\u200b'"


def test_unary_minus_is_evaluated_never_executed(task):
    """Unary minus keeps exact Fraction arithmetic and the literal multiset; nothing but the whitelist is walked."""
    ex = {"nums": [1, 3], "target": 1}
    assert not task.verify(ex, tagged("-1 / 3 * -3")).passed  # uses 3 twice
    assert task.verify({"nums": [1, 3, 3], "target": 1}, tagged("-1 / 3 * -3")).passed  # exactly 1, not 0.999...
    assert task.verify({"nums": [3, 5], "target": 2}, tagged("- 3 + 5")).passed
    assert task.verify({"nums": [3, 5], "target": 2}, tagged("--3 - -(-5) + 4 - 4")).reason.startswith("uses 4")
    assert task.verify({"nums": [3], "target": 3}, tagged("-(-3)")).passed
    assert task.verify(EX, tagged("-__import__('os')")).reason.startswith("disallowed character")
    assert task.verify(EX, tagged("-" * 150 + "3 + 5 * 2")).passed is False  # a long chain is parsed, not run


def test_unary_minus_solution_in_reflection_is_a_leak(task):
    assert task.leaks_answer(EX, "I should have written (5 - -3) * 2 instead.")
    assert task.leaks_answer(EX, "the fix: -(-3 - 5) * 2")
    assert not task.leaks_answer(EX, "I used 3 twice; next time use each number once.")
