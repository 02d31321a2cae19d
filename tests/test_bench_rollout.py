"""``rrr bench rollout`` (rrr.bench.rollout) runs end to end in-process on the smallest tiny model and reports sane
ratios; its token counts come from the episodes and the trainer's logged metric."""

from __future__ import annotations

import json
import math

import pytest

from rrr.bench import rollout as bench
from rrr.utils.cli import ConfigError


def test_bench_rollout_smallest_run_reports_finite_ratios(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--hidden-size", "32", "--num-layers", "1", "--steps", "2", "--repeats", "1", "--tasks", "1"]
    argv += ["--group", "2", "--attempt-tokens", "8", "--reflection-tokens", "8", "--retry-tokens", "8"]
    assert bench.main([*argv, "--json", str(out)]) == 0
    assert "| measurement | RRR (3 phases) | plain GRPO (1 call) | RRR / plain |" in capsys.readouterr().out
    data = json.loads(out.read_text())
    ratios = (data["rollout"]["ratio_tokens_per_s"], data["training_step"]["ratio_s_per_step"])
    assert all(math.isfinite(r) and r > 0 for r in ratios), ratios
    # end-of-turn ignored by default: both rollouts generate exactly the same number of tokens
    assert data["rollout"]["rrr"]["tokens_per_rollout"] == data["rollout"]["plain"]["tokens_per_rollout"] == 40
    assert data["rollout"]["rrr"]["reflected_tasks_frac"] == 1.0  # a random model fails every attempt
    assert not list(tmp_path.glob(".bench.json.*")), "the temporary file of the atomic write is left over"
    # the training step's RRR tokens are the trainer's logged rrr/generated_tokens: phases stop at end-of-turn there,
    # so at most 1 task x (8 attempt + 2 x 8 reflection + 2 x 8 retry) tokens, and a failed attempt is never empty
    step = data["training_step"]["rrr"]
    assert 0 < step["tokens_per_step"] <= 40 and step["generate_calls_per_step"] == 3


@pytest.mark.parametrize(
    "argv",
    [["--steps", "1"], ["--tasks", "0"], ["--threads", "-1"], ["--model", "/no/such/dir"]],
)
def test_bench_rollout_refuses_bad_settings_before_any_work(argv):
    with pytest.raises(ConfigError):
        bench.parse_args(argv)


def test_every_setting_is_a_flag_with_its_documented_help():
    import dataclasses

    docs = bench._field_docs()
    assert set(docs) == {f.name for f in dataclasses.fields(bench.RolloutBench)}
    assert bench.parse_args([])[0] == bench.RolloutBench()


def test_the_real_model_reports_phase_clock_is_a_rollout_not_a_patch(tmp_path):
    """``real_model_report``'s per-phase timing comes from the rollout it hands the trainer: every phase is timed
    and its tokens add up to what the trainer itself logs, and the trainer's engine class is untouched."""
    import functools

    from trl import ModelConfig

    from rrr.bench.real_model import PhaseTimingRollout
    from rrr.models import build_tiny_model, build_tiny_tokenizer
    from rrr.training import RRRConfig, train
    from rrr.training.config import QUIET_CPU_RUN
    from rrr.training.trl_adapter import TrainerGenerator

    generate = TrainerGenerator.generate
    calls: list[tuple[str, float, int]] = []
    args = RRRConfig(
        output_dir=str(tmp_path / "run"),
        task="countdown",
        dataset_source="generated",
        dataset_size=16,
        attempt_max_tokens=6,
        max_completion_length=6,
        retry_max_tokens=6,
        num_generations=2,
        per_device_train_batch_size=4,
        max_steps=2,
        **QUIET_CPU_RUN,
        seed=0,
    )
    tok = build_tiny_tokenizer()

    def record(phase: str, seconds: float, tokens: int) -> None:
        calls.append((phase, seconds, tokens))

    model = build_tiny_model(tok, hidden_size=32, num_layers=1)
    summary = train(
        args,
        ModelConfig(),
        model=model,
        tokenizer=tok,
        rollout_factory=functools.partial(PhaseTimingRollout, record=record),
    )
    assert [phase for phase, _, _ in calls] == ["attempt", "reflection", "retry"] * 2  # a random model fails all
    assert sum(n for _, _, n in calls) == summary["generated_tokens"]
    assert TrainerGenerator.generate is generate


def test_real_model_report_refuses_a_directory_that_is_no_installed_model(tmp_path, capsys):
    from rrr.bench.real_model import main

    assert main(["--model", str(tmp_path)]) == 2
    assert "make real-model" in capsys.readouterr().err
