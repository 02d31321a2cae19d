"""APIGen function-calling task: generator, accepted answer forms, multiset verification, hostile input, loading."""

from __future__ import annotations

import copy
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrr.tasks import TaskDataError, Verdict, get_task
from rrr.tasks import base as task_base  # Task.load (the hub carve-out) reads sources through it
from rrr.tasks.apigen import HUB_SOURCE, HUB_TEST_ROWS, APIGenTask

TASK = APIGenTask()

WEATHER_PARIS = {"name": "get_current_weather", "arguments": {"city": "Paris", "units": "metric"}}
WEATHER_ROME = {"name": "get_current_weather", "arguments": {"city": "Rome"}}
CURRENCY = {"name": "convert_currency", "arguments": {"amount": 3, "from_currency": "USD", "to_currency": "EUR"}}
ANSWERS = [WEATHER_PARIS, WEATHER_ROME, CURRENCY]
EXAMPLE = {
    "id": "hand-1",
    "query": "What's the weather in Paris in metric units and in Rome? Also convert 3 USD to EUR.",
    "tools": json.dumps(
        [
            {
                "name": "get_current_weather",
                "description": "Current weather.",
                "parameters": {
                    "city": {"type": "str", "description": "City."},
                    "units": {"type": "str, optional", "description": "Units.", "default": "metric"},
                },
            },
            {
                "name": "convert_currency",
                "description": "Convert money.",
                "parameters": {
                    "amount": {"type": "float", "description": "Amount."},
                    "from_currency": {"type": "str", "description": "From."},
                    "to_currency": {"type": "str", "description": "To."},
                },
            },
        ]
    ),
    "answers": json.dumps(ANSWERS),
}
SORT_EXAMPLE = {
    "query": "Sort 3, 1 and 2 in descending order.",
    "tools": "[]",
    "answers": json.dumps([{"name": "sort_numbers", "arguments": {"numbers": [3, 1, 2], "descending": True}}]),
}


def wrap(calls) -> str:
    return "<answer>" + json.dumps(calls) + "</answer>"


def check(example, completion) -> Verdict:
    verdict = TASK.verify(example, completion)
    assert isinstance(verdict, Verdict)
    assert isinstance(verdict.reason, str) and verdict.reason
    return verdict


# ------------------------------------------------------------------------------------------------------------------
# Registry and prompts
# ------------------------------------------------------------------------------------------------------------------
def test_registry_and_attributes():
    task = get_task("apigen")
    assert isinstance(task, APIGenTask)
    assert task.name == "apigen"
    assert task.required_columns == ("query", "tools", "answers")
    assert task.default_source == HUB_SOURCE == "Salesforce/xlam-function-calling-60k"


def test_prompts():
    prompt = TASK.attempt_prompt(EXAMPLE)
    assert EXAMPLE["query"] in prompt and "convert_currency" in prompt and "<answer></answer>" in prompt
    assert '"arguments"' in prompt
    parsed = dict(EXAMPLE, tools=json.loads(EXAMPLE["tools"]), answers=ANSWERS)
    assert "convert_currency" in TASK.attempt_prompt(parsed)
    messages = TASK.retry_messages(EXAMPLE, "attempt", "reflection")
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert "tool call" in TASK.reflection_instruction and "Do not write the tool calls" in TASK.reflection_instruction
    assert "<answer></answer>" in TASK.retry_instruction


def test_reference_answer_format():
    assert TASK.reference_answer(EXAMPLE) == "<answer>" + json.dumps(ANSWERS) + "</answer>"
    assert TASK.reference_answer(dict(EXAMPLE, answers=ANSWERS)) == "<answer>" + json.dumps(ANSWERS) + "</answer>"


