"""Ablation runner: shared splits, matched token budget, one table/JSON/plot, finished arms skipped on re-run."""

import json
import os

from rrr.ablation import AblationConfig, run_ablation
from rrr.models import save_tiny_model


def test_arms_table_plot_and_rerun(tmp_path):
    model = save_tiny_model(str(tmp_path / "tiny"))
    config = AblationConfig.from_yaml(
        "recipes/ablation/tiny.yaml", model=model, output_dir=str(tmp_path / "abl"), arms=["base", "rrr", "outcome"]
    )
    config.n_train, config.n_test = 16, 6
    report = run_ablation(config, progress=False)
    arms = report["arms"]
    assert list(arms) == ["base", "rrr", "outcome"]
    # outcome GRPO is stopped at RRR's generated-token budget (within one step of it)
    budget = arms["rrr"]["generated_tokens"]
    assert budget > 0 and arms["outcome"]["token_budget"] == budget
    assert budget <= arms["outcome"]["generated_tokens"] <= budget + 8 * 24
    for arm in arms.values():
        m = arm["eval"]
        assert m["n"] == 6 and m["second_try"]["k"] == m["first_try"]["k"] + m["gain"]["k"]
    table = (tmp_path / "abl" / "ablation.md").read_text()
    assert "RRR GRPO" in table and "outcome GRPO" in table and "Majority-class baseline" in table
    png = (tmp_path / "abl" / "ablation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "abl" / "ablation.json").read_text())["config"]["n_test"] == 6

    # re-run: every arm is skipped (arm.json untouched), the report is rewritten
    stamp = os.path.getmtime(tmp_path / "abl" / "rrr" / "arm.json")
    again = run_ablation(config, progress=False)
    assert os.path.getmtime(tmp_path / "abl" / "rrr" / "arm.json") == stamp
    assert again["arms"]["rrr"] == arms["rrr"]


def test_unknown_arm_is_rejected():
    import pytest

    with pytest.raises(ValueError, match="unknown arm"):
        AblationConfig(arms=["base", "magic"])
