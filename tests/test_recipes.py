"""Every YAML under recipes/ passes the one recipe checker (``rrr.utils.recipes``, also ``make check-recipes``), and
the recipes keep the settings the project relies on.

Parametrised over the files found on disk, so a new recipe is checked without touching this file (and a YAML the
checker does not know is a failure). CPU-only, offline, a few seconds: nothing is trained and no model is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from rrr.utils import recipes as check

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "recipes" / "smoke"

ALL = check.all_recipe_paths()
RECIPES = check.recipe_paths()
GPU_RECIPES = [p for p in RECIPES if not p.is_relative_to(SMOKE)]
SMOKE_RECIPES = [p for p in RECIPES if p.is_relative_to(SMOKE)]
ACCELERATE = check.accelerate_config_paths()


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT / "recipes"))


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _smoke_copy(tmp_path: Path, **changes) -> Path:
    """The countdown smoke recipe with some keys changed (None removes one), written under tmp_path."""
    data = _yaml(SMOKE / "rrr" / "config_countdown.yaml")
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / "config_test.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_recipes_are_found():
    assert GPU_RECIPES and SMOKE_RECIPES and ACCELERATE
    tasks = {_yaml(p)["task"] for p in GPU_RECIPES}
    assert {"apigen", "countdown", "scheduling"} <= tasks


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_every_recipe_passes_the_checker(path):
    assert check.kind_of(path) is not None, "a YAML under recipes/ that the checker does not know"
    check.check_file(path)


def test_every_kind_is_covered():
    kinds = {check.kind_of(p) for p in ALL}
    assert kinds == set(check.CHECKS), kinds
    assert set(RECIPES) < set(ALL) and set(ACCELERATE) < set(ALL)


def test_demo_and_tiny_ablation_share_one_rrr_run():
    """The demo's RRR stage and the tiny ablation's RRR arm are one recipe (the demo's values)."""
    from rrr.utils.config import load_yaml

    shared = load_yaml(str(ROOT / "recipes" / "demo" / "rrr.yaml"))
    assert load_yaml(str(ROOT / "recipes" / "ablation" / "tiny" / "rrr.yaml")) == shared
    assert load_yaml(str(ROOT / "recipes" / "demo" / "config.yaml"))["rrr"] == shared
    assert shared["learning_rate"] == 2e-5 and shared["max_steps"] == 360


def test_a_yaml_of_unknown_kind_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(check, "RECIPES", tmp_path / "recipes")
    stray = tmp_path / "recipes" / "notes.yaml"
    stray.parent.mkdir()
    stray.write_text("a: 1\n")
    with pytest.raises(check.RecipeError, match="not a kind of recipe"):
        check.check_file(stray)


@pytest.mark.parametrize("path", ACCELERATE, ids=_id)
def test_accelerate_config_loads(path):
    check.check_accelerate_config(path)
    assert _yaml(path)["distributed_type"]


def test_unknown_key_is_named(tmp_path):
    path = _smoke_copy(tmp_path, reflection_budget=64)
    with pytest.raises(check.RecipeError, match="reflection_budget"):
        check.check_recipe(path)


def test_renamed_trl_key_says_what_to_use(tmp_path):
    path = _smoke_copy(tmp_path, torch_dtype="float32")
    with pytest.raises(check.RecipeError, match=r"torch_dtype.*dtype"):
        check.check_recipe(path)


def test_bad_value_and_bad_task_option_fail(tmp_path):
    with pytest.raises(check.RecipeError, match="learning_rate"):
        check.check_recipe(_smoke_copy(tmp_path, learning_rate="fast"))
    with pytest.raises(check.RecipeError, match="strikt"):
        check.check_recipe(_smoke_copy(tmp_path, task="scheduling", task_kwargs={"strikt": True}))


def test_vllm_settings_are_checked_even_when_overridden(tmp_path):
    gpu = {"use_cpu": None, "bf16": True, "use_vllm": True, "vllm_max_model_length": 4096}
    with pytest.raises(check.RecipeError, match="sleep_mode"):
        check.check_recipe(_smoke_copy(tmp_path, **gpu, vllm_enable_sleep_mode=True))
    with pytest.raises(check.RecipeError, match="vllm_max_model_length"):
        check.check_recipe(_smoke_copy(tmp_path, **{**gpu, "vllm_max_model_length": 48}))


def test_recipe_env_is_not_leaked(tmp_path):
    name = "RRR_CHECK_RECIPES_TEST_VAR"
    assert name not in os.environ
    check.check_recipe(_smoke_copy(tmp_path, env={name: "1"}))
    assert name not in os.environ


@pytest.mark.parametrize("path", GPU_RECIPES, ids=_id)
def test_gpu_recipe_settings(path):
    data = _yaml(path)
    if data["task"] in ("apigen", "countdown"):
        assert data["beta"] == 0.001, "the paper's KL coefficient"
    if data["task"] == "scheduling":
        # binary YES/NO rewards teach answer-flipping; strict also checks the stated peak
        assert data["task_kwargs"] == {"strict": True}
    assert data["bf16"] is True and data["use_vllm"] is True and data["vllm_mode"] == "colocate"
    assert data["vllm_enable_sleep_mode"] is False
    assert data["per_device_train_batch_size"] % data["num_generations"] == 0
    model = path.parent.parent.name
    assert data["model_name_or_path"].endswith("/" + model)
    assert data["output_dir"] == f"runs/{model}-rrr-{data['task']}"


@pytest.mark.parametrize("path", SMOKE_RECIPES, ids=_id)
def test_smoke_recipe_runs_on_cpu_offline(path):
    data = _yaml(path)
    assert data["use_cpu"] is True and data["bf16"] is False
    assert data.get("use_vllm", False) is False
    assert data["model_name_or_path"] == "runs/tiny-model"
    assert data["dataset_source"] == "generated"
    if data["task"] == "scheduling":
        assert data["task_kwargs"] == {"strict": True}


def test_main_reports_each_file_and_fails_on_a_bad_one(tmp_path, capsys):
    good = SMOKE / "rrr" / "config_countdown.yaml"
    assert check.main([str(good)]) == 0
    assert "ok" in capsys.readouterr().out
    bad = _smoke_copy(tmp_path, reflection_budget=64)
    assert check.main([str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "reflection_budget" in out and "1/2 ok" in out


def test_a_driver_recipe_with_an_unknown_key_fails(tmp_path, monkeypatch):
    """eval/mine/curriculum recipes are checked as their driver loads them: an unknown key is named."""
    monkeypatch.setattr(check, "RECIPES", tmp_path / "recipes")
    bad = tmp_path / "recipes" / "smoke" / "eval" / "bad.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text("model: m\ntask: countdown\natempt_max_tokens: 8\n")
    assert check.kind_of(bad) == "eval"
    with pytest.raises(check.RecipeError, match="did you mean 'attempt_max_tokens'"):
        check.check_file(bad)
    bad.write_text("model: m\ntask: nosuch\n")
    with pytest.raises(check.RecipeError, match="task 'nosuch'"):
        check.check_file(bad)
