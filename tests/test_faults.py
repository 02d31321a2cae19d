"""Fault injection across whole commands: kill -9 at every stage, a disk that fills up, then the same command again.

What a careless or unlucky user does to a run, done to the real scripts in subprocesses. Each test compares the
interrupted-and-re-run outcome with an uninterrupted run of the same command: nothing lost, nothing duplicated, no
torn line left behind, the same numbers at the end. Per-part fault tests live beside their parts
(``test_outputs.py``: output directories, locks, torn JSONL; ``test_training_faults.py``: checkpoints and resume;
``test_endpoint_faults.py``: hostile endpoints; ``test_bad_input.py``: bad data and configs); the conftest checks
that no canary API key reaches any file or log of any test.

A full disk is a real one where this machine lets us mount a small tmpfs (root); elsewhere the subprocess runs
under ``RLIMIT_FSIZE``, so a write past the limit fails with ``EFBIG`` exactly where ``ENOSPC`` would.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time

import pytest

from rrr.models import save_tiny_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")

TINY_DEMO = """\
seed: 3
model: {hidden_size: 32, num_layers: 1, num_heads: 2, vocab_size: 400, tokenizer_problems: 200}
data: {sft_problems: 192, reflection_problems: 64, mining_problems: 96, test_problems: 48}
sft: {max_steps: 3, per_device_train_batch_size: 16, warmup_steps: 0}
mining: {greedy: true, sampled_k: 1}
rrr: {include: RECIPE, max_steps: 2, per_device_train_batch_size: 4, num_generations: 2, warmup_steps: 0}
eval: {batch_size: 64}
paired: {samples: 2}
""".replace("RECIPE", os.path.join(ROOT, "recipes", "demo", "rrr.yaml"))
DEMO_STAGES = ("base", "curriculum", "sft", "eval-sft", "failures", "rrr", "eval-rrr", "paired")


def _without_timings(value):
    """A results document minus wall-clock fields (the only thing an interruption may change)."""
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in ("timing", "total_seconds", "seconds")}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _kill_when(cmd: list[str], ready, timeout: float = 120.0) -> bool:
    """Start ``cmd``; SIGKILL it as soon as ``ready()`` holds. False when it finished first (nothing to kill)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and not ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"{cmd} neither reached the kill point nor finished in {timeout} s")
            time.sleep(0.02)
        if proc.poll() is not None:
            return False
        proc.send_signal(signal.SIGKILL)
        return True
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300, **kwargs)


def _lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert text == "" or text.endswith("\n"), f"{path} ends with a torn line"
    return text.splitlines()


