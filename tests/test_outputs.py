"""Output directories, locks, append-only logs and mining resume under faults (issue 13).

What a careless or unlucky user does: point ``--output-dir`` at a project or a file, run two writers on one
directory, ``kill -9`` a run, fill the disk mid-append, run under umask 022. Each test names the problem it covers;
each fails on the code before ``rrr.utils.outputs`` existed.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rrr.evaluation import EvalConfig, evaluate, make_generator
from rrr.models import save_tiny_model
from rrr.utils.io import append_jsonl, atomic_write_json, read_jsonl

ROOT = Path(__file__).resolve().parent.parent
SMALL = dict(attempt_max_tokens=8, reflection_max_tokens=8, retry_max_tokens=8, source="generated")
MINE = ["--task", "scheduling", "--source", "generated", "--k", "2", "--max-tokens", "6", "--no-progress"]
MINE += ["--temperature", "1.0", "--backend", "hf"]
SAMPLES = ".mining_samples.jsonl"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny_model(str(tmp_path_factory.mktemp("models") / "tiny"))


def script(name):
    spec = importlib.util.spec_from_file_location(f"{name}_cli", ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ----------------------------------------------------------------------------------------------------------------------
# 1. never delete or replace what rrr did not write
# ----------------------------------------------------------------------------------------------------------------------
def test_mining_refuses_a_foreign_directory_the_current_directory_and_a_file(tiny, tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "README.md").write_text("my project\n")
    (project / "src" / "main.py").write_text("print('hi')\n")
    before = snapshot(project)
    mine = script("mine_failures")
    monkeypatch.chdir(project)
    for out in (".", str(project), str(project / "src")):
        assert mine.main(["--model", tiny, "--n", "2", *MINE, "--output-dir", out]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert "not written by rrr" in line and "--overwrite" in line
    assert snapshot(project) == before

    file = tmp_path / "notes.txt"
    file.write_text("keep me\n")
    assert mine.main(["--model", tiny, "--n", "2", *MINE, "--output-dir", str(file)]) == 2
    assert "is a file" in one_error_line(capsys.readouterr().err)
    assert file.read_text() == "keep me\n"

    # --overwrite never takes the current directory (or one above it) either
    assert mine.main(["--model", tiny, "--n", "2", *MINE, "--output-dir", ".", "--overwrite"]) == 2
    assert "current directory" in one_error_line(capsys.readouterr().err)
    assert snapshot(project) == before


def test_model_builder_and_evaluation_refuse_foreign_directories(tiny, tmp_path, capsys):
    foreign = tmp_path / "data"
    foreign.mkdir()
    (foreign / "train.jsonl").write_text('{"a": 1}\n')
    before = snapshot(foreign)
    with pytest.raises(ValueError, match="not written by rrr"):  # rrr.utils.outputs.OutputDirError
        save_tiny_model(str(foreign))
    argv = ["--model", tiny, "--task", "countdown", "--n", "2", "--no-progress", "--source", "generated"]
    assert script("evaluate").main([*argv, "--output-dir", str(foreign)]) == 2
    assert "not written by rrr" in one_error_line(capsys.readouterr().err)
    # another command's output is not "ours" either: an evaluation never writes into a model directory
    assert script("evaluate").main([*argv, "--output-dir", tiny]) == 2
    assert "'tiny_model'" in one_error_line(capsys.readouterr().err)
    assert snapshot(foreign) == before
    # the builder's own --overwrite replaces it, as asked
    save_tiny_model(str(foreign), overwrite=True)
    assert not (foreign / "train.jsonl").exists() and (foreign / "config.json").exists()


def test_rerunning_a_command_on_its_own_output_works(tiny, tmp_path, capsys):
    model = tmp_path / "m"
    save_tiny_model(str(model))
    save_tiny_model(str(model), seed=3)  # replaces its own earlier output
    assert json.loads((model / "rrr_tiny.json").read_text())["seed"] == 3
    out = tmp_path / "failures"
    mine = script("mine_failures")
    for _ in range(2):
        assert mine.main(["--model", tiny, *MINE, "--n", "4", "--output-dir", str(out)]) == 0
    assert json.loads((out / "mining_report.json").read_text())["n"] == 4
    assert len(read_jsonl(out / SAMPLES)) == 4  # the re-run rebuilt from its samples, added none
    # a changed setting would mix two runs: refused, and --overwrite starts over
    assert mine.main(["--model", tiny, *MINE, "--n", "5", "--output-dir", str(out)]) == 2
    assert "other settings (n differ)" in one_error_line(capsys.readouterr().err)
    assert mine.main(["--model", tiny, *MINE, "--n", "5", "--output-dir", str(out), "--overwrite"]) == 0
    assert json.loads((out / "mining_report.json").read_text())["n"] == 5


# ----------------------------------------------------------------------------------------------------------------------
# 7. one writer per output directory; a killed one does not block
# ----------------------------------------------------------------------------------------------------------------------
HOLDER = textwrap.dedent(
    """
    import sys, time
    from rrr.evaluation import EvalConfig, evaluate
    from rrr.generation.base import Generation

    class Stuck:  # a generator in the middle of a long batch
        def generate(self, conversations, params):
            print("writing", flush=True)
            time.sleep(600)

    cfg = EvalConfig(task="scheduling", n=4, attempt_max_tokens=8, reflection_max_tokens=8, retry_max_tokens=8,
                     source="generated")
    evaluate(Stuck(), cfg, sys.argv[1], model_name="tiny", progress=False)
    """
)


def test_second_writer_fails_naming_the_first_and_a_killed_one_does_not_block(tiny, tmp_path):
    out = tmp_path / "eval"
    first = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env()
    )
    try:
        assert first.stdout.readline().strip() == "writing", first.stderr.read()
        gen, _ = make_generator(tiny, "hf")
        cfg = EvalConfig(task="scheduling", n=4, **SMALL)
        with pytest.raises(ValueError, match=rf"being written by another process: pid {first.pid} on .*, `.*-c"):
            evaluate(gen, cfg, str(out), model_name="tiny", progress=False)
        assert not (out / "samples.jsonl").exists()  # the second writer wrote nothing
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        results = evaluate(gen, cfg, str(out), model_name="tiny", progress=False)  # the dead holder's lock is gone
        assert results["metrics"]["n"] == 4
    finally:
        with contextlib.suppress(ProcessLookupError):
            first.kill()
        first.wait(timeout=30)
        first.stdout.close()
        first.stderr.close()
    assert not list(tmp_path.glob(".eval.rrr-lock"))  # released (and removed) by the run that finished


def test_lock_is_reentrant_in_process_and_skipped_off_rank_zero(tmp_path, monkeypatch):
    from rrr.utils.outputs import held_locks, output_lock

    with output_lock(tmp_path / "a", "outer") as lock, output_lock(tmp_path / "a", "inner"):
        assert held_locks() == [lock]
    assert held_locks() == []
    monkeypatch.setenv("RANK", "1")
    with output_lock(tmp_path / "a") as lock:
        assert lock is None


# ----------------------------------------------------------------------------------------------------------------------
# 5. append-only JSONL: a torn tail is repaired, never left by rrr, and a corrupt line names the file and the fix
# ----------------------------------------------------------------------------------------------------------------------
def test_evaluation_resume_repairs_a_torn_samples_line(tiny, tmp_path, caplog):
    gen, _ = make_generator(tiny, "hf")
    cfg = EvalConfig(task="scheduling", n=6, batch_size=3, **SMALL)
    out = tmp_path / "eval"
    first = evaluate(gen, cfg, str(out), model_name="tiny", progress=False)
    samples = out / "samples.jsonl"
    data = samples.read_bytes()
    lines = data.splitlines(keepends=True)
    torn = lines[4][: len(lines[4]) // 2]  # a disk that filled up in the middle of row 5
    samples.write_bytes(b"".join(lines[:4]) + torn)
    (out / "results.json").unlink()
    with caplog.at_level(logging.WARNING, logger="rrr.io"):
        again = evaluate(gen, cfg, str(out), model_name="tiny", progress=False)
    assert f"{samples}: dropped a torn last line ({len(torn)} bytes" in caplog.text
    rows = read_jsonl(samples)
    assert samples.read_bytes().endswith(b"\n") and len(rows) == 6
    assert sorted(r["id"] for r in rows) == sorted({r["id"] for r in rows})
    assert again["metrics"] == first["metrics"] and again["timing"]["resumed"] == 4
    # and the run after that is fine too (it used to fail with "Expecting ',' delimiter")
    assert evaluate(gen, cfg, str(out), model_name="tiny", progress=False)["metrics"] == first["metrics"]


def test_append_repairs_and_a_corrupt_middle_line_names_file_line_and_fix(tmp_path, caplog):
    log = tmp_path / "episodes.jsonl"
    torn = '{"step": 2, "text": "ha'
    log.write_text('{"step": 1}\n' + torn)
    with caplog.at_level(logging.WARNING, logger="rrr.io"):
        append_jsonl(log, [{"step": 2}])
    assert f"{log}: dropped a torn last line ({len(torn)} bytes" in caplog.text
    assert [r["step"] for r in read_jsonl(log)] == [1, 2]
    from rrr.utils.io import repair_jsonl

    log.write_text('{"step": 1}\n{"step": 2}')  # a complete row missing only its newline is kept
    assert repair_jsonl(log) == 0 and log.read_text() == '{"step": 1}\n{"step": 2}\n'

    log.write_text('{"step": 1}\n{"step": 2, "te{"step": 3}\n{"step": 4}\n')  # what an older rrr left behind
    with pytest.raises(ValueError, match=rf"{log}, line 2: not a JSON row .*delete that line .*sed -i '2d'"):
        read_jsonl(log)


@contextlib.contextmanager
def small_filesystem(tmp_path: Path):
    """A 64 KiB tmpfs when this machine lets us mount one (root, no container restriction), else None."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    ok = (
        os.geteuid() == 0
        and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)]).returncode == 0
    )
    try:
        yield mnt if ok else None
    finally:
        if ok:
            subprocess.run(["umount", str(mnt)], check=False)


