"""Scheduling task: overlap counting, the balanced generator, the (strict) verifier, leakage, loading, registry."""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrr.tasks import TaskDataError, Verdict, get_task
from rrr.tasks import scheduling as scheduling_module
from rrr.tasks.scheduling import (
    DAY_END,
    DAY_START,
    MAX_DURATION,
    MIN_DURATION,
    MinRoomsSchedulingTask,
    SchedulingTask,
    closed_overlap,
    format_meetings,
    majority_baseline,
    max_overlap,
    naive_adjacent_peak,
    naive_is_wrong,
    surface_signature,
)

CHAIN = {"meetings": [[9, 11], [10, 12], [11, 13]], "rooms": 2}  # peak 2 (9-11 and 11-13 only touch) -> YES
CROWD = {"meetings": [[8, 12], [9, 10], [10, 12], [11, 13]], "rooms": 2}  # peak 3 at 11 -> NO

plain = SchedulingTask()
strict = SchedulingTask(strict=True)
min_rooms = MinRoomsSchedulingTask()
TASKS = [plain, strict, min_rooms, MinRoomsSchedulingTask(strict=True)]


@pytest.fixture(scope="module")
def generated() -> dict[str, list[dict]]:
    return {split: plain.generate(600, seed=0, split=split) for split in ("train", "test")}


# ----------------------------------------------------------------------------------------------------------------
# Pure helpers
# ----------------------------------------------------------------------------------------------------------------
meeting_lists = st.lists(
    st.tuples(st.integers(0, 30), st.integers(1, 6)).map(lambda sd: [sd[0], sd[0] + sd[1]]), max_size=12
)


def brute_force_peak(meetings) -> int:
    """Count meetings running at every half hour (integer endpoints: half hours see every distinct state)."""
    if not meetings:
        return 0
    lo, hi = min(s for s, _ in meetings), max(e for _, e in meetings)
    return max(sum(s <= t + 0.5 < e for s, e in meetings) for t in range(lo, hi))


@given(meeting_lists)
@settings(max_examples=300, deadline=None)
def test_max_overlap_matches_brute_force(meetings):
    assert max_overlap(meetings) == brute_force_peak(meetings)
    assert max_overlap(meetings) <= closed_overlap(meetings)
    assert (naive_adjacent_peak(meetings) == 0) == (not meetings)


def test_touching_meetings_do_not_overlap():
    assert max_overlap([[9, 10], [10, 11]]) == 1
    assert max_overlap([[10, 11], [9, 10]]) == 1
    assert closed_overlap([[9, 10], [10, 11]]) == 2  # the mistake the generator sets traps for
    assert max_overlap([[9, 11], [10, 12]]) == 2
    assert max_overlap([]) == 0


def test_naive_adjacent_peak_over_and_undercounts():
    assert naive_adjacent_peak(CHAIN["meetings"]) == 3 and max_overlap(CHAIN["meetings"]) == 2  # chain
    assert naive_adjacent_peak(CROWD["meetings"]) == 2 and max_overlap(CROWD["meetings"]) == 3  # nested break
    assert naive_adjacent_peak([[9, 12], [9, 12]]) == 2 == max_overlap([[9, 12], [9, 12]])
    assert naive_is_wrong(CHAIN["meetings"], 2) and naive_is_wrong(CROWD["meetings"], 2)


def test_format_meetings():
    assert format_meetings([[9, 11], (10, 12)]) == "[9-11], [10-12]"


# ----------------------------------------------------------------------------------------------------------------
# Generator
# ----------------------------------------------------------------------------------------------------------------
def test_generator_is_deterministic_and_splits_differ(generated):
    assert plain.generate(60, seed=0, split="train") == plain.generate(60, seed=0, split="train")
    assert plain.generate(60, seed=0, split="train") != plain.generate(60, seed=1, split="train")
    keys = {split: {tuple(map(tuple, r["meetings"])) for r in rows} for split, rows in generated.items()}
    assert keys["train"].isdisjoint(keys["test"])  # held-out pool: no test problem is ever a training problem
    ids = [r["id"] for r in generated["train"]]
    assert len(set(ids)) == len(ids)


