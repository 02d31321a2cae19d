"""scripts/bench_rollout.py runs end to end in-process on the smallest tiny model and reports sane ratios."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_rollout.py"


def test_bench_rollout_smallest_run_reports_finite_ratios(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_script_bench_rollout", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
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