# ------------------------------------------------------------------------------------------------------------------
# Generator
# ------------------------------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), split=st.sampled_from(["train", "test", "validation"]))
def test_generated_references_pass_and_are_well_formed(seed, split):
    for example in TASK.generate(6, seed=seed, split=split):
        assert set(example) == {"id", "query", "tools", "answers"}
        assert check(example, TASK.reference_answer(example)).passed
        tools = {tool["name"]: tool for tool in json.loads(example["tools"])}
        answers = json.loads(example["answers"])
        assert 1 <= len(tools) <= 3 and 1 <= len(answers) <= 3
        assert len({json.dumps(a, sort_keys=True) for a in answers}) == len(answers), "parallel calls must differ"
        for call in answers:
            params = tools[call["name"]]["parameters"]
            assert set(call["arguments"]) <= set(params)
            required = {p for p, spec in params.items() if "optional" not in spec["type"]}
            assert required <= set(call["arguments"])
            for value in call["arguments"].values():  # the query states every value: the task is solvable
                items = value if isinstance(value, list) else [value]
                for item in items:
                    if not isinstance(item, bool):
                        assert (repr(item) if isinstance(item, float) else str(item)) in example["query"]
        # the reordered list, tool_call blocks and a bare list pass too
        assert check(example, json.dumps(answers[::-1])).passed
        blocks = "".join(f"<tool_call>{json.dumps(a)}</tool_call>" for a in answers)
        assert check(example, blocks).passed


def test_generator_is_deterministic_and_splits_differ():
    a = TASK.generate(50, seed=7, split="train")
    assert a == TASK.generate(50, seed=7, split="train")
    assert a[:10] == TASK.generate(10, seed=7, split="train")
    test = TASK.generate(50, seed=7, split="test")
    assert [r["query"] for r in a] != [r["query"] for r in test]
    assert {r["id"] for r in a}.isdisjoint({r["id"] for r in test})
    assert [r["query"] for r in a] != [r["query"] for r in TASK.generate(50, seed=8, split="train")]
    assert TASK.generate(0) == []


def test_generator_covers_the_value_kinds():
    rows = TASK.generate(400, seed=0)
    values = [v for r in rows for call in json.loads(r["answers"]) for v in call["arguments"].values()]
    kinds = {type(v) for v in values}
    assert {str, int, float, bool, list} <= kinds
    assert len({call["name"] for r in rows for call in json.loads(r["answers"])}) >= 10
    counts = [len(json.loads(r["answers"])) for r in rows]
    assert {1, 2, 3} <= set(counts)
    parallel = [r for r in rows if len({c["name"] for c in json.loads(r["answers"])}) < len(json.loads(r["answers"]))]
    assert parallel, "some examples must call one tool several times"
    distractors = [r for r in rows if len(json.loads(r["tools"])) > len({c["name"] for c in json.loads(r["answers"])})]
    assert distractors, "some examples must offer tools that are not needed"


# ------------------------------------------------------------------------------------------------------------------
# Accepted forms
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "completion",
    [
        json.dumps(ANSWERS),
        "  \n" + json.dumps(ANSWERS, indent=2) + "\n",
        "Here are the calls:\n```json\n" + json.dumps(ANSWERS, indent=2) + "\n```\nDone.",
        "```\n" + json.dumps(ANSWERS) + "\n```",
        wrap(ANSWERS),
        "<answer>\n```json\n" + json.dumps(ANSWERS) + "\n```\n</answer>",
        "".join(f"<tool_call>\n{json.dumps(c)}\n</tool_call>\n" for c in ANSWERS),
        "<answer>" + "".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in ANSWERS) + "</answer>",
        wrap(ANSWERS[::-1]),
        wrap([WEATHER_ROME, CURRENCY, WEATHER_PARIS]),
        wrap([{"name": c["name"], "arguments": json.dumps(c["arguments"])} for c in ANSWERS]),
        wrap([{"type": "function", "function": c} for c in ANSWERS]),
        wrap([{"name": c["name"], "parameters": c["arguments"]} for c in ANSWERS]),
        wrap([WEATHER_PARIS, WEATHER_ROME, {**CURRENCY, "arguments": {**CURRENCY["arguments"], "amount": 3.0}}]),
        wrap({"tool_calls": ANSWERS}),
        "<ANSWER>" + json.dumps(ANSWERS) + "</ANSWER>",
    ],
)
def test_accepted_forms_pass(completion):
    verdict = check(EXAMPLE, completion)
    assert verdict.passed, verdict.reason