def test_generator_output_is_pinned():
    """Same data on every machine and Python process (no salted ``hash()``); a deliberate change updates the pin."""
    rows = plain.generate(12, seed=0, split="train")
    assert rows[0]["meetings"] == [[13, 16], [13, 17], [13, 17], [15, 17], [17, 19]] and rows[0]["rooms"] == 3
    assert hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16] == "22c5ad17521f4f10"


@pytest.mark.parametrize("split", ["train", "test"])
def test_generator_balance_and_tight_rooms(generated, split):
    rows = generated[split]
    assert Counter(r["difficulty"] for r in rows) == {"easy": 200, "medium": 200, "hard": 200}
    assert Counter((r["difficulty"], r["answer"]) for r in rows) == {
        (d, a): 100 for d in ("easy", "medium", "hard") for a in ("YES", "NO")
    }
    assert majority_baseline(rows) == 0.5 == plain.majority_baseline(rows)
    sizes = {"easy": (3, 3), "medium": (4, 5), "hard": (6, 8)}
    for r in rows:
        peak = max_overlap(r["meetings"])
        assert r["max_overlap"] == peak
        assert r["answer"] == ("YES" if peak <= r["rooms"] else "NO")
        assert r["rooms"] in (peak, peak - 1) and r["rooms"] >= 1
        lo, hi = sizes[r["difficulty"]]
        assert lo <= len(r["meetings"]) <= hi
        for s, e in r["meetings"]:
            assert DAY_START <= s < e <= DAY_END and MIN_DURATION <= e - s <= MAX_DURATION
    hard = [r for r in rows if r["difficulty"] == "hard"]
    assert sum(naive_is_wrong(r["meetings"], r["rooms"]) for r in hard) / len(hard) >= 0.4
    for label in ("YES", "NO"):  # the naive heuristic is fooled on both labels, not only one
        group = [r for r in hard if r["answer"] == label]
        assert sum(naive_is_wrong(r["meetings"], r["rooms"]) for r in group) / len(group) >= 0.4
    touching = [r for r in rows if {e for _, e in r["meetings"]} & {s for s, _ in r["meetings"]}]
    assert len(touching) / len(rows) >= 0.25
    touch_traps = [r for r in rows if r["answer"] == "YES" and closed_overlap(r["meetings"]) > r["rooms"]]
    assert len(touch_traps) / len(rows) >= 0.1


def _surface(meetings) -> tuple:
    """Everything a prompt shows without comparing meetings: count, span, meeting-hours, the sorted durations."""
    return (len(meetings), *surface_signature(meetings), tuple(sorted(e - s for s, e in meetings)))


@pytest.mark.parametrize("split", ["train", "test"])
def test_surface_statistics_are_distributed_alike_for_every_answer(generated, split):
    """Within each (difficulty, rooms) cell, YES and NO have the same multiset of counts, spans, hours, durations."""
    by_cell: dict = {}
    for r in generated[split]:
        cell = by_cell.setdefault((r["difficulty"], r["rooms"]), {"YES": Counter(), "NO": Counter()})
        cell[r["answer"]][_surface(r["meetings"])] += 1
    for cell, labels in by_cell.items():
        assert labels["YES"] == labels["NO"], cell
    # min-rooms: within each difficulty every answer has the same multiset (180 per difficulty: whole groups)
    rows = min_rooms.generate(540, seed=0, split=split)
    per: dict = {}
    for r in rows:
        per.setdefault(r["difficulty"], {}).setdefault(r["answer"], Counter())[_surface(r["meetings"])] += 1
    assert {d: sorted(answers) for d, answers in per.items()} == {
        "easy": ["1", "2"], "medium": ["1", "2", "3"], "hard": ["2", "3", "4"]
    }  # fmt: skip
    for difficulty, answers in per.items():
        first, *others = answers.values()
        assert all(other == first for other in others), difficulty


@pytest.mark.parametrize("task", [plain, min_rooms], ids=["yes_no", "min_rooms"])
def test_surface_baseline_stays_within_5pp_of_the_majority_baseline(task):
    rows = task.generate(1200, seed=3, split="test")
    surface, majority = task.surface_baseline(rows), task.majority_baseline(rows)
    assert abs(surface - majority) <= 0.05, (surface, majority)
    for difficulty in ("easy", "medium", "hard"):
        sub = [r for r in rows if r["difficulty"] == difficulty]
        assert abs(task.surface_baseline(sub) - task.majority_baseline(sub)) <= 0.05, difficulty
    assert SchedulingTask().surface_baseline is not None and get_task("countdown").surface_baseline(rows) is None


