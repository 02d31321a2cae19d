"""The demo pipeline's wiring (``make demo``): tiny settings, every stage, artifacts, re-runs, and its pieces.

The full demo (``python scripts/demo.py``, ~10 minutes) is the learning evidence; these tests check, in well under a
minute, that every stage runs through the library, writes complete artifacts, skips on a re-run, refuses to mix
settings, and that the table it prints agrees with the numbers it saved.
"""

from __future__ import annotations

import json
import os
import random
import re

import pytest

from rrr.demo.config import DEMO_TASK, DemoConfig
from rrr.demo.pipeline import STAGE_FILE, DemoError, DemoPipeline
from rrr.evaluation.stats import paired_difference
from rrr.tasks import get_task, last_answer
from rrr.tasks.scheduling import max_overlap
from rrr.tasks.scheduling_demo import DemoSchedulingTask, check_witness

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {
    "seed": 3,
    "model": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "vocab_size": 400, "tokenizer_problems": 200},
    "data": {"sft_problems": 192, "reflection_problems": 64, "mining_problems": 96, "test_problems": 48},
    "sft": {"max_steps": 3, "per_device_train_batch_size": 16, "warmup_steps": 0},
    "mining": {"greedy": True, "sampled_k": 1},
    # the demo's RRR recipe (shared with the tiny ablation), 2 tasks x 2 reflections per step
    "rrr": {
        "include": os.path.join(ROOT, "recipes", "demo", "rrr.yaml"),
        **{"max_steps": 2, "per_device_train_batch_size": 4, "num_generations": 2, "warmup_steps": 0},
    },
    "eval": {"batch_size": 64},
    "paired": {"samples": 2},
}


def tiny_config(tmp_path, **overrides) -> DemoConfig:
    data = json.loads(json.dumps(TINY))
    data["output_dir"] = str(tmp_path / "demo")
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        data.setdefault(section, {})[field] = value
    return DemoConfig.from_dict(data)


# ------------------------------------------------------------------------------------------------------------------
# The pipeline, end to end
# ------------------------------------------------------------------------------------------------------------------
def test_pipeline_writes_every_artifact_and_a_consistent_table(tmp_path):
    lines: list[str] = []
    config = tiny_config(tmp_path)
    results = DemoPipeline(config, progress=lines.append).run()
    out = config.output_dir

    for stage in ("base", "curriculum", "sft", "eval-sft", "failures", "rrr", "eval-rrr", "paired"):
        assert os.path.exists(os.path.join(out, stage, STAGE_FILE)), stage
    assert not os.path.exists(os.path.join(out, "control"))  # off by default
    for name in ("results.json", "results.md", "config.json"):
        assert os.path.exists(os.path.join(out, name))
    assert os.path.exists(os.path.join(out, "sft", "sft_summary.json"))
    assert os.path.exists(os.path.join(out, "rrr", "run_summary.json"))
    assert os.path.exists(os.path.join(out, "rrr", "episodes.jsonl"))

    # every stage printed a progress line with the elapsed time
    assert all(line.startswith("[demo ") for line in lines if line.startswith("["))
    for stage in ("base", "sft", "rrr", "paired"):
        assert any(f"] {stage}: done in" in line for line in lines), stage
    # the long stages report their steps as they go, with their own metrics
    assert any(re.search(r"\] sft: step 3/3 · loss [\d.]+ · token accuracy", line) for line in lines)
    assert any(re.search(r"\] rrr: step 2/2 · retry success \(reward\) [\d.]+ · 1st try", line) for line in lines)

    # the evaluations cover the whole held-out test set, with the 50% majority baseline beside them
    for name, m in results["evaluations"].items():
        assert m["n"] == config.data.test_problems, name
        assert 0.2 < m["majority_baseline"] < 0.6  # always the most common number of rooms
        assert m["first_try"]["acc"] <= m["second_try"]["acc"]  # a retry can only add passes

    # the paired set is exactly the SFT student's failures on the test set
    with open(os.path.join(out, "eval-sft", "samples.jsonl")) as f:
        failed = [json.loads(line) for line in f if not json.loads(line)["attempt_passed"]]
    paired = results["paired"]
    assert paired["n"] == len(failed)
    assert set(paired["students"]) == {"sft", "rrr"}
    gain = paired["gains"]["rrr"]["sampled"]
    expected = paired["students"]["rrr"]["sampled"]["acc"] - paired["students"]["sft"]["sampled"]["acc"]
    assert gain["diff"] == pytest.approx(expected)
    assert results["gain_exceeds_ci"] == (gain["ci"][0] > 0)

    # the printed table is the saved one and shows what the issue asks for
    with open(os.path.join(out, "results.md")) as f:
        table = f.read()
    assert "\n" + table in "\n".join(lines)
    for text in ("1st try", "after reflection", "majority baseline", "paired gain", results["verdict"]):
        assert text in table