def test_single_object_counts_as_one_call():
    single = {"query": "q", "tools": "[]", "answers": json.dumps([WEATHER_ROME])}
    assert check(single, json.dumps(WEATHER_ROME)).passed
    assert check(single, wrap(WEATHER_ROME)).passed
    assert check(single, "```json\n" + json.dumps(WEATHER_ROME) + "\n```").passed
    assert check(single, json.dumps({"name": "get_current_weather", "arguments": '{"city": "Rome"}'})).passed
    assert not check(single, json.dumps(WEATHER_PARIS)).passed


def test_parsed_answers_and_no_argument_calls():
    example = {"query": "q", "tools": [], "answers": ANSWERS}
    assert check(example, json.dumps(ANSWERS[::-1])).passed
    no_args = {"query": "q", "tools": "[]", "answers": json.dumps([{"name": "get_time", "arguments": {}}])}
    assert check(no_args, '[{"name": "get_time"}]').passed
    assert check(no_args, '[{"name": "get_time", "arguments": "{}"}]').passed
    assert check(no_args, '[{"name": "get_time", "arguments": null}]').passed


def test_nested_values_compare_canonically():
    args = {"filters": {"tags": ["a", "b"], "price": {"max": 10, "min": 0.5}}, "flag": False}
    example = {"query": "q", "tools": "[]", "answers": json.dumps([{"name": "search", "arguments": args}])}
    reordered = {"flag": False, "filters": {"price": {"min": 0.5, "max": 10.0}, "tags": ["a", "b"]}}
    assert check(example, wrap([{"name": "search", "arguments": reordered}])).passed
    swapped = {"flag": False, "filters": {"price": {"min": 0.5, "max": 10}, "tags": ["b", "a"]}}
    assert not check(example, wrap([{"name": "search", "arguments": swapped}])).passed
    as_list = {"flag": False, "filters": [["tags", ["a", "b"]], ["price", {"max": 10, "min": 0.5}]]}
    assert not check(example, wrap([{"name": "search", "arguments": as_list}])).passed


def test_the_last_answer_is_judged():
    wrong = [WEATHER_PARIS]
    assert check(EXAMPLE, wrap(wrong) + " wait, let me fix that " + wrap(ANSWERS)).passed
    assert not check(EXAMPLE, wrap(ANSWERS) + " on second thought " + wrap(wrong)).passed
    # an answer tag is authoritative: a correct fenced block elsewhere does not rescue a broken answer
    broken = "```json\n" + json.dumps(ANSWERS) + "\n```\n<answer>get_current_weather(city='Paris')</answer>"
    verdict = check(EXAMPLE, broken)
    assert not verdict.passed and "invalid JSON" in verdict.reason


# ------------------------------------------------------------------------------------------------------------------
# Mutations fail
# ------------------------------------------------------------------------------------------------------------------
def mutated(index: int, **changes):
    calls = copy.deepcopy(ANSWERS)
    calls[index]["arguments"].update(changes)
    return calls


