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


# ------------------------------------------------------------------------------------------------------------------
# Evaluation counts verifier errors and stops past max_verifier_error_rate
# ------------------------------------------------------------------------------------------------------------------
class FlakyTask(Task):
    """Every ``every``-th example's verifier raises (0 = never); the model's answer is always wrong otherwise."""

    name = "flaky"
    required_columns = ("key",)

    def __init__(self, every: int = 0):
        self.every = every

    def attempt_prompt(self, example):
        return f"key {example['key']}"

    def verify(self, example, completion):
        if self.every and example["key"] % self.every == 0:
            raise ZeroDivisionError("user verifier bug")
        return Verdict(False, "wrong")

    def leaks_answer(self, example, reflection):
        return False

    def generate(self, n, seed=0, split="train"):
        return [{"id": f"{split}-{i}", "key": i} for i in range(n)]


class ConstantGenerator:
    def generate(self, conversations, params):
        from rrr.generation.base import Generation

        return [Generation(text="nope") for _ in conversations]


def _eval(tmp_path, n, every, **kwargs):
    from rrr.evaluation import EvalConfig, evaluate

    config = EvalConfig(
        task="test_verifier_errors:FlakyTask", task_kwargs={"every": every}, n=n, source="generated", **kwargs
    )
    return evaluate(ConstantGenerator(), config, str(tmp_path / f"eval-{n}-{every}"), progress=False)


def test_evaluation_counts_verifier_errors_in_results_and_table(tmp_path):
    import json
    import os

    res = _eval(tmp_path, 20, every=4, max_verifier_error_rate=1.0)  # keys 0, 4, 8, 12, 16 raise
    m = res["metrics"]
    assert m["verifications"] == 40  # a failed attempt and its retry per example
    assert m["verifier_errors"] == 10
    assert m["first_try"]["k"] == 0
    out = tmp_path / "eval-20-4"
    with open(os.path.join(out, "results.json")) as f:
        assert json.load(f)["metrics"]["verifier_errors"] == 10
    with open(os.path.join(out, "results.md")) as f:
        assert "| 10 / 40 |" in f.read()
    with open(os.path.join(out, "samples.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert rows[0]["attempt_reason"].startswith("verifier error: ZeroDivisionError: user verifier bug")


def test_evaluation_stops_past_the_error_rate_and_not_below(tmp_path):
    import os

    with pytest.raises(VerifierErrorRate, match=r"evaluation of task 'flaky'.*max_verifier_error_rate"):
        _eval(tmp_path, 150, every=10)  # 10% of verifications (300) fail, above the 5% default
    assert not os.path.exists(tmp_path / "eval-150-10" / "results.json")  # an unfinished evaluation, not a result
    # raising the limit resumes the same evaluation (the limit is not part of what is evaluated)
    resumed = _eval(tmp_path, 150, every=10, max_verifier_error_rate=0.2)
    assert resumed["metrics"]["verifier_errors"] == 30 and resumed["timing"]["resumed"] == 128
    assert _eval(tmp_path, 150, every=50)["metrics"]["verifier_errors"] == 6  # 2%: reported, not fatal
    assert _eval(tmp_path, 20, every=1)["metrics"]["verifier_errors"] == 40  # below 200 verifications: not judged


def test_eval_config_rejects_a_bad_rate():
    from rrr.evaluation import EvalConfig

    with pytest.raises(ValueError, match="max_verifier_error_rate"):
        EvalConfig(max_verifier_error_rate=1.5)


def test_mining_never_mines_a_verifier_error_as_a_failure():
    from rrr.evaluation.mining import MiningConfig, mine_failures

    task = FlakyTask(every=2)
    kept, report = mine_failures(task, ConstantGenerator(), task.generate(10), MiningConfig(k=2), progress=False)
    assert [row["key"] for row in kept] == [1, 3, 5, 7, 9]
    assert report["verifier_errors"] == 10
    with pytest.raises(VerifierErrorRate):
        mine_failures(task, ConstantGenerator(), task.generate(200), MiningConfig(k=2), progress=False)


def test_builtin_verifiers_mark_their_own_last_resort_catch_as_an_error(monkeypatch):
    from rrr.tasks import countdown, scheduling
    from rrr.tasks.apigen import task as apigen_task  # APIGenTask.verify looks _extract_calls up there

    def boom(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(countdown, "check_expression", boom)
    monkeypatch.setattr(apigen_task, "_extract_calls", boom)
    monkeypatch.setattr(scheduling, "last_answer", boom)
    for name in ("countdown", "apigen", "scheduling"):
        task = get_task(name)
        verdict = safe_verify(task, task.generate(1, seed=0)[0], "<answer>1</answer>")
        assert not verdict.passed and verdict.error == "RuntimeError", (name, verdict)
        assert verdict.reason.startswith("verifier error: RuntimeError")


def test_a_raising_leak_check_counts_as_no_leak_and_the_episode_finishes():
    from rrr.episode import EpisodeConfig, run_episodes
    from rrr.generation import HFGenerator, SamplingParams
    from rrr.models import build_tiny_model, build_tiny_tokenizer
    from rrr.tasks.base import Task, Verdict

    class BrokenLeakCheck(Task):
        name = "broken-leak"

        def attempt_prompt(self, example):
            return "x"

        def verify(self, example, completion):
            return Verdict(False, "always")

        def leaks_answer(self, example, reflection):
            raise KeyError("answer")

    tok = build_tiny_tokenizer()
    config = EpisodeConfig(attempt=SamplingParams(2), reflection=SamplingParams(2), retry=SamplingParams(2, 0.0))
    (episode,) = run_episodes(BrokenLeakCheck(), HFGenerator(build_tiny_model(tok), tok), [{"id": 0}], config)
    assert episode.reflections and episode.reflections[0].leaked is False