def test_rerun_skips_finished_stages_and_refuses_other_settings(tmp_path):
    config = tiny_config(tmp_path, rrr__max_steps=1)
    first = DemoPipeline(config, progress=lambda line: None).run()

    lines: list[str] = []
    second = DemoPipeline(config, progress=lines.append).run()
    assert sum("skipped" in line for line in lines) == 8
    assert second["paired"] == first["paired"]

    # an unfinished stage (no stage.json) is run again from scratch
    os.remove(os.path.join(config.output_dir, "paired", STAGE_FILE))
    lines.clear()
    DemoPipeline(config, progress=lines.append).run()
    assert any("] paired: done in" in line for line in lines)

    # measurements are recomputed when their settings change; trained stages are not
    lines.clear()
    DemoPipeline(tiny_config(tmp_path, rrr__max_steps=1, paired__samples=3), progress=lines.append).run()
    assert sum("settings changed, recomputing" in line for line in lines) == 3  # eval-sft, eval-rrr, paired
    assert any("] rrr: done before, skipped" in line for line in lines)

    # a finished training stage built with other settings is an error, not a silent mix
    changed = tiny_config(tmp_path, rrr__max_steps=1, sft__learning_rate=5e-4)
    with pytest.raises(DemoError, match="other settings"):
        DemoPipeline(changed, progress=lambda line: None).run()

    # so is one built from another task generator (its cached ids and failures name other problems)
    other_generator = DemoPipeline(config, progress=lambda line: None)
    other_generator._generator_fingerprint = "0" * 16
    with pytest.raises(DemoError, match="other settings"):
        other_generator.run()


# ------------------------------------------------------------------------------------------------------------------
# Pieces
# ------------------------------------------------------------------------------------------------------------------
def test_demo_task_formats_are_compact_and_the_witness_is_a_lesson():
    task = get_task(DEMO_TASK)
    assert isinstance(task, DemoSchedulingTask) and task.variant == "min_rooms"
    rng = random.Random(0)
    for ex in task.generate(60, seed=1, split="train"):
        assert task.attempt_prompt(ex) == "meetings " + " ".join(f"{s}-{e}" for s, e in ex["meetings"])
        answer = task.worked_solution(ex)
        assert answer == f"<answer>{max_overlap(ex['meetings'])}</answer>" and task.verify(ex, answer).passed
        witness = task.witness_reflection(ex)
        assert check_witness(ex, witness) == "peak"
        assert not task.leaks_answer(ex, witness)  # it says where the peak is, not how many rooms
        mistake = task.synthesize_failure(ex, rng)
        assert mistake is not None and not task.verify(ex, mistake).passed
    ex = {"meetings": [[9, 11], [10, 12], [11, 13]]}
    assert task.witness_reflection(ex) == "at 10 : 9-11 10-12"
    assert check_witness(ex, "at 11 : 10-12 11-13") == "peak"
    assert check_witness(ex, "at 9 : 9-11") == "valid"
    assert check_witness(ex, "at 11 : 9-11 10-12 11-13") == "wrong_meetings"  # 9-11 has ended at 11
    assert check_witness(ex, "<answer>2</answer>") == "unparsed"
    assert task.leaks_answer(ex, "<answer>2</answer>")


def test_task_tokenizer_round_trips_and_loads_with_load_tokenizer(tmp_path):
    from rrr.models import load_tokenizer
    from rrr.models.task_tokenizer import save_task_tokenizer, task_corpus, train_task_tokenizer

    task = DemoSchedulingTask()
    examples = task.generate(300, seed=0, split="train")
    tokenizer = train_task_tokenizer(task_corpus(task, examples, [task.witness_reflection(e) for e in examples]))
    save_task_tokenizer(tokenizer, str(tmp_path / "tok"))
    loaded = load_tokenizer(str(tmp_path / "tok"))

    ex = examples[0]
    conversation = task.retry_messages(ex, task.worked_solution(ex), task.witness_reflection(ex))
    ids = loaded.apply_chat_template(conversation, tokenize=True, add_generation_prompt=True, return_dict=False)
    assert list(ids) == list(
        tokenizer.apply_chat_template(conversation, tokenize=True, add_generation_prompt=True, return_dict=False)
    )
    text = loaded.decode(ids)
    assert text.endswith("<|im_start|>assistant\n") and task.attempt_prompt(ex) in text
    # ~1 token per word: a prompt of k meetings is 2k + 1 tokens ("meetings", then " 9-", "11" per meeting)
    prompt = task.attempt_prompt(ex)
    assert len(loaded(prompt, add_special_tokens=False)["input_ids"]) == 2 * len(ex["meetings"]) + 1
    assert len(loaded("<answer>3</answer>", add_special_tokens=False)["input_ids"]) == 3
    # lossless on any text, model output included (byte-level: no <unk>)
    for sample in ("at 12 : 11-13 12-14 <answer>YES</answer>", "héllo  wörld\t\n☃ 12-13-14 ??", ""):
        assert loaded.decode(loaded(sample, add_special_tokens=False)["input_ids"]) == sample
    assert loaded.eos_token == "<|im_end|>" and loaded.pad_token == "<|endoftext|>"