@pytest.mark.parametrize(
    ("calls", "reason"),
    [
        (mutated(0, city="Pariss"), "unexpected call get_current_weather"),
        (mutated(2, amount=4), "missing call convert_currency"),
        (mutated(2, amount="3"), "unexpected call convert_currency"),
        (mutated(0, units="Metric"), "unexpected call"),
        (
            [WEATHER_PARIS, {"name": "get_current_weather", "arguments": {"town": "Rome"}}, CURRENCY],
            "unexpected call get_current_weather(town=",
        ),
        ([WEATHER_PARIS, WEATHER_ROME, {**CURRENCY, "name": "convert_money"}], "wrong tool"),
        ([WEATHER_PARIS, CURRENCY], "expected 3 calls, got 2"),
        ([*ANSWERS, WEATHER_ROME], "expected 3 calls, got 4"),
        ([WEATHER_PARIS, WEATHER_PARIS, CURRENCY], 'missing call get_current_weather(city="Rome")'),
        (mutated(1, units="imperial"), "unexpected call"),
        ([], "expected 3 calls, got 0"),
    ],
)
def test_mutations_fail(calls, reason):
    verdict = check(EXAMPLE, wrap(calls))
    assert not verdict.passed
    assert reason in verdict.reason, verdict.reason


def test_booleans_are_not_numbers_and_strings_are_not_numbers():
    ok = [{"name": "sort_numbers", "arguments": {"numbers": [3, 1, 2], "descending": True}}]
    assert check(SORT_EXAMPLE, wrap(ok)).passed
    assert check(SORT_EXAMPLE, wrap([{**ok[0], "arguments": {"numbers": [3.0, 1, 2.0], "descending": True}}])).passed
    for bad in ({"numbers": [3, 1, 2], "descending": 1}, {"numbers": [3, 1, 2], "descending": "true"}):
        assert not check(SORT_EXAMPLE, wrap([{**ok[0], "arguments": bad}])).passed
    assert not check(SORT_EXAMPLE, wrap([{**ok[0], "arguments": {"numbers": ["3", 1, 2], "descending": True}}])).passed
    assert not check(SORT_EXAMPLE, wrap([{**ok[0], "arguments": {"numbers": [1, 2, 3], "descending": True}}])).passed
    one = {"query": "q", "tools": "[]", "answers": json.dumps([{"name": "f", "arguments": {"x": 1}}])}
    assert not check(one, wrap([{"name": "f", "arguments": {"x": True}}])).passed
    assert check(one, wrap([{"name": "f", "arguments": {"x": 1.0}}])).passed


def test_optional_argument_at_its_declared_default_is_the_same_call():
    # Rome's reference leaves the optional `units` out; stating its default "metric" is the same call ...
    assert check(EXAMPLE, wrap(mutated(1, units="metric"))).passed
    # ... and Paris's reference states it; leaving it out is the same call too
    paris = {"name": "get_current_weather", "arguments": {"city": "Paris"}}
    assert check(EXAMPLE, wrap([paris, WEATHER_ROME, CURRENCY])).passed
    # still failing: another value, an undeclared argument, a missing required one, a required one "at a default"
    assert "unexpected call" in check(EXAMPLE, wrap(mutated(1, units="imperial"))).reason
    assert not check(EXAMPLE, wrap(mutated(1, units="Metric"))).passed  # strings compare exactly
    assert not check(EXAMPLE, wrap(mutated(1, unit="metric"))).passed
    no_city = {"name": "get_current_weather", "arguments": {"units": "metric"}}
    assert "missing call" in check(EXAMPLE, wrap([WEATHER_PARIS, no_city, CURRENCY])).reason


def test_defaults_from_json_schema_style_tools():
    tools = [
        {
            "type": "function",
            "function": {
                "name": "search",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "q": {"type": "string", "default": "news"},
                        "limit": {"type": "integer", "default": 10},
                        "safe": {"type": "boolean", "default": True},
                        "lang": {"type": "string"},
                    },
                    "required": ["q"],
                },
            },
        }
    ]
    example = {
        "query": "q",
        "tools": json.dumps(tools),
        "answers": json.dumps([{"name": "search", "arguments": {"q": "cats"}}]),
    }
    ok = {"name": "search", "arguments": {"q": "cats", "limit": 10.0, "safe": True}}
    assert check(example, wrap([ok])).passed  # 10.0 == 10 numerically, as everywhere else
    for bad in ({"limit": 11}, {"safe": 1}, {"lang": "en"}, {"limit": "10"}):
        assert not check(example, wrap([{"name": "search", "arguments": {"q": "cats", **bad}}])).passed, bad
    # a required argument that happens to declare a default is not optional: it must be given
    required_default = {**example, "answers": json.dumps([{"name": "search", "arguments": {"q": "news"}}])}
    assert not check(required_default, wrap([{"name": "search", "arguments": {}}])).passed
    # tools that cannot be read give no defaults, and never turn a pass into a failure
    for tools_text in ("not json", "[1, 2]", json.dumps([{"name": "search", "parameters": []}])):
        broken = {**example, "tools": tools_text}
        assert check(broken, wrap([{"name": "search", "arguments": {"q": "cats"}}])).passed
        assert not check(broken, wrap([ok])).passed


