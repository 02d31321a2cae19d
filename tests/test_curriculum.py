"""Stages 1-2 of the curriculum pipeline, offline: the oracle teacher on scheduling, an LLM teacher over a loopback
HTTP server, a user's own Task, re-runs that make no teacher calls, and clear errors."""

from __future__ import annotations

import json
import os
import re

import datasets
import pytest
from http_fakes import FakeChatServer

from rrr.curriculum import run_knowledge_transfer, wilson_interval
from rrr.curriculum.dataset import CurriculumConfig, CurriculumError, balance_by_label, build_curriculum
from rrr.curriculum.self_improve import SelfImproveConfig, self_improve
from rrr.curriculum.teachers import OpenAICompatibleTeacher, OracleTeacher
from rrr.tasks import Task, Verdict, get_task, last_answer
from rrr.tasks.scheduling import closed_overlap, max_overlap

QUIET = dict(progress=False)


def run_oracle(out, **kw):
    options = dict(task_kwargs={"strict": True}, num_train=12, num_test=12, batch_size=4, distill_every=2, **QUIET)
    options.update(kw)
    return run_knowledge_transfer("scheduling", "oracle", None, str(out), **options)


# ------------------------------------------------------------------------------------------------------------------
# The oracle teacher on scheduling
# ------------------------------------------------------------------------------------------------------------------
def test_oracle_pipeline_saves_strategies_journal_and_verified_curriculum(tmp_path):
    summary = run_oracle(tmp_path / "run")
    out = tmp_path / "run"
    task = get_task("scheduling", strict=True)

    # stage 1: every batch, every journal entry, every strategy version (distilled after batches 2 and 3)
    stage1 = out / "self_improve"
    batches = json.loads((stage1 / "batches.json").read_text())
    assert [b["n"] for b in batches] == [4, 4, 4] and all(b["accuracy"] == 1.0 for b in batches)
    strategies = json.loads((stage1 / "strategies.json").read_text())
    assert [(s["version"], s["after_batch"]) for s in strategies] == [(0, 0), (1, 2), (2, 3)]
    assert strategies[0]["text"].startswith("1. Find which meetings overlap")  # Linguistic RL's initial strategy
    assert "start <= t < end" in strategies[-1]["text"]
    assert sorted(os.listdir(stage1 / "strategies")) == ["v0.md", "v1.md", "v2.md"]
    assert (stage1 / "journal.md").read_text().count("## Batch") == 3
    assert len((stage1 / "attempts.jsonl").read_text().splitlines()) == 12

    # stage 2: solutions the verifier accepts, balanced; reflections that do not leak and whose retry passed
    sft = datasets.load_from_disk(str(out / "curriculum" / "sft"))
    assert len(sft) == summary["curriculum"]["sft_rows"] > 0
    labels = []
    for row in sft:
        example = json.loads(row["example_json"])
        assert row["prompt"] == task.attempt_messages(example)  # the task's own prompt (no strategy by default)
        completion = row["completion"][0]["content"]
        assert row["completion"][0]["role"] == "assistant" and "Meetings running at each start time" in completion
        assert task.verify(example, completion).passed
        labels.append(last_answer(completion))
    assert labels.count("YES") == labels.count("NO")
    reflections = datasets.load_from_disk(str(out / "curriculum" / "reflection"))
    assert len(reflections) == summary["curriculum"]["reflection_rows"] > 0
    for row in reflections:
        example = json.loads(row["example_json"])
        attempt = row["prompt"][-2]["content"]
        assert row["prompt"] == task.reflection_messages(example, attempt)
        assert not task.verify(example, attempt).passed
        assert not task.leaks_answer(example, row["completion"][0]["content"])
        assert task.verify(example, row["retry"]).passed and row["origin"] == "synthetic"

    # measured on a balanced held-out split, with the majority baseline
    assert summary["test"]["labels"] == {"NO": 6, "YES": 6} and summary["majority_baseline"] == 0.5
    assert summary["accuracy"]["teacher_baseline"]["acc"] == 1.0 and summary["accuracy"]["teacher_after"]["acc"] == 1.0
    assert "student_baseline" not in summary["accuracy"]
    markdown = (out / "summary.md").read_text()
    assert (
        "| majority-class baseline | 50.0% |" in markdown and "teacher after self-improvement (strategy v2)" in markdown
    )
    assert json.loads((out / "summary.json").read_text())["teacher_usage"]["calls"] == summary["teacher_usage"]["calls"]
    assert summary["teacher_usage"]["calls"] > 0