def _density_shortcut_examples(n: int, seed: int, split: str, variant: str = "yes_no") -> list[dict]:
    """The first generator's scheme: rooms and label drawn first, then any window sample with the right peak."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        rooms, label = rng.randint(1, 2), ("YES", "NO")[i % 2]
        target = rooms if label == "YES" else rooms + 1
        for _ in range(100_000):  # three meetings in a 6-hour window reach every peak 1..3 often
            lo = rng.randint(DAY_START, DAY_END - 6)
            meetings = []
            for _ in range(3):
                d = rng.randint(1, 4)
                start = rng.randint(lo, lo + 6 - d)
                meetings.append([start, start + d])
            if max_overlap(meetings) == target:
                break
        rows.append({"meetings": meetings, "rooms": rooms, "difficulty": "easy", "answer": label})
    return rows


def test_surface_baseline_finds_a_density_shortcut(monkeypatch):
    """The baseline is not a constant: fitted on data where crowded days are NO, it beats the majority by far."""
    monkeypatch.setattr(scheduling_module, "generate_examples", _density_shortcut_examples)
    scheduling_module._surface_model.cache_clear()
    try:
        rows = _density_shortcut_examples(600, seed=99, split="test")
        assert plain.majority_baseline(rows) == 0.5
        assert plain.surface_baseline(rows) > 0.65
    finally:
        scheduling_module._surface_model.cache_clear()


def test_surface_baseline_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        plain.surface_baseline([])
    with pytest.raises(ValueError, match="example 1: malformed"):
        plain.surface_baseline([{"meetings": [[9, 10], [9, 11], [12, 13]], "rooms": 1}, {"meetings": "x", "rooms": 1}])


@pytest.mark.parametrize("n", [0, 1, 5, 7, 13])
def test_generator_rounding(n):
    rows = plain.generate(n, seed=3)
    assert len(rows) == n
    labels = Counter(r["answer"] for r in rows)
    assert abs(labels["YES"] - labels["NO"]) <= 1
    counts = Counter(r["difficulty"] for r in rows)
    assert max(counts.values(), default=0) - min((counts[d] for d in ("easy", "medium", "hard")), default=0) <= 1


def test_min_rooms_generator_answers_are_numbers():
    rows = min_rooms.generate(30, seed=0)
    assert all(r["answer"] == str(max_overlap(r["meetings"])) for r in rows)
    assert majority_baseline(rows, variant="min_rooms") == min_rooms.majority_baseline(rows) < 1


def test_majority_baseline_rejects_bad_input():
    assert majority_baseline([{**CHAIN}, {**CHAIN}, {**CROWD}]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="empty"):
        majority_baseline([])
    with pytest.raises(ValueError, match="example 1: malformed"):
        majority_baseline([CHAIN, {"meetings": [[3, 1]], "rooms": 1}])


# ----------------------------------------------------------------------------------------------------------------
# Verification
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", TASKS, ids=repr)
def test_reference_answers_pass(task, generated):
    for row in generated["test"][:300]:
        reference = task.reference_answer(row)
        verdict = task.verify(row, reference)
        assert verdict.passed, (row, reference, verdict)
        assert task.verify({**row, "max_overlap": 99, "answer": "MAYBE"}, reference).passed  # stored columns ignored


def test_reference_answer_format():
    assert plain.reference_answer(CROWD) == "peak: 3\n<answer>NO</answer>"
    assert min_rooms.reference_answer(CROWD) == "peak: 3\n<answer>3</answer>"
    assert plain.reference_answer({"meetings": "bad", "rooms": 1}) is None


def test_flipped_label_fails():
    for example, wrong in ((CHAIN, "NO"), (CROWD, "YES")):
        for task in (plain, strict):
            peak = max_overlap(example["meetings"])
            verdict = task.verify(example, f"peak: {peak}\n<answer>{wrong}</answer>")
            assert not verdict.passed and f"answered {wrong}" in verdict.reason


def test_strict_requires_the_right_peak():
    assert plain.verify(CROWD, "<answer>NO</answer>").passed
    verdict = strict.verify(CROWD, "<answer>NO</answer>")
    assert not verdict.passed and "no 'peak: N' stated" in verdict.reason
    verdict = strict.verify(CROWD, "peak: 2\n<answer>NO</answer>")
    assert verdict == Verdict(False, "peak 2 stated, true peak 3")
    for stated in ("peak: 3", "Peak = 3", "PEAK 3", "the peak is 3", "**Peak:** 3", "peak:3"):
        assert strict.verify(CROWD, f"{stated}\n<answer>NO</answer>").passed, stated
    assert strict.verify(CROWD, "peak: 2 ... no wait, peak: 3 <answer>NO</answer>").passed  # the last one counts
    assert not strict.verify(CROWD, "peak: 3 ... no wait, peak: 2 <answer>NO</answer>").passed
    assert not strict.verify(CROWD, "peaks: 3 <answer>NO</answer>").passed


def test_min_rooms_off_by_one_fails():
    for answer, ok in (("3", True), (" 3. ", True), ("2", False), ("4", False), ("-3", False), ("3 rooms", False)):
        assert min_rooms.verify(CROWD, f"peak: 3 <answer>{answer}</answer>").passed is ok, answer
    assert not min_rooms.verify(CROWD, "<answer>NO</answer>").passed
    strict_min = get_task("scheduling", variant="min_rooms", strict=True)
    assert not strict_min.verify(CROWD, "peak: 2 <answer>3</answer>").passed
    assert strict_min.verify({"meetings": CROWD["meetings"]}, "peak: 3 <answer>3</answer>").passed  # no rooms needed


def test_last_answer_is_judged_and_formats():
    assert plain.verify(CROWD, "<answer>YES</answer> hmm, recount: <answer>NO</answer>").passed
    assert not plain.verify(CROWD, "<answer>NO</answer> hmm, recount: <answer>YES</answer>").passed
    for answer in ("no", " No. ", "**NO**", "'no'", "NO!"):
        assert plain.verify(CROWD, f"<answer>{answer}</answer>").passed, answer
    for answer, reason in (
        ("YES or NO", "not YES or NO"),
        ("MAYBE", "not YES or NO"),
        ("", "empty"),
        (" ** ", "empty"),
    ):
        verdict = plain.verify(CROWD, f"<answer>{answer}</answer>")
        assert not verdict.passed and reason in verdict.reason, answer
    assert plain.verify(CROWD, "The answer is NO").reason == "no <answer> tag"


@pytest.mark.parametrize(
    "example",
    [
        {"meetings": None, "rooms": 2},
        {"meetings": [], "rooms": 2},
        {"meetings": [[10, 9]], "rooms": 2},
        {"meetings": [[9, 9]], "rooms": 2},
        {"meetings": [[9, "10"]], "rooms": 2},
        {"meetings": [[True, 10]], "rooms": 2},
        {"meetings": [[9, 10, 11]], "rooms": 2},
        {"meetings": [[9.5, 10]], "rooms": 2},
        {"meetings": "[[9, 10]]", "rooms": 2},
        {"meetings": [[9, 10]], "rooms": 0},
        {"meetings": [[9, 10]], "rooms": "2"},
        {"meetings": [[9, 10]]},
        {"rooms": 2},
    ],
)
def test_malformed_examples_fail_cleanly(example):
    verdict = plain.verify(example, "peak: 1 <answer>YES</answer>")
    assert not verdict.passed and verdict.reason.startswith("malformed example: ")
    assert plain.leaks_answer(example, "the answer is YES") is False
    assert plain.reference_answer(example) is None
    assert isinstance(plain.attempt_prompt(example), str)


def test_non_dict_example_and_non_string_completion():
    assert not plain.verify(None, "<answer>YES</answer>").passed
    assert not plain.verify(CHAIN, None).passed
    assert not strict.verify(CHAIN, 12345).passed
    assert plain.leaks_answer(CHAIN, None) is False


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_text_never_raises(text):
    for task in TASKS:
        for example in (CHAIN, CROWD):
            assert isinstance(task.verify(example, text), Verdict)
            assert isinstance(task.verify(example, f"peak: {text}<answer>{text}</answer>"), Verdict)
            assert task.leaks_answer(example, text) in (True, False)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)


@given(json_values, json_values)
@settings(max_examples=200, deadline=None)
def test_arbitrary_examples_never_raise(meetings, rooms):
    example = {"meetings": meetings, "rooms": rooms}
    for task in TASKS:
        assert isinstance(task.verify(example, "peak: 2 <answer>YES</answer>"), Verdict)
        assert task.leaks_answer(example, "the answer is YES") in (True, False)
        assert isinstance(task.attempt_prompt(example), str)


@pytest.mark.parametrize(
    "completion",
    [
        "x" * 10_000_000,
        "peak " + " " * 5_000_000 + "<answer>NO</answer>",
        "<answer>" * 1_000_000,
        "<answer>NO</answer>" * 100_000,
        "peak: 99999999999999999999\n<answer>NO</answer>",
        "peak: " + "9" * 5_000 + "\n<answer>NO</answer>",
        "<answer>" + "9" * 10_000 + "</answer>",
        "answer should be " * 500_000,
    ],
    ids=lambda c: repr(c[:20]) + f"...({len(c)})",
)
def test_adversarial_completions_fail_fast(completion):
    for task in TASKS:
        start = time.perf_counter()
        verdict = task.verify(CROWD, completion)
        leaked = task.leaks_answer(CROWD, completion)
        assert time.perf_counter() - start < 1.0
        assert isinstance(verdict, Verdict) and leaked in (True, False)
        if task.strict or task.variant == "min_rooms":
            assert not verdict.passed
    assert "peak 999999999... stated" in strict.verify(CROWD, "peak: 99999999999999999999 <answer>NO</answer>").reason


def test_verification_is_fast(generated):
    rows = generated["train"][:500]
    completions = [f"At 11 three meetings run. {strict.reference_answer(r)}" for r in rows]
    start = time.perf_counter()
    for _ in range(4):
        for row, completion in zip(rows, completions):
            strict.verify(row, completion)
    rate = 2_000 / (time.perf_counter() - start)
    assert rate > 5_000, f"{rate:.0f} verifications/s"  # ~100k/s measured; loose bound for slow CI machines


# ----------------------------------------------------------------------------------------------------------------
# Leakage
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reflection",
    [
        "I miscounted. <answer>NO</answer>",
        "The answer is NO.",
        "answer: no",
        "So the correct answer should be NO because three meetings run at 11.",
        "It should be NO.",
        "I should have said NO",
        "The final answer = 'No'",
        "so it must be no",
    ],
)
def test_leaks_label(reflection):
    assert plain.leaks_answer(CROWD, reflection)
    assert strict.leaks_answer(CROWD, reflection)


@pytest.mark.parametrize(
    "reflection",
    [
        "I missed that [8-12], [10-12] and [11-13] all run at 11, so the peak is 3.",  # the peak is the lesson
        "peak: 3",
        "There should be no double counting of meetings that only touch.",
        "No, I miscounted: [9-10] ends when [10-12] starts, so they never clash.",
        "The answer is YES.",  # the wrong label is not a leak
        "My answer was YES, which was wrong.",  # past tense describes the failed attempt
        "<answer>YES</answer>",
        "the answer is no longer obvious; count at every start time",
        "",
    ],
)
def test_does_not_leak_label(reflection):
    assert not plain.leaks_answer(CROWD, reflection)
    assert not strict.leaks_answer(CROWD, reflection)


def test_leaks_yes_label():
    assert plain.leaks_answer(CHAIN, "the answer is YES")
    assert not plain.leaks_answer(CHAIN, "the answer is NO")


@pytest.mark.parametrize(
    ("reflection", "leaks"),
    [
        ("<answer>3</answer>", True),
        ("The answer is 3.", True),
        ("We need 3 rooms.", True),
        ("3 rooms are required", True),
        ("the minimum number of rooms is 3", True),
        ("peak: 3", True),  # for min-rooms the peak is the answer
        ("The answer is 2.", False),
        ("At 11, [8-12], [10-12] and [11-13] overlap; count every meeting running then.", False),
        ("I forgot that the answer counts meetings running at once, like three at 11.", False),
        ("meetings 10-12 and 11-13 overlap", False),
    ],
)
def test_leaks_number(reflection, leaks):
    assert min_rooms.leaks_answer(CROWD, reflection) is leaks


# ----------------------------------------------------------------------------------------------------------------
# Prompts
# ----------------------------------------------------------------------------------------------------------------
def test_prompts():
    prompt = plain.attempt_prompt(CHAIN)
    assert "[9-11], [10-12], [11-13]" in prompt and "Rooms available: 2" in prompt
    assert "peak: N" in prompt and "<answer>YES</answer>" in prompt and "<answer>NO</answer>" in prompt
    assert "ends at 10" in prompt and "starts at 10" in prompt
    messages = strict.retry_messages(CHAIN, "peak: 3 <answer>NO</answer>", "I counted a chain as one peak.")
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert "Do not state the final answer" in messages[2]["content"]
    assert "peak: N" in messages[4]["content"]
    prompt = min_rooms.attempt_prompt(CHAIN)
    assert "minimum number of rooms" in prompt and "Rooms available" not in prompt and "<answer>N</answer>" in prompt
    assert "minimum number of rooms" in min_rooms.retry_instruction


# ----------------------------------------------------------------------------------------------------------------
# Loading and registry
# ----------------------------------------------------------------------------------------------------------------
def test_load_generated():
    ds = get_task("scheduling").load(split="test", n=12, seed=1)
    assert len(ds) == 12 and {"meetings", "rooms", "difficulty", "answer", "max_overlap", "id"} <= set(ds.column_names)
    assert Counter(ds["difficulty"]) == {"easy": 4, "medium": 4, "hard": 4}
    assert all(plain.verify(row, plain.reference_answer(row)).passed for row in ds)


def test_load_local_files(tmp_path):
    rows = [{"meetings": [[9, 11], [10, 12]], "rooms": 1}, {"meetings": [[9, 10], [10, 11]], "rooms": 1}]
    path = tmp_path / "sched.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = plain.load(source=str(path))
    assert [plain.reference_answer(r) for r in ds] == ["peak: 2\n<answer>NO</answer>", "peak: 1\n<answer>YES</answer>"]

    csv_path = tmp_path / "sched.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["meetings", "rooms"])
        writer.writeheader()
        writer.writerows({"meetings": json.dumps(r["meetings"]), "rooms": r["rooms"]} for r in rows)
    ds = plain.load(source=str(csv_path))
    assert ds[0]["meetings"] == [[9, 11], [10, 12]]
    assert plain.verify(ds[0], "<answer>NO</answer>").passed

    no_rooms = tmp_path / "no_rooms.jsonl"
    no_rooms.write_text(json.dumps({"meetings": [[9, 11], [10, 12]]}) + "\n")
    with pytest.raises(TaskDataError, match=r"needs columns \['meetings', 'rooms'\].*lacks \['rooms'\]"):
        plain.load(source=str(no_rooms))
    assert min_rooms.load(source=str(no_rooms))[0]["meetings"] == [[9, 11], [10, 12]]


def test_registry_options():
    task = get_task("scheduling", strict=True)
    assert isinstance(task, SchedulingTask) and task.strict and task.variant == "yes_no" and task.name == "scheduling"
    task = get_task("scheduling", variant="min_rooms")
    assert task.variant == "min_rooms" and task.name == "scheduling_min_rooms"
    assert task.required_columns == ("meetings",)
    assert task.verify(CROWD, "<answer>3</answer>").passed
    task = get_task("scheduling_min_rooms")
    assert isinstance(task, MinRoomsSchedulingTask) and task.variant == "min_rooms" and not task.strict
    assert SchedulingTask.name == "scheduling" and SchedulingTask.required_columns == ("meetings", "rooms")
    with pytest.raises(ValueError, match="valid variants: yes_no, min_rooms"):
        get_task("scheduling", variant="rooms")
    with pytest.raises(ValueError, match="valid options: strict, variant"):
        get_task("scheduling", strictness=True)
    with pytest.raises(ValueError, match="strict must be True or False"):
        get_task("scheduling", strict="yes")
    with pytest.raises(ValueError, match="fixed to 'min_rooms'"):
        get_task("scheduling_min_rooms", variant="yes_no")