def _mutations(answers: list[dict]):
    """Every single-edit mutation of a reference call list (each must fail)."""
    for i, call in enumerate(answers):
        yield [*answers[:i], *answers[i + 1 :]]  # dropped call
        yield [*answers, call]  # extra duplicate
        yield [*answers[:i], {**call, "name": call["name"] + "_v2"}, *answers[i + 1 :]]
        for key, value in call["arguments"].items():
            renamed = {(k + "_x" if k == key else k): v for k, v in call["arguments"].items()}
            yield [*answers[:i], {**call, "arguments": renamed}, *answers[i + 1 :]]
            if isinstance(value, bool):
                new = not value
            elif isinstance(value, (int, float)):
                new = value + 1
            elif isinstance(value, str):
                new = value + "x"
            else:
                new = [*value, 0]
            yield [*answers[:i], {**call, "arguments": {**call["arguments"], key: new}}, *answers[i + 1 :]]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_mutations_of_generated_references_fail(seed):
    for example in TASK.generate(3, seed=seed, split="test"):
        answers = json.loads(example["answers"])
        for calls in _mutations(answers):
            verdict = check(example, wrap(calls))
            assert not verdict.passed, (calls, verdict)


# ------------------------------------------------------------------------------------------------------------------
# Never raises
# ------------------------------------------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=400))
def test_arbitrary_text_never_raises(text):
    for completion in (text, f"<answer>{text}</answer>", f"<tool_call>{text}</tool_call>", f"```json\n{text}\n```"):
        verdict = check(EXAMPLE, completion)
        assert verdict.passed is False
        assert TASK.leaks_answer(EXAMPLE, completion) in (True, False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values)
def test_arbitrary_json_values_never_raise(value):
    payload = json.dumps(value)  # may contain NaN / Infinity
    for completion in (payload, wrap(value), f"<tool_call>{payload}</tool_call>"):
        assert check(EXAMPLE, completion).passed is False
    call = {"name": "get_current_weather", "arguments": value}
    assert check(EXAMPLE, wrap([call])).passed is False
    assert check(EXAMPLE, wrap([{"name": "get_current_weather", "arguments": payload}])).passed is False
    # the value as a (malformed or odd) reference must not raise either
    for answers in (payload, value, [call]):
        check({"query": "q", "tools": "[]", "answers": answers}, wrap([call]))
        assert TASK.leaks_answer({"answers": answers}, payload) in (True, False)