def test_second_run_makes_no_teacher_calls(tmp_path):
    first = run_oracle(tmp_path / "run")
    before = datasets.load_from_disk(str(tmp_path / "run" / "curriculum" / "sft"))
    second = run_oracle(tmp_path / "run")
    assert first["teacher_usage"]["calls"] > 0
    assert second["teacher_usage"]["calls"] == 0
    assert (
        second["teacher_usage"]["cache_hits"] == first["teacher_usage"]["calls"] + first["teacher_usage"]["cache_hits"]
    )
    after = datasets.load_from_disk(str(tmp_path / "run" / "curriculum" / "sft"))
    assert before.to_list() == after.to_list()


def test_strategy_in_prompt_is_an_option(tmp_path):
    summary = run_oracle(tmp_path / "run", curriculum={"strategy_in_prompt": True, "reflections": False})
    row = datasets.load_from_disk(str(tmp_path / "run" / "curriculum" / "sft"))[0]
    assert row["prompt"][0]["role"] == "system"
    assert row["prompt"][0]["content"] == "Strategy:\n" + summary["self_improve"]["final_strategy"]
    assert summary["curriculum"]["reflection_path"] is None


# ------------------------------------------------------------------------------------------------------------------
# An LLM teacher over HTTP (a fake OpenAI-compatible server on loopback)
# ------------------------------------------------------------------------------------------------------------------
def scheduling_llm(body: dict) -> str:
    """A fake LLM: counts touching meetings as clashing until its strategy says otherwise."""
    task = get_task("scheduling", strict=True)
    messages = body["messages"]
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    last = messages[-1]["content"]
    if "learning journal" in last:
        return "Journal: meetings that only touch were counted as clashing; count them as not overlapping."
    if "Distill the journal" in last:
        return "1. SWEEP: list the meetings running at each start time (touching meetings do not clash)."
    if system.startswith("You are a tutor"):
        return "I counted meetings that only touch as clashing. I will list the meetings running at each start time."
    first_user = next(m["content"] for m in messages if m["role"] == "user")
    meetings = [[int(a), int(b)] for a, b in re.findall(r"\[(\d+)-(\d+)\]", first_user.split("\n")[0])]
    example = {"meetings": meetings, "rooms": int(re.search(r"Rooms available: (\d+)", first_user).group(1))}
    if "SWEEP" in system or last.startswith("Using your reflection"):
        return task.worked_solution(example)
    peak = closed_overlap(meetings)  # the naive strategy's mistake
    return f"peak: {peak}\n<answer>{'YES' if peak <= example['rooms'] else 'NO'}</answer>"


