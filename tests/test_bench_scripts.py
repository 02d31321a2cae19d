"""The benchmark scripts run end to end in-process with tiny settings (seconds, not minutes)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    from rrr.bench import verifiers

    return verifiers


def test_bench_verifiers_tiny_run_writes_one_entry_per_task(bench, tmp_path, capsys):
    out = tmp_path / "nested" / "bench.json"
    rc = bench.main(["--n", "20", "--seconds", "0.2", "--min-rate", "1", "--json", str(out)])
    assert rc == 0
    table = capsys.readouterr().out
    assert "| task | verifications/s | µs/call | pass rate | leak checks/s |" in table
    data = json.loads(out.read_text())
    assert set(data["tasks"]) == set(bench.TASKS)
    assert data["ok"] is True and not data["slow"] and not data["verdict_mismatches"]
    for label, entry in data["tasks"].items():
        assert entry["verifications_per_s"] > 0, label
        assert 0 < entry["pass_rate"] < 1, label  # the mix has passing and failing completions
        assert set(entry["modes"]) == {"repeat", "no_repeat"}, label
        for mode in entry["modes"].values():
            assert mode["verifications_per_s"] > 0 and mode["leak_checks_per_s"] > 0, label
            assert mode["pass_rate"] == pytest.approx(bench.EXPECTED_PASS_RATE), label
    assert not list(out.parent.glob(".bench_verifiers.*")), "the temporary file of the atomic write is left over"


def test_bench_verifiers_gates_on_min_rate(bench, capsys):
    rc = bench.main(["--n", "2", "--seconds", "0.02", "--min-rate", "1e12", "--tasks", "scheduling", "--no-repeat"])
    assert rc == 1
    assert "below" in capsys.readouterr().err


def test_no_repeat_mix_makes_every_completion_unique(bench):
    from rrr.tasks import get_task

    task = get_task("countdown")
    examples = task.generate(5, seed=1)
    repeated = bench.build_mix(task, examples, unique=False)
    unique = bench.build_mix(task, examples, unique=True)
    texts = [text for _, text in unique["pairs"]]
    assert len(set(texts)) == len(texts) == 5 * bench.GROUP_SIZE
    assert len({text for _, text in repeated["pairs"]}) < len(texts)  # groups repeat answers, as in training


def test_bench_verifiers_script_is_the_library_main(bench):
    """scripts/bench_verifiers.py is a shim: the same ``main`` as ``rrr.bench.verifiers``."""
    assert _load("bench_verifiers").main is bench.main


def test_bench_rows_come_from_the_registered_tasks(bench):
    """Every registered task is benchmarked by default unless its class opts out (``bench_configs = {}``)."""
    from rrr.tasks import registered_tasks, task_class

    benchmarked = {name for name, _ in bench.TASKS.values()}
    opted_out = {name for name in registered_tasks() if task_class(name).bench_configs == {}}
    assert benchmarked == set(registered_tasks()) - opted_out
    assert {"countdown", "apigen", "scheduling_strict", "scheduling_min_rooms"} <= set(bench.TASKS)