ADVERSARIAL = {
    "10 MB of text": "x" * 10_000_000,
    "10 MB answer": "<answer>" + "[" * 10_000_000 + "</answer>",
    "deep list": "[" * 100_000 + "]" * 100_000,
    "deep list in answer": "<answer>" + "[" * 40_000 + "]" * 40_000 + "</answer>",
    "deep list in a tool_call": "<tool_call>" + "[" * 1000 + "]" * 1000 + "</tool_call>",
    "deep object": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "deep object in answer": "<answer>" + '{"a":' * 10_000 + "1" + "}" * 10_000 + "</answer>",
    "deep arguments string": wrap([{"name": "get_current_weather", "arguments": "[" * 5000 + "]" * 5000}]),
    "huge float": wrap([{**WEATHER_ROME, "arguments": {"city": 1}}]).replace("1}", "1e999}"),
    "huge int": "<answer>[" + "9" * 50_000 + "]</answer>",
    "NaN": '<answer>[{"name": "get_current_weather", "arguments": {"city": NaN}}]</answer>',
    "Infinity": '[{"name": "get_current_weather", "arguments": {"city": -Infinity}}]',
    "python": "<answer>__import__('os').system('rm -rf /')</answer>",
    "python bare": "__import__('os').system('rm -rf /')",
    "python call": "<answer>[get_current_weather(city='Paris')]</answer>",
    "unicode junk": "\x00\ud800\u202e<answer>\ufeff[\U0001f4a9]</answer>\udfff",
    "many tool_call tags": "<tool_call>{}</tool_call>" * 30_000,
    "many open tool_call tags": "<tool_call>" * 80_000,
    "many answer tags": "<answer>" * 100_000 + "</answer>",
    "escaped quotes": "<answer>[" + '"\\"' * 30_000 + "</answer>",
    "no calls": "I think the weather in Paris is nice.",
    "empty": "",
    "empty answer": "<answer> </answer>",
    "scalar": "<answer>42</answer>",
    "list of scalars": "<answer>[1, 2, 3]</answer>",
    "call without name": '<answer>[{"arguments": {}}]</answer>',
    "arguments not an object": '<answer>[{"name": "f", "arguments": [1]}]</answer>',
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_inputs_fail_cleanly_and_fast(name):
    completion = ADVERSARIAL[name]
    start = time.perf_counter()
    verdict = check(EXAMPLE, completion)
    leaked = TASK.leaks_answer(EXAMPLE, completion)
    elapsed = time.perf_counter() - start
    assert verdict.passed is False and leaked is False
    assert elapsed < 1.0, f"{name} took {elapsed:.2f}s"


def test_adversarial_reasons():
    assert "too deeply nested" in check(EXAMPLE, ADVERSARIAL["deep list in answer"]).reason
    assert "too deeply nested" in check(EXAMPLE, ADVERSARIAL["deep object in answer"]).reason
    assert "too deeply nested" in check(EXAMPLE, ADVERSARIAL["deep arguments string"]).reason
    assert "too long" in check(EXAMPLE, ADVERSARIAL["10 MB of text"]).reason
    assert "non-finite" in check(EXAMPLE, ADVERSARIAL["huge float"]).reason
    assert "non-finite" in check(EXAMPLE, ADVERSARIAL["NaN"]).reason
    assert "digits" in check(EXAMPLE, ADVERSARIAL["huge int"]).reason
    assert check(EXAMPLE, ADVERSARIAL["no calls"]).reason == "no tool calls found"
    assert "invalid JSON" in check(EXAMPLE, ADVERSARIAL["python"]).reason
    assert "too many" in check(EXAMPLE, ADVERSARIAL["many tool_call tags"]).reason
    # brackets inside strings do not count as nesting
    deep_string = {**WEATHER_ROME, "arguments": {"city": "[{" * 200}}
    assert "unexpected call" in check(EXAMPLE, wrap([WEATHER_PARIS, deep_string, CURRENCY])).reason


@pytest.mark.parametrize("completion", [None, 3, b"[]", ["<answer>[]</answer>"], {"a": 1}])
def test_non_string_completion(completion):
    verdict = TASK.verify(EXAMPLE, completion)
    assert verdict == Verdict(False, verdict.reason) and "not text" in verdict.reason


@pytest.mark.parametrize(
    "example",
    [
        {"query": "q", "tools": "[]", "answers": "not json"},
        {"query": "q", "tools": "[]", "answers": '[{"name": 3}]'},
        {"query": "q", "tools": "[]", "answers": "[" * 10_000},
        {"query": "q", "tools": "[]", "answers": 42},
        {"query": "q", "tools": "[]"},
        None,
        "not a dict",
    ],
)
def test_malformed_example(example):
    verdict = TASK.verify(example, wrap(ANSWERS))
    assert not verdict.passed and verdict.reason.startswith("malformed example: ")
    assert TASK.leaks_answer(example, wrap(ANSWERS)) is False


# ------------------------------------------------------------------------------------------------------------------
# Leakage
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reflection",
    [
        "I should have answered " + wrap(ANSWERS),
        "The right calls are:\n```json\n" + json.dumps(ANSWERS) + "\n```",
        "".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in ANSWERS),
        "I forgot the second city. I should call get_current_weather for Paris with metric units, "
        "get_current_weather again for Rome, and convert_currency with 3 USD to EUR.",
        "Correct: GET_CURRENT_WEATHER(paris, METRIC), get_current_weather(rome), convert_currency(3.0, usd, eur)",
    ],
)
def test_leaks_answer_positive(reflection):
    assert TASK.leaks_answer(EXAMPLE, reflection) is True


