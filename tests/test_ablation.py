"""Ablation runner on the tiny default's path, shrunk: the base student built by the demo pipeline, the teacher
curriculum with retry rows, shared splits, matched token budget, one table/JSON/plot, finished arms skipped."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from rrr.ablation import AblationConfig, run_ablation

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
    "sft": {"max_steps": 4, "batch_size": 32, "warmup_steps": 0, "include_reflections": False},
}


def shrunk_config(tmp_path, **overrides) -> AblationConfig:
    recipes = tmp_path / "recipes"
    recipes.mkdir(exist_ok=True)
    for arm, changes in SHRINK.items():
        with open(os.path.join(ROOT, "recipes", "ablation", "tiny", f"{arm}.yaml")) as f:
            recipe = yaml.safe_load(f)
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
    config = shrunk_config(tmp_path, arms=["base", "sft", "rrr", "outcome"])
    report = run_ablation(config, progress=False)
    arms = report["arms"]
    assert list(arms) == ["base", "sft", "rrr", "outcome"]

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

    # re-run: every arm is skipped (arm.json untouched), the report is rewritten
    stamp = os.path.getmtime(tmp_path / "abl" / "rrr" / "arm.json")
    again = run_ablation(config, progress=False)
    assert os.path.getmtime(tmp_path / "abl" / "rrr" / "arm.json") == stamp
    assert again["arms"]["rrr"] == arms["rrr"]


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