def test_a_full_disk_during_append_leaves_no_torn_line(tmp_path, monkeypatch):
    rows = [{"i": i, "text": "x" * 900} for i in range(200)]  # ~180 KB: more than the disk holds
    with small_filesystem(tmp_path) as mnt:
        if mnt is not None:  # a real ENOSPC
            log = mnt / "samples.jsonl"
            append_jsonl(log, rows[:20])
            before = log.read_bytes()
            with pytest.raises(OSError) as info:
                append_jsonl(log, rows[20:])
            assert info.value.errno == errno.ENOSPC
            assert log.read_bytes() == before
    # an injected one, everywhere (CI may not mount): the write fails after part of the data reached the file
    log = tmp_path / "samples.jsonl"
    append_jsonl(log, rows[:2])
    before = log.read_bytes()
    real_write = os.write

    def half_then_full(fd, data):
        if len(data) > 100:
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        append_jsonl(log, rows[2:5])
    monkeypatch.setattr(os, "write", real_write)
    assert log.read_bytes() == before
    append_jsonl(log, rows[2:3])
    assert [r["i"] for r in read_jsonl(log)] == [0, 1, 2]


# ----------------------------------------------------------------------------------------------------------------------
# 11. artifacts keep the user's umask
# ----------------------------------------------------------------------------------------------------------------------
def test_artifacts_keep_the_umask(tiny, tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_json(str(tmp_path / "a.json"), {"a": 1})
        model = tmp_path / "model"
        save_tiny_model(str(model))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
    assert stat.S_IMODE(model.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in model.iterdir()} == {0o644}


# ----------------------------------------------------------------------------------------------------------------------
# 11 + Deliver 5. mining resumes like evaluation, and leaves no temp directories
# ----------------------------------------------------------------------------------------------------------------------
def test_killed_mining_resumes_to_the_uninterrupted_result(tiny, tmp_path):
    import datasets

    argv = ["--model", tiny, *MINE, "--n", "40", "--batch-size", "4"]
    mine = script("mine_failures")
    assert mine.main([*argv, "--output-dir", str(tmp_path / "whole")]) == 0
    whole = datasets.load_from_disk(str(tmp_path / "whole")).to_list()

    out = tmp_path / "failures"
    cmd = [sys.executable, str(ROOT / "scripts" / "mine_failures.py"), *argv, "--output-dir", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    deadline, written = time.time() + 60, 0
    while time.time() < deadline and proc.poll() is None:
        with contextlib.suppress(FileNotFoundError):
            written = (out / SAMPLES).read_bytes().count(b"\n")
        if written >= 8:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert 8 <= written < 40, "the mining run was not killed in the middle"
    # what a kill during the final swap leaves beside the output, plus an unrelated dot-dir that must stay
    (tmp_path / ".failures.tmp-deadbeef").mkdir()
    (tmp_path / ".failures.tmp-deadbeef" / "data-00000-of-00001.arrow").write_bytes(b"partial")
    (tmp_path / ".other.tmp-1").mkdir()

    assert mine.main([*argv, "--output-dir", str(out)]) == 0
    rows = read_jsonl(out / SAMPLES)
    assert len(rows) == 40 and len({r["id"] for r in rows}) == 40  # none lost, none duplicated
    assert rows == read_jsonl(tmp_path / "whole" / SAMPLES)
    assert datasets.load_from_disk(str(out)).to_list() == whole
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert leftovers == [".other.tmp-1"]


# ----------------------------------------------------------------------------------------------------------------------
# 11. every argument is checked before anything is written
# ----------------------------------------------------------------------------------------------------------------------
def test_bad_evaluation_arguments_write_nothing_and_the_fixed_command_runs(tiny, tmp_path, capsys):
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        EvalConfig(task="scheduling", temperature=-1)  # the library path: refused before evaluate() writes
    out = tmp_path / "eval"
    argv = ["--model", tiny, "--task", "scheduling", "--n", "2", "--no-progress", "--source", "generated"]
    argv += ["--attempt-max-tokens", "8", "--reflection-max-tokens", "8", "--retry-max-tokens", "8"]
    argv += ["--output-dir", str(out)]
    evaluate_cli = script("evaluate")
    for bad in (["--temperature", "-1"], ["--task-kwargs", "[1]"], ["--task-kwargs", "{"], ["--task", "nosuch"]):
        bad_argv = list(argv)
        if bad[0] == "--task":
            bad_argv[bad_argv.index("--task") + 1] = bad[1]
        else:
            bad_argv += bad
        assert evaluate_cli.main(bad_argv) == 2, bad
        one_error_line(capsys.readouterr().err)
        assert not out.exists(), bad
    assert evaluate_cli.main(argv) == 0


def test_mining_resumes_a_batch_torn_mid_append_to_the_same_attempts(tiny, tmp_path, caplog):
    from rrr.evaluation import MiningConfig, mine_failures
    from rrr.tasks import get_task

    task = get_task("scheduling")
    examples = [dict(ex) for ex in task.load(split="train", n=12, seed=0, source="generated")]
    gen, _ = make_generator(tiny, "hf")
    config = MiningConfig(k=2, temperature=1.0, max_tokens=6, batch_size=4)
    log = tmp_path / "samples.jsonl"
    kept, report = mine_failures(task, gen, examples, config, progress=False, samples_path=str(log))
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:6]) + lines[6][:10])  # killed inside the second batch's append
    with caplog.at_level(logging.WARNING, logger="rrr.io"):
        again, report_again = mine_failures(task, gen, examples, config, progress=False, samples_path=str(log))
    assert "dropped a torn last line (10 bytes" in caplog.text
    assert log.read_bytes().splitlines(keepends=True) == lines  # the batch was redone whole: the same attempts
    assert again == kept and report_again == report