@pytest.mark.parametrize(
    "reflection",
    [
        "I picked the wrong tool and forgot one of the calls. Next time I will read every part of the query.",
        "I used get_current_weather and convert_currency, but I missed a parallel call.",
        "I should call get_current_weather for Paris in metric units and for Rome; convert_currency was fine.",
        # 13 is not 3, and "metrical" is not "metric"
        "get_current_weather for Paris in metrical units and Rome; convert_currency 13 USD to EUR.",
        wrap(ANSWERS[:2]),
        "",
    ],
)
def test_leaks_answer_negative(reflection):
    assert TASK.leaks_answer(EXAMPLE, reflection) is False


def test_leaks_answer_odd_inputs():
    assert TASK.leaks_answer(EXAMPLE, None) is False
    assert TASK.leaks_answer(EXAMPLE, 12) is False
    no_args = {"answers": json.dumps([{"name": "get_time", "arguments": {}}])}
    assert TASK.leaks_answer(no_args, "You should simply have called get_time.") is True
    assert TASK.leaks_answer(no_args, "You should have called a time tool.") is False
    booleans = {"answers": json.dumps([{"name": "sort", "arguments": {"numbers": [1, 2], "descending": True}}])}
    assert TASK.leaks_answer(booleans, "call sort with 1 and 2 and descending true") is True
    assert TASK.leaks_answer(booleans, "call sort with 1 and 2") is False


# ------------------------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------------------------
def test_load_generated():
    ds = TASK.load(split="test", n=12, seed=3, source="generated")
    assert len(ds) == 12
    assert set(ds.column_names) == {"id", "query", "tools", "answers"}
    assert ds.features["tools"].dtype == "string" and ds.features["answers"].dtype == "string"
    for row in ds:
        assert TASK.verify(row, TASK.reference_answer(row)).passed


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


@pytest.mark.parametrize("parsed", [False, True])
def test_load_local_jsonl(tmp_path, parsed):
    rows = TASK.generate(20, seed=5)
    if parsed:
        rows = [dict(r, tools=json.loads(r["tools"]), answers=json.loads(r["answers"])) for r in rows]
    source = _write_jsonl(tmp_path / "data.jsonl", rows)
    ds = TASK.load(source=source)
    assert len(ds) == 20
    assert ds.features["answers"].dtype == "string" and ds.features["tools"].dtype == "string"
    by_id = {r["id"]: r for r in rows}
    for row in ds:
        assert json.loads(row["answers"]) == (
            by_id[row["id"]]["answers"] if parsed else json.loads(by_id[row["id"]]["answers"])
        )
        assert TASK.verify(row, TASK.reference_answer(row)).passed
    subset = TASK.load(source=source, n=5, seed=1)
    assert len(subset) == 5 and list(subset["id"]) == list(TASK.load(source=source, n=5, seed=1)["id"])