# ------------------------------------------------------------------------------------------------------------------
# The demo: every stage killed once, then one clean re-run
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_demo_killed_in_every_stage_resumes_to_the_same_results(tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TINY_DEMO)

    def demo(out):
        return [sys.executable, "scripts/demo.py", "--config", str(recipe), "--output-dir", str(out)]

    clean = _run(demo(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr[-3000:]

    out = tmp_path / "killed"
    killed_in = []
    for stage in DEMO_STAGES:  # each run is killed as soon as it starts writing `stage`
        if _kill_when(demo(out), lambda s=stage: (out / s).exists()):
            killed_in.append(stage)
    assert len(killed_in) >= 6, killed_in  # the kills really landed inside the stages
    final = _run(demo(out))
    assert final.returncode == 0, final.stderr[-3000:]

    expected = json.loads((tmp_path / "clean" / "results.json").read_text().replace(str(tmp_path / "clean"), "OUT"))
    got = json.loads((out / "results.json").read_text().replace(str(out), "OUT"))
    assert _without_timings(got) == _without_timings(expected)
    episodes = [json.loads(line) for line in _lines(str(out / "rrr" / "episodes.jsonl"))]
    clean_episodes = [json.loads(line) for line in _lines(str(tmp_path / "clean" / "rrr" / "episodes.jsonl"))]
    assert len(episodes) == len(clean_episodes)  # none lost, none logged twice


# ------------------------------------------------------------------------------------------------------------------
# Evaluation: killed between batches, and a disk that fills up mid-run
# ------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_tiny_model(str(tmp_path_factory.mktemp("models") / "tiny"))


def _evaluate(model: str, out, n: int = 24) -> list[str]:
    return [
        sys.executable,
        "scripts/evaluate.py",
        "--model",
        model,
        "--task",
        "countdown",
        "--source",
        "generated",
        "--n",
        str(n),
        "--batch-size",
        "4",
        "--attempt-max-tokens",
        "12",
        "--reflection-max-tokens",
        "8",
        "--retry-max-tokens",
        "12",
        "--no-progress",
        "--output-dir",
        str(out),
    ]


def _samples(out) -> list[dict]:
    return [json.loads(line) for line in _lines(os.path.join(out, "samples.jsonl"))]


@pytest.fixture(scope="module")
def clean_evaluation(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "clean"
    done = _run(_evaluate(tiny_model, out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _same_evaluation(out, clean) -> None:
    got, expected = _samples(out), _samples(clean)
    keys = [r["index"] if "index" in r else r["prompt"] for r in got]
    assert len(keys) == len(set(keys)), "a sample was evaluated twice"
    assert sorted(json.dumps(r, sort_keys=True) for r in got) == sorted(json.dumps(r, sort_keys=True) for r in expected)
    with open(os.path.join(out, "results.json")) as f, open(os.path.join(clean, "results.json")) as g:
        assert _without_timings(json.load(f)["metrics"]) == _without_timings(json.load(g)["metrics"])


@pytest.mark.slow
def test_evaluation_killed_between_batches_resumes_without_loss_or_duplicates(tiny_model, clean_evaluation, tmp_path):
    out = tmp_path / "killed"
    samples = out / "samples.jsonl"

    def two_batches_written():
        return samples.exists() and samples.read_bytes().count(b"\n") >= 8

    assert _kill_when(_evaluate(tiny_model, out), two_batches_written)
    assert 8 <= len(_samples(out)) < 24
    again = _run(_evaluate(tiny_model, out))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed" in json.loads((out / "results.json").read_text())["timing"]
    _same_evaluation(out, clean_evaluation)


@contextlib.contextmanager
def _small_disk(path, size_kb: int):
    """A real tmpfs of ``size_kb`` at ``path`` (yields a resize function), or None where mounting is not allowed."""
    os.makedirs(path, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        yield None
        return
    try:
        yield lambda kb: subprocess.run(["mount", "-o", f"remount,size={kb}k", str(path)], check=True)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _file_size_limit(limit: int):
    def apply():  # in the child: a write past `limit` bytes fails with EFBIG instead of killing the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_evaluation_on_a_full_disk_fails_cleanly_and_resumes_after_space_is_freed(
    tiny_model, clean_evaluation, tmp_path
):
    disk = tmp_path / "disk"
    with _small_disk(disk, 24) as resize:
        out = disk / "eval"
        if resize is not None:
            full = _run(_evaluate(tiny_model, out))
        else:  # no mount here: the file-size limit plays the full disk
            os.makedirs(disk, exist_ok=True)
            full = subprocess.run(
                _evaluate(tiny_model, out),
                cwd=ROOT,
                env=ENV,
                capture_output=True,
                text=True,
                timeout=300,
                preexec_fn=_file_size_limit(24 * 1024),
            )
        assert full.returncode != 0
        last = full.stderr.strip().splitlines()[-1]
        assert "space" in last.lower() or "too large" in last.lower(), full.stderr[-3000:]
        assert len(_samples(out)) < 24  # it really ran out, and what it wrote is whole lines
        if resize is not None:
            resize(4096)
        again = _run(_evaluate(tiny_model, out))
        assert again.returncode == 0, again.stderr[-3000:]
        _same_evaluation(out, clean_evaluation)
