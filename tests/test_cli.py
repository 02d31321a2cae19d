"""The ``rrr`` command, run as a user runs it: the installed console script (and ``accelerate launch``) in a
subprocess, where the exit status, stdout and stderr are the contract.

``rrr --help`` lists every subcommand, each ``rrr <sub> --help`` works, a wrong subcommand is one line and exit 2,
and ``rrr eval`` / ``rrr train`` do real (tiny) work — training also under ``accelerate launch``, both as a module
(``-m rrr.cli``) and as the console script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rrr.cli import SUBCOMMANDS
from rrr.models import save_tiny_model

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RRR = str(BIN / "rrr")


def env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", HF_DATASETS_DISABLE_PROGRESS_BARS="1", TRL_EXPERIMENTAL_SILENCE="1")


def run(*cmd: str, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, env=env(), cwd=ROOT)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(str(tmp_path_factory.mktemp("tiny") / "model"))


def recipe(tmp_path, tiny_dir, out: str) -> str:
    """The countdown smoke recipe on the tiny model, 2 steps, nothing saved but the final model."""
    config = yaml.safe_load((ROOT / "recipes/smoke/rrr/config_countdown.yaml").read_text())
    config.update(model_name_or_path=tiny_dir, output_dir=str(tmp_path / out), save_strategy="no", max_steps=2)
    path = tmp_path / f"{out}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_the_console_script_is_installed():
    assert os.access(RRR, os.X_OK), f"{RRR} is missing: `pip install -e .` installs the rrr console script"


def test_help_lists_every_subcommand_with_a_description():
    result = run(RRR, "--help")
    assert result.returncode == 0, result.stderr
    for name, about in SUBCOMMANDS.items():
        assert any(line.split()[:1] == [name] and about in line for line in result.stdout.splitlines()), name
    assert set(SUBCOMMANDS) == {"train", "sft", "eval", "mine", "curriculum", "ablate", "demo", "bench"}


def test_every_subcommand_has_help():
    """All eight at once (each imports torch): their usage lines name ``rrr <sub>``."""
    procs = {
        name: subprocess.Popen(
            [RRR, name, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT
        )
        for name in SUBCOMMANDS
    }
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, f"rrr {name} --help: exit {proc.returncode}\n{err[-2000:]}"
        assert out.startswith(f"usage: rrr {name}"), out[:200]


@pytest.mark.parametrize("argv", [["nope"], ["bench", "nope"]])
def test_a_wrong_subcommand_is_one_line_and_exit_2(argv):
    result = run(RRR, *argv)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown"), result.stderr
    assert result.stdout == ""


def test_no_subcommand_prints_the_help_and_exits_2():
    result = run(RRR)
    assert result.returncode == 2 and "subcommands:" in result.stdout


def test_a_usage_error_inside_a_subcommand_is_one_line(tmp_path):
    result = run(RRR, "train", "--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "missing.yaml" in lines[0], result.stderr[-2000:]


def test_rrr_eval_on_the_tiny_model(tmp_path, tiny_dir):
    out = tmp_path / "eval"
    args = ["--model", tiny_dir, "--task", "countdown", "--source", "generated", "--n", "4", "--batch-size", "4"]
    args += ["--attempt-max-tokens", "8", "--reflection-max-tokens", "8", "--retry-max-tokens", "8"]
    result = run(RRR, "eval", *args, "--output-dir", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "results.json").read_text())["metrics"]
    assert metrics["n"] == 4 and "first_try" in metrics


def test_rrr_train_two_steps_on_the_tiny_model(tmp_path, tiny_dir):
    result = run(RRR, "train", "--config", recipe(tmp_path, tiny_dir, "train"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "done: 2 steps" in result.stdout
    summary = json.loads((tmp_path / "train" / "run_summary.json").read_text())
    assert summary["global_step"] == 2 and summary["generated_tokens"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("how", ["module", "console script"])
def test_rrr_train_under_accelerate_launch(tmp_path, tiny_dir, how):
    """What the README documents: ``accelerate launch [...] -m rrr.cli train ...`` or ``... $(which rrr) train``."""
    target = ["-m", "rrr.cli"] if how == "module" else [RRR]
    launch = [str(BIN / "accelerate"), "launch", "--num_processes", "1", "--cpu", *target]
    result = run(*launch, "train", "--config", recipe(tmp_path, tiny_dir, "acc"), timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "done: 2 steps" in result.stdout
    assert json.loads((tmp_path / "acc" / "run_summary.json").read_text())["global_step"] == 2