def test_llm_teacher_improves_and_feeds_the_curriculum_over_http(tmp_path):
    with FakeChatServer(reply=scheduling_llm) as server:
        teacher = OpenAICompatibleTeacher(server.base_url, "fake-llm", api_key_env="RRR_NO_KEY", backoff=0.01)
        summary = run_knowledge_transfer(
            "scheduling", teacher, None, str(tmp_path / "run"), task_kwargs={"strict": True},
            num_train=12, num_test=30, batch_size=4, distill_every=2, **QUIET,
        )  # fmt: skip
        requests = len(server.requests)
        bodies = [r["json"]["messages"] for r in server.requests]
        # a re-run with a fresh teacher object costs nothing
        again = OpenAICompatibleTeacher(server.base_url, "fake-llm", api_key_env="RRR_NO_KEY")
        second = run_knowledge_transfer(
            "scheduling", again, None, str(tmp_path / "run"), task_kwargs={"strict": True},
            num_train=12, num_test=30, batch_size=4, distill_every=2, **QUIET,
        )  # fmt: skip
        assert len(server.requests) == requests and second["teacher_usage"]["calls"] == 0

    task = get_task("scheduling", strict=True)
    solve = next(b for b in bodies if b[0]["role"] == "system" and "CURRENT STRATEGY" in b[0]["content"])
    assert "1. Find which meetings overlap" in solve[0]["content"]
    assert solve[1]["content"].startswith("Meetings (start-end, in whole hours):")  # the task's own attempt prompt
    journal = next(b[0]["content"] for b in bodies if "learning journal" in b[0]["content"])
    assert re.search(r"got \d+ right", journal) and "WRONG (verifier:" in journal

    acc = summary["accuracy"]
    assert acc["teacher_after"]["acc"] == 1.0 > acc["teacher_baseline"]["acc"]
    assert summary["self_improve"]["final_strategy"].startswith("1. SWEEP")
    assert summary["teacher_usage"]["prompt_tokens"] > 0 and summary["teacher_usage"]["estimated_cost_usd"] is None
    reflections = datasets.load_from_disk(str(tmp_path / "run" / "curriculum" / "reflection"))
    assert "teacher" in set(reflections["origin"])  # the teacher's own stage-1 failures
    for row in reflections:
        assert task.verify(json.loads(row["example_json"]), row["retry"]).passed


# ------------------------------------------------------------------------------------------------------------------
# A user's own task
# ------------------------------------------------------------------------------------------------------------------
class ParityTask(Task):
    """Is the sum of the digits even? A user task: only attempt_prompt, verify, reference/worked solution, data."""

    name = "parity"
    required_columns = ("number",)

    def attempt_prompt(self, example):
        return f"Is the digit sum of {example['number']} EVEN or ODD? Answer in <answer></answer>."

    def label(self, example) -> str:
        return "EVEN" if sum(int(d) for d in str(example["number"])) % 2 == 0 else "ODD"

    def verify(self, example, completion):
        answer = last_answer(completion)
        return Verdict(answer == self.label(example), f"answered {answer!r}")

    def reference_answer(self, example):
        return f"<answer>{self.label(example)}</answer>"

    def worked_solution(self, example):
        digits = " + ".join(str(example["number"]))
        total = sum(int(d) for d in str(example["number"]))
        return f"{digits} = {total}, which is {self.label(example).lower()}.\n{self.reference_answer(example)}"

    def majority_baseline(self, examples):
        labels = [self.label(ex) for ex in examples]
        return max(labels.count("EVEN"), labels.count("ODD")) / len(labels)

    def generate(self, n, seed=0, split="train"):
        offset = 0 if split == "train" else 10_000
        return [{"id": f"{split}-{seed}-{i}", "number": offset + 37 * (i + 7 * seed) + 11} for i in range(n)]


def test_user_task_runs_through_stages_1_and_2(tmp_path):
    task = ParityTask()
    summary = run_knowledge_transfer(task, "oracle", None, str(tmp_path / "run"), num_train=8, num_test=10, **QUIET)
    assert summary["task"] == "parity"
    assert summary["accuracy"]["teacher_after"]["acc"] == 1.0
    assert summary["majority_baseline"] == 0.5 and sum(summary["test"]["labels"].values()) == summary["test"]["n"]
    sft = datasets.load_from_disk(str(tmp_path / "run" / "curriculum" / "sft"))
    assert all(task.verify(json.loads(r["example_json"]), r["completion"][0]["content"]).passed for r in sft)
    reflections = datasets.load_from_disk(str(tmp_path / "run" / "curriculum" / "reflection"))
    assert len(reflections) > 0
    for row in reflections:  # generic mistakes and lessons for a task the oracle knows nothing about
        assert row["completion"][0]["content"].startswith("My answer was wrong")
    strategies = json.loads((tmp_path / "run" / "self_improve" / "strategies.json").read_text())
    assert strategies[0]["text"].startswith("1. Read the problem carefully")