def test_load_file_missing_answers(tmp_path):
    rows = [{"id": r["id"], "query": r["query"], "tools": r["tools"]} for r in TASK.generate(3)]
    with pytest.raises(TaskDataError) as info:
        TASK.load(source=_write_jsonl(tmp_path / "no_answers.jsonl", rows))
    assert "answers" in str(info.value) and "query" in str(info.value) and "tools" in str(info.value)


def test_load_hub_offline_is_a_readable_error():
    with pytest.raises(TaskDataError) as info:
        TASK.load(split="test", n=10)
    message = str(info.value)
    assert "xlam-function-calling-60k" in message
    assert "accept the terms at https://huggingface.co/datasets/Salesforce/xlam-function-calling-60k" in message
    assert "source='generated'" in message


def test_load_hub_gated_hint_is_specific(monkeypatch):
    def gated(source, split):
        raise TaskDataError(
            f"cannot load dataset {source!r} split {split!r}: GatedRepoError: 401 Client Error."
            " The dataset is gated: accept its terms on the hub and run `huggingface-cli login` (or set HF_TOKEN)."
        )

    monkeypatch.setattr(task_base, "_load_dataset_source", gated)
    with pytest.raises(TaskDataError) as info:
        TASK.load()
    message = str(info.value)
    assert "accept the terms at https://huggingface.co/datasets/Salesforce/xlam-function-calling-60k" in message
    assert "accept its terms on the hub" not in message


def test_hub_splits_are_disjoint_deterministic_carve_outs(monkeypatch):
    import datasets

    total = HUB_TEST_ROWS + 500
    rows = [{"id": i, "query": f"q{i}", "tools": "[]", "answers": "[]"} for i in range(total)]
    fake = datasets.Dataset.from_list(rows)
    calls = []

    def fake_load(source, split):
        calls.append((source, split))
        return fake

    monkeypatch.setattr(task_base, "_load_dataset_source", fake_load)
    train, test = TASK.load(split="train"), TASK.load(split="test")
    assert calls == [(HUB_SOURCE, "train"), (HUB_SOURCE, "train")]
    assert len(train) == 500 and len(test) == HUB_TEST_ROWS
    assert list(test["id"]) == list(range(500, total))
    assert set(train["id"]).isdisjoint(test["id"])
    sample = TASK.load(split="test", n=50, seed=4)
    assert list(sample["id"]) == list(TASK.load(split="test", n=50, seed=4)["id"])
    assert set(sample["id"]) <= set(test["id"])
    with pytest.raises(TaskDataError):
        TASK.load(split="validation")
    with pytest.raises(TaskDataError):
        TASK.load(split="train", n=501)


def test_prepare_turns_parsed_columns_into_json_strings():
    import datasets

    ds = datasets.Dataset.from_list(
        [{"query": "q", "tools": [{"name": "f", "parameters": {"x": 1}}], "answers": [{"name": "f", "arguments": {}}]}]
    )
    prepared = TASK.prepare(ds)
    assert json.loads(prepared[0]["answers"]) == [{"name": "f", "arguments": {}}]
    assert isinstance(prepared[0]["tools"], str)
    already = datasets.Dataset.from_list([{"query": "q", "tools": "[]", "answers": "[]"}])
    assert TASK.prepare(already) is already


# ------------------------------------------------------------------------------------------------------------------
# Throughput (a loose floor; the measured rate on one core is far higher)
# ------------------------------------------------------------------------------------------------------------------
def test_verification_throughput():
    rows = TASK.generate(200, seed=11)
    completions = [
        TASK.reference_answer(r) if i % 2 else wrap(json.loads(r["answers"])[:1]) for i, r in enumerate(rows)
    ]
    start = time.perf_counter()
    for _ in range(10):
        for row, completion in zip(rows, completions):
            TASK.verify(row, completion)
    rate = 2000 / (time.perf_counter() - start)
    assert rate > 2000, f"{rate:.0f} verifications/s"