def test_paired_difference_is_not_clipped_and_flags_significance():
    up = paired_difference([1.0] * 50 + [0.0] * 50, [0.0] * 100)
    assert up["diff"] == pytest.approx(0.5) and up["significant"] and up["ci"][0] > 0
    down = paired_difference([0.0] * 100, [1.0] * 30 + [0.0] * 70)
    assert down["diff"] == pytest.approx(-0.3) and down["ci"][1] < 0
    flat = paired_difference([1.0, 0.0] * 20, [0.0, 1.0] * 20)
    assert flat["diff"] == 0 and not flat["significant"]
    with pytest.raises(ValueError):
        paired_difference([1.0], [])


def test_config_rejects_unknown_keys_and_reads_the_recipe():
    with pytest.raises(ValueError, match="unknown key"):
        DemoConfig.from_dict({"rrr": {"max_step": 3}})
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    config = DemoConfig.from_yaml(os.path.join(root, "recipes", "demo", "config.yaml"), {"rrr.max_steps": 7})
    assert config.rrr["max_steps"] == 7 and config.output_dir == "runs/demo"


def test_sft_teaches_the_answer_format_and_its_range(tmp_path):
    """Cheap learning check (~15 s): 160 SFT steps of a 2-layer student learn what to answer for each size of day.

    A wiring bug (e.g. a prompt/completion mix-up) leaves the student without well-formed answers or with answers
    that ignore the prompt. This used to assert first-try accuracy above the majority baseline; that came from a
    shortcut in the data (a crowded day meant more rooms: the density alone predicted 68% of min-rooms answers), which
    the generator no longer has, and 160 or even 400 steps now stay at the majority baseline (39%, measured).
    """
    config = DemoConfig.from_dict(
        {
            "output_dir": str(tmp_path / "demo"),
            "seed": 3,
            "model": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "tokenizer_problems": 300},
            "data": {"sft_problems": 3000, "reflection_problems": 64, "mining_problems": 64, "test_problems": 200},
            "sft": {"max_steps": 160, "per_device_train_batch_size": 32, "learning_rate": 3e-3},
            "sft_include_reflections": False,
        }
    )
    pipeline = DemoPipeline(config, progress=lambda line: None)
    for name, fn in (
        ("base", pipeline.build_base),
        ("curriculum", pipeline.build_curriculum),
        ("sft", pipeline.train_sft),
    ):
        pipeline.stage(name, fn)
    seen: dict = {}

    def run(directory):
        seen["dir"] = directory
        return pipeline.evaluate(pipeline.path("sft"), directory, "sft")

    result = pipeline.stage("eval-sft", run)
    assert result["first_try"]["acc"] > result["majority_baseline"] - 0.05, result  # never worse than guessing
    answers_by_size: dict[int, list[int]] = {}
    with open(os.path.join(seen["dir"], "samples.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    for row in rows:
        answer = (last_answer(row["attempt"]) or "").strip()
        size = len(row["prompt"].split()) - 1  # "meetings 9-11 10-12 ..."
        if answer.isdigit():
            answers_by_size.setdefault(size, []).append(int(answer))
    in_range = {3: {1, 2}, 4: {1, 2, 3}, 5: {1, 2, 3}, 6: {2, 3, 4}, 7: {2, 3, 4}, 8: {2, 3, 4}}
    good = sum(a in in_range[size] for size, answers in answers_by_size.items() for a in answers)
    assert good >= 0.9 * len(rows), answers_by_size  # well formed and within the answers of that size of day
    easy, hard = answers_by_size[3], [a for size in (6, 7, 8) for a in answers_by_size.get(size, [])]
    assert sum(hard) / len(hard) > sum(easy) / len(easy) + 0.5  # the answer depends on the prompt
