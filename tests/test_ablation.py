"""Ablation runner on the tiny default's path, shrunk: the base student built by the demo pipeline, the teacher
curriculum with retry rows, shared splits, matched token budget, one table/JSON/plot, finished arms skipped."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from rrr.ablation import AblationConfig, run_ablation
from rrr.utils.config import load_yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The tiny default's arm recipes with steps and batches cut to seconds.
SHRINK = {
    "sft": {"max_steps": 3, "per_device_train_batch_size": 16},
    "rrr": {"max_steps": 2, "per_device_train_batch_size": 8, "num_generations": 4, "warmup_steps": 0},
    "outcome": {"max_steps": 40, "per_device_train_batch_size": 8, "num_generations": 4, "warmup_steps": 0},
    "reflection_sft": {"max_steps": 2},
    "reflection_dpo": {"max_steps": 2},
}
STUDENT = {
    "seed": 1,
    "model": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "vocab_size": 400, "tokenizer_problems": 200},
    "data": {"sft_problems": 256, "reflection_problems": 16, "mining_problems": 16, "test_problems": 16},
    "sft": {"max_steps": 4, "per_device_train_batch_size": 32, "warmup_steps": 0},
    "sft_include_reflections": False,
}


def shrunk_config(tmp_path, **overrides) -> AblationConfig:
    recipes = tmp_path / "recipes"
    recipes.mkdir(exist_ok=True)
    for arm, changes in SHRINK.items():
        recipe = load_yaml(os.path.join(ROOT, "recipes", "ablation", "tiny", f"{arm}.yaml"))  # include: expanded
        (recipes / f"{arm}.yaml").write_text(yaml.safe_dump({**recipe, **changes}))
    (tmp_path / "student.yaml").write_text(yaml.safe_dump(STUDENT))
    config = AblationConfig.from_yaml(
        os.path.join(ROOT, "recipes", "ablation", "tiny.yaml"),
        output_dir=str(tmp_path / "abl"),
        recipes=str(recipes),
        student=str(tmp_path / "student.yaml"),
        **overrides,
    )
    config.n_train, config.n_test = 16, 8
    return config


def test_arms_table_plot_and_rerun(tmp_path):
    config = shrunk_config(tmp_path, arms=["base", "sft", "rrr", "sft_rrr", "outcome"])
    report = run_ablation(config, progress=False)
    arms = report["arms"]
    assert list(arms) == ["base", "sft", "rrr", "sft_rrr", "outcome"]

    # the base model is the demo pipeline's SFT student, built under the ablation's output dir
    student = tmp_path / "abl" / "student" / "sft"
    assert arms["base"]["model_dir"] == str(student) and (student / "config.json").exists()
    # the SFT arm trained on the curriculum's answers *and* its reflection + retry rows
    curriculum = tmp_path / "abl" / "data" / "curriculum"
    summary = json.loads((tmp_path / "abl" / "sft" / "model" / "sft_summary.json").read_text())
    assert summary["reflection_dataset_path"] == str(curriculum / "reflection")
    assert summary["train_rows"] > 16  # 16 answer rows + reflection and retry rows

    # outcome GRPO is stopped at RRR's generated-token budget (within one step: 8 attempts of <= 8 tokens)
    budget = arms["rrr"]["generated_tokens"]
    assert budget > 0 and arms["outcome"]["token_budget"] == budget
    assert budget <= arms["outcome"]["generated_tokens"] <= budget + 8 * 8
    for arm in arms.values():
        m = arm["eval"]
        assert m["n"] == 8 and m["second_try"]["k"] == m["first_try"]["k"] + m["gain"]["k"]
    table = (tmp_path / "abl" / "ablation.md").read_text()
    assert "RRR GRPO" in table and "outcome GRPO" in table and "Majority-class baseline" in table
    png = (tmp_path / "abl" / "ablation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "abl" / "ablation.json").read_text())["config"]["n_test"] == 8

    # every trained arm's resolved configs are saved beside it
    resolved = json.loads((tmp_path / "abl" / "rrr" / "config.json").read_text())
    assert resolved["RRRConfig"]["max_steps"] == 2 and resolved["RRRConfig"]["first_attempt_source"] == "online"
    assert resolved["ModelConfig"]["model_name_or_path"] == str(student)

    # the paired comparison: every arm reflects on the base model's failed test attempts (all of them, here)
    frozen = report["frozen"]
    base_failures = arms["base"]["eval"]["n"] - arms["base"]["eval"]["first_try"]["k"]
    assert frozen["n"] == base_failures > 0 and set(frozen["arms"]) == set(arms)
    for arm, m in frozen["arms"].items():
        assert m["greedy"]["n"] == m["sampled"]["n"] == base_failures
        assert (m["gain_vs_base"] is None) == (arm == "base")
    # base against itself: the greedy score is its own evaluation's fix rate
    assert frozen["arms"]["base"]["greedy"]["acc"] == pytest.approx(arms["base"]["eval"]["fix_rate"]["acc"])
    assert frozen["arms"]["sft"].get("gain_vs_start") is None  # only SFT -> RRR has a start other than base
    assert frozen["arms"]["sft_rrr"]["gain_vs_start"]["start"] == "sft"
    assert "SFT → RRR over SFT (teacher curriculum)" in table
    assert "paired gain over base" in table and "frozen_samples.jsonl" in os.listdir(tmp_path / "abl" / "sft")

    # re-run: every arm is skipped (arm.json untouched), the frozen scores are reused, the report is rewritten
    stamps = {f: os.path.getmtime(tmp_path / "abl" / "rrr" / f) for f in ("arm.json", "frozen.json")}
    again = run_ablation(config, progress=False)
    assert {f: os.path.getmtime(tmp_path / "abl" / "rrr" / f) for f in stamps} == stamps
    assert again["arms"]["rrr"] == arms["rrr"] and again["frozen"] == frozen


def test_config_errors_say_how_to_fix_them(tmp_path):
    with pytest.raises(ValueError, match="unknown arm"):
        AblationConfig(model="m", arms=["base", "magic"])
    with pytest.raises(ValueError, match="exactly one of `model`"):
        AblationConfig()
    with pytest.raises(ValueError, match="exactly one of `model`"):
        AblationConfig(model="m", student="recipes/ablation/tiny_student.yaml")
    with pytest.raises(ValueError, match=r"unknown CurriculumConfig field\(s\) \['balanse'\]"):
        AblationConfig(model="m", curriculum={"balanse": False})
    # --model on the command line replaces the recipe's built student
    config = AblationConfig.from_yaml(os.path.join(ROOT, "recipes", "ablation", "tiny.yaml"), model="Qwen/x")
    assert config.model == "Qwen/x" and config.student is None


def _episode(task, example, attempt: str, reflections: list[tuple[str, str]]):
    """A finished episode: a failed ``attempt`` and (reflection, retry) pairs, verified by the real verifier."""
    from rrr.episode import Attempt, Episode, ReflectionOutcome
    from rrr.generation import Generation

    outcomes = [
        ReflectionOutcome(
            reflection=Generation(text, token_ids=[0] * 3),
            retries=[Generation(retry, token_ids=[0] * 2)],
            verdicts=[task.verify(example, retry)],
            leaked=task.leaks_answer(example, text),
        )
        for text, retry in reflections
    ]
    return Episode(
        example=example,
        example_id=task.example_id(example),
        attempts=[Attempt(attempt, task.verify(example, attempt), Generation(attempt, token_ids=[0] * 4))],
        reflections=outcomes,
    )


def test_reflection_rows_keep_passing_reflections_and_pair_them_with_failing_ones():
    from rrr.ablation.reflection_data import reflection_rows
    from rrr.tasks.scheduling import max_overlap
    from rrr.tasks.scheduling_demo import DemoSchedulingTask, direct_answer

    task = DemoSchedulingTask()
    ex = task.generate(2, seed=0, split="train")
    right = direct_answer(max_overlap(ex[0]["meetings"]))
    wrong = direct_answer(max_overlap(ex[0]["meetings"]) + 1)
    witness = task.witness_reflection(ex[0])
    episodes = [
        # two passing, one failing, one leaking reflection: 2 SFT rows, 1 pair, the leak in neither
        _episode(task, ex[0], wrong, [(witness, right), ("at 1 : 1-2", right), ("count again", wrong), (right, right)]),
        # solved at the first try: nothing to reflect on
        _episode(task, ex[1], direct_answer(max_overlap(ex[1]["meetings"])), []),
    ]
    sft, dpo, stats = reflection_rows(task, episodes)
    prompt = task.reflection_messages(ex[0], wrong)
    assert [r["completion"][0]["content"] for r in sft] == [witness, "at 1 : 1-2"]
    assert all(r["prompt"] == prompt for r in sft)
    assert dpo == [
        {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": witness}],
            "rejected": [{"role": "assistant", "content": "count again"}],
        }
    ]
    assert stats == {
        "failed": 1,
        "reflections": 4,
        "passing": 2,
        "leaked": 1,
        "generated_tokens": 4 + 4 * (3 + 2) + 4,
        "sft_rows": 2,
        "dpo_pairs": 1,
    }


def test_reflection_sft_and_dpo_arms_train_on_the_collected_reflections(tmp_path):
    """The two arms on the documented hand-over file ``data/self_reflections.json`` (what the collection writes;
    a shrunk random student never produces a passing reflection, so the rows are the oracle's witnesses here)."""
    from rrr.ablation.reflection_data import reflection_rows
    from rrr.tasks.scheduling import max_overlap
    from rrr.tasks.scheduling_demo import DemoSchedulingTask, direct_answer
    from rrr.utils.io import atomic_write_json

    config = shrunk_config(tmp_path, arms=["base", "reflection_sft", "reflection_dpo"])
    task = DemoSchedulingTask()
    episodes = []
    for ex in task.generate(12, seed=5, split="train"):
        peak = max_overlap(ex["meetings"])
        right, wrong = direct_answer(peak), direct_answer(peak + 1)
        episodes.append(_episode(task, ex, wrong, [(task.witness_reflection(ex), right), ("at 0 :", wrong)]))
    sft, dpo, stats = reflection_rows(task, episodes)
    atomic_write_json(
        os.path.join(config.output_dir, "data", "self_reflections.json"), {"sft": sft, "dpo": dpo, "stats": stats}
    )
    arms = run_ablation(config, progress=False)["arms"]
    assert arms["reflection_sft"]["steps"] == SHRINK["reflection_sft"]["max_steps"]
    assert arms["reflection_dpo"]["steps"] == SHRINK["reflection_dpo"]["max_steps"]
    assert arms["reflection_sft"]["generated_tokens"] == stats["generated_tokens"]
    summary = json.loads((tmp_path / "abl" / "reflection_dpo" / "model" / "dpo_summary.json").read_text())
    assert summary["pairs"] == len(dpo) == 12
    for arm in ("reflection_sft", "reflection_dpo"):
        assert arms[arm]["eval"]["n"] == 8 and (tmp_path / "abl" / arm / "model" / "config.json").exists()