# ------------------------------------------------------------------------------------------------------------------
# Pieces and errors
# ------------------------------------------------------------------------------------------------------------------
def test_empty_curriculum_is_a_clear_error(tmp_path):
    class Wrong(OracleTeacher):
        def solve_many(self, task, examples, strategy):
            return ["no idea"] * len(examples)

    task = get_task("scheduling")
    with pytest.raises(CurriculumError, match="none of the teacher's 4 curriculum solutions passed"):
        build_curriculum(task, Wrong(task), task.generate(4), "s", str(tmp_path), CurriculumConfig(progress=False))
    assert not os.path.exists(tmp_path / "sft")


def test_bad_inputs_fail_early(tmp_path):
    with pytest.raises(ValueError, match="unknown teacher spec"):
        run_knowledge_transfer("scheduling", "gpt-5", None, str(tmp_path), **QUIET)
    with pytest.raises(ValueError, match="num_train"):
        run_knowledge_transfer("scheduling", "oracle", None, str(tmp_path), num_train=0, **QUIET)
    with pytest.raises(ValueError, match="unknown task"):
        run_knowledge_transfer("no_such_task", "oracle", None, str(tmp_path), **QUIET)
    with pytest.raises(ValueError, match="batch_size"):
        SelfImproveConfig(batch_size=0)
    with pytest.raises(ValueError, match="at least one"):
        self_improve(get_task("scheduling"), OracleTeacher(), [], str(tmp_path))


def test_distillation_schedule_and_final_distill(tmp_path):
    task = get_task("scheduling")
    result = self_improve(
        task,
        OracleTeacher(task),
        task.generate(9),
        str(tmp_path),
        SelfImproveConfig(batch_size=2, distill_every=2, progress=False),
    )
    # batches of 2,2,2,2,1: distilled after batches 2 and 4, and once more after the last one
    assert [b["n"] for b in result.batches] == [2, 2, 2, 2, 1]
    assert [s["after_batch"] for s in result.strategies] == [0, 2, 4, 5]
    assert [b["strategy_version"] for b in result.batches] == [0, 0, 1, 1, 2]


def test_balance_by_label_and_wilson():
    task = get_task("scheduling")
    examples = [ex for ex in task.generate(40) if max_overlap(ex["meetings"]) <= ex["rooms"]][:9]
    examples += [ex for ex in task.generate(40) if max_overlap(ex["meetings"]) > ex["rooms"]][:3]
    kept, before, after = balance_by_label(task, examples, seed=0)
    assert before == {"YES": 9, "NO": 3} and after == {"YES": 3, "NO": 3} and len(kept) == 6
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0) and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    low, high = wilson_interval(132, 150)  # the Linguistic RL always-YES score
    assert low == pytest.approx(0.818, abs=1e-3) and high == pytest.approx(0.923, abs=1e-3)


def test_task_hooks_shape_the_oracle_curriculum_and_retry_rows_teach_using_a_reflection(tmp_path):
    """A task's ``witness_reflection`` / ``synthesize_failure`` hooks replace the oracle's generic texts, and
    ``retry_rows`` adds, after each kept reflection, the retry with that reflection in context."""
    from rrr.tasks.scheduling_demo import DemoSchedulingTask, check_witness

    task = DemoSchedulingTask()
    examples = task.generate(40, seed=1, split="train")
    result = build_curriculum(
        task,
        OracleTeacher(task),
        examples,
        strategy="",
        output_dir=str(tmp_path / "cur"),
        config=CurriculumConfig(balance=False, retry_rows=True, synthetic_failures=20, progress=False),
    )
    rows = list(datasets.load_from_disk(result.reflection_path))
    reflections = [r for r in rows if r["origin"] == "synthetic"]
    retries = [r for r in rows if r["origin"] == "synthetic-retry"]
    assert len(reflections) == len(retries) == 20 and result.stats["reflection_rows"] == 40
    for reflection, retry in zip(reflections, retries):
        example = json.loads(reflection["example_json"])
        attempt = reflection["prompt"][-2]["content"]
        witness = reflection["completion"][0]["content"]
        assert re.fullmatch(r"<answer>\d</answer>", attempt) and not task.verify(example, attempt).passed
        assert check_witness(example, witness) == "peak" and not task.leaks_answer(example, witness)
        assert retry["prompt"] == task.retry_messages(example, attempt, witness)
        assert task.verify(example, retry["completion"][0]["content"]).passed
