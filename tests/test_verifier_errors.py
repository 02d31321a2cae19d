"""A user verifier that raises or returns the wrong type is a failed verdict, logged once, and counted."""

from __future__ import annotations

import logging

import pytest

from rrr.tasks import Task, Verdict, VerifierErrorRate, check_verifier_error_rate, get_task, safe_verify


class _Raising(Task):
    name = "raising"

    def attempt_prompt(self, example):
        return "q"

    def verify(self, example, completion):
        if completion == "ok":
            return Verdict(True, "fine")
        raise RuntimeError("boom " * 100)


class _IllTyped(Task):
    name = "ill_typed"

    def attempt_prompt(self, example):
        return "q"

    def verify(self, example, completion):
        return 1.0


def test_verdict_keeps_positional_construction_and_defaults_error_to_none():
    v = Verdict(False, "no <answer> tag")
    assert v.error is None and not v and v.reason == "no <answer> tag"


def test_raising_verifier_becomes_failed_verdict_with_class_in_reason():
    v = safe_verify(_Raising(), {}, "bad")
    assert v.passed is False
    assert v.error == "RuntimeError"
    assert v.reason.startswith("verifier error: RuntimeError: boom")
    assert len(v.reason) < 200  # the message is shortened, not the whole 500-character text
    assert safe_verify(_Raising(), {}, "ok") == Verdict(True, "fine")


def test_ill_typed_return_becomes_failed_verdict():
    v = safe_verify(_IllTyped(), {}, "x")
    assert v.passed is False and v.error == "TypeError"
    assert "float" in v.reason and v.reason.startswith("verifier error: TypeError")


def test_logged_once_per_task_and_exception_class(caplog):
    class _Once(_Raising):
        pass

    class _Other(Task):
        name = "other"

        def attempt_prompt(self, example):
            return "q"

        def verify(self, example, completion):
            raise KeyError(completion)

    with caplog.at_level(logging.WARNING, logger="rrr.tasks.base"):
        for _ in range(5):
            safe_verify(_Once(), {}, "bad")
            safe_verify(_Other(), {}, "k")
    records = [r for r in caplog.records if "verifier error" in r.getMessage()]
    assert len(records) == 2
    assert all(r.exc_info is not None for r in records)  # the traceback is in the log
    assert {r.getMessage().split(" in task ")[1].split()[0] for r in records} == {"'raising'", "'other'"}


def test_builtin_verifiers_never_report_an_error_on_hostile_text():
    for name in ("countdown", "scheduling", "scheduling_min_rooms"):
        task = get_task(name)
        ex = task.generate(1, seed=0)[0]
        for text in ["", "<answer>", "<answer>\x00</answer>", "İ" * 1000 + "<answer>1</answer>", "9**9**9"]:
            assert safe_verify(task, ex, text).error is None


def test_error_rate_check():
    check_verifier_error_rate(0, 0, 0.05, "eval")
    check_verifier_error_rate(5, 100, 0.05, "eval")  # at the limit: fine
    with pytest.raises(VerifierErrorRate, match=r"eval: 6 of 100 .*max_verifier_error_rate"):
        check_verifier_error_rate(6, 100, 0.05, "eval")
    check_verifier_error_rate(100, 100, 1.0, "eval")  # 1.0 never stops
