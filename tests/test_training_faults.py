"""Training under faults: a checkpoint save cut short (kill -9, a full disk), a torn episode log, a finished run
re-run, a report line with nothing to report, a killed launcher, and two trainings on one output directory.

Each test drives the real trainer on the tiny model (a few steps on CPU); what it asserts is that nothing is lost
(the resumed run ends at the right step with every completed step's episodes), nothing is duplicated (no step's
episodes twice, no extra step), and nothing is left running or blocking the next run.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest
from trl import ModelConfig

from rrr.models import save_tiny_model
from rrr.training import RRRConfig, build_trainer, train
from rrr.training.config import QUIET_CPU_RUN
from rrr.utils.io import read_jsonl

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)


def run_options(tmp_path, **overrides) -> dict:
    """A 4-step KeyTask run on the tiny model, checkpointing every 2 steps (JSON-able: child scripts take it)."""
    base = dict(
        output_dir=str(tmp_path / "run"),
        task="synthetic:KeyTask",
        dataset_source="generated",
        dataset_size=64,
        first_attempt_source="column",
        max_completion_length=3,
        retry_max_tokens=3,
        num_generations=8,
        per_device_train_batch_size=16,
        learning_rate=5e-4,
        lr_scheduler_type="constant",
        max_steps=4,
        **QUIET_CPU_RUN,
        seed=0,
    )
    base.update(save_strategy="steps", save_steps=2)
    base.update(overrides)
    return base


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(str(tmp_path_factory.mktemp("tiny") / "tiny-model"))


def episode_steps(output_dir) -> Counter:
    return Counter(row["step"] for row in read_jsonl(os.path.join(output_dir, "episodes.jsonl")))


def assert_each_step_once(output_dir, steps) -> None:
    """Episodes of exactly ``steps``, the same number for each (a re-run step logged twice would double its count)."""
    counts = episode_steps(output_dir)
    assert set(counts) == set(steps), counts
    assert len(set(counts.values())) == 1, f"a step's episodes were lost or logged twice: {dict(counts)}"


def read_text(path) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def incomplete_checkpoints(output_dir) -> list[str]:
    path = os.path.join(output_dir, "incomplete-checkpoints")
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


# ------------------------------------------------------------------------------------------------------------------
# A checkpoint save cut short
# ------------------------------------------------------------------------------------------------------------------
CHILD = """
import json, os, signal, sys
sys.path.insert(0, {tests!r})
import conftest  # noqa: F401  (offline hub, one thread)
from trl import ModelConfig
from rrr.training import RRRConfig, train
from rrr.training.trl_adapter import RRRGRPOTrainer

kill_at = int(os.environ.get("RRR_TEST_KILL_AT_SAVE", "0"))
save_rng_state = RRRGRPOTrainer._save_rng_state

def save_rng_state_or_die(self, output_dir):
    # inside Trainer._save_checkpoint: weights, optimizer and scheduler are written; RNG state and
    # trainer_state.json are not yet. The test's own fault, not the library's.
    if self.state.global_step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return save_rng_state(self, output_dir)

RRRGRPOTrainer._save_rng_state = save_rng_state_or_die
summary = train(RRRConfig(**json.loads(sys.argv[1])), ModelConfig(model_name_or_path=sys.argv[2]))
print("SUMMARY " + json.dumps({{k: summary.get(k) for k in ("global_step", "resumed_from", "already_finished")}}))
"""


def child_env(**extra) -> dict:
    """The environment of a child process: this checkout's ``rrr`` first (not whichever one is installed)."""
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, **extra}


def run_child(tmp_path, options, model_dir, kill_at=None, timeout=300):
    script = tmp_path / "child_train.py"
    script.write_text(CHILD.format(tests=TESTS))
    env = child_env()
    if kill_at is not None:
        env["RRR_TEST_KILL_AT_SAVE"] = str(kill_at)
    return subprocess.run(
        [sys.executable, str(script), json.dumps(options), model_dir],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def child_summary(result) -> dict:
    line = next(line for line in result.stdout.splitlines() if line.startswith("SUMMARY "))
    return json.loads(line[len("SUMMARY ") :])


@pytest.mark.slow
def test_kill_during_checkpoint_save_resumes_from_the_previous_complete_one(tmp_path, tiny_dir):
    options = run_options(tmp_path)
    out = options["output_dir"]
    killed = run_child(tmp_path, options, tiny_dir, kill_at=4)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    partial = os.path.join(out, "checkpoint-4")
    assert os.path.exists(os.path.join(partial, "model.safetensors"))
    assert not os.path.exists(os.path.join(partial, "trainer_state.json"))  # the save really was cut short

    resumed = run_child(tmp_path, options, tiny_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = child_summary(resumed)
    assert summary["global_step"] == 4
    assert summary["resumed_from"].endswith("checkpoint-2")
    assert "skipping" in resumed.stdout + resumed.stderr and "trainer_state.json is missing" in resumed.stdout
    # the broken one was kept for inspection, out of the way of resume and rotation; a complete one replaced it
    (aside,) = incomplete_checkpoints(out)
    assert aside.startswith("checkpoint-4.")
    why = read_text(os.path.join(out, "incomplete-checkpoints", aside, "WHY_INCOMPLETE.txt"))
    assert "trainer_state.json is missing" in why
    assert os.path.exists(os.path.join(out, "checkpoint-4", "trainer_state.json"))
    assert_each_step_once(out, {0, 1, 2, 3})
    with open(os.path.join(out, "run_summary.json")) as f:
        assert json.load(f)["global_step"] == 4


@contextlib.contextmanager
def small_disk(path, size_kb: int):
    """A tmpfs of ``size_kb`` at ``path`` (root on Linux), or ``None`` where one cannot be mounted."""
    os.makedirs(path, exist_ok=True)
    mounted = (
        sys.platform.startswith("linux")
        and shutil.which("mount")
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )
    try:
        yield path if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_full_disk_during_checkpoint_save_resumes_from_the_previous_complete_one(tmp_path, tiny_dir, monkeypatch):
    """ENOSPC in the middle of ``checkpoint-4``: on a real full tmpfs where one can be mounted, else injected."""
    from transformers import Trainer, TrainerCallback

    with small_disk(tmp_path / "disk", 64 * 1024) as disk:
        options = run_options(tmp_path, output_dir=str(tmp_path / "disk" / "run"))
        out = options["output_dir"]
        filler = tmp_path / "disk" / "filler"

        class FillTheDiskBeforeTheLastSave(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):  # runs before this step's checkpoint is saved
                if state.global_step == 4 and disk is not None:
                    with open(filler, "wb", buffering=0) as f:
                        for chunk in (1 << 20, 1 << 12, 1):  # to the last byte
                            with contextlib.suppress(OSError):
                                while f.write(b"\0" * chunk):
                                    pass

        if disk is None:  # no tmpfs here: the weights are written, then the optimizer's save fails as a full disk would
            original = Trainer._save_optimizer_and_scheduler

            def full_disk(self, output_dir):
                if self.state.global_step == 4:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(output_dir, "optimizer.pt"))
                return original(self, output_dir)

            monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", full_disk)
        with pytest.raises(OSError) as failed:
            train(
                RRRConfig(**options),
                ModelConfig(model_name_or_path=tiny_dir),
                callbacks=[FillTheDiskBeforeTheLastSave()],
            )
        assert failed.value.errno == errno.ENOSPC or "No space left" in str(failed.value)
        assert os.path.isdir(os.path.join(out, "checkpoint-4"))
        assert not os.path.exists(os.path.join(out, "checkpoint-4", "trainer_state.json"))

        monkeypatch.undo()
        if filler.exists():
            filler.unlink()  # the user frees space and runs the same command again
        summary = train(RRRConfig(**options), ModelConfig(model_name_or_path=tiny_dir))
        assert summary["global_step"] == 4
        assert summary["resumed_from"].endswith("checkpoint-2")
        assert [name.split(".")[0] for name in incomplete_checkpoints(out)] == ["checkpoint-4"]
        assert_each_step_once(out, {0, 1, 2, 3})


# ------------------------------------------------------------------------------------------------------------------
# Completeness of a checkpoint
# ------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_dir):
    """A finished 2-step run with checkpoint-1 and checkpoint-2 (copy it before changing anything)."""
    tmp = tmp_path_factory.mktemp("finished")
    options = run_options(tmp, max_steps=2, save_steps=1, save_total_limit=2)
    train(RRRConfig(**options), ModelConfig(model_name_or_path=tiny_dir))
    return options


def copy_run(finished, tmp_path) -> dict:
    options = {**finished, "output_dir": str(tmp_path / "run")}
    shutil.copytree(finished["output_dir"], options["output_dir"])
    return options


def truncate(path, keep: float = 0.5) -> None:
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(int(size * keep))


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda c: os.remove(os.path.join(c, "trainer_state.json")), "trainer_state.json is missing"),
        (lambda c: truncate(os.path.join(c, "trainer_state.json")), "trainer_state.json is truncated"),
        (lambda c: truncate(os.path.join(c, "model.safetensors")), "model.safetensors is truncated"),
        (lambda c: os.remove(os.path.join(c, "model.safetensors")), "no model weights"),
        (lambda c: truncate(os.path.join(c, "optimizer.pt")), "optimizer.pt is truncated"),
        (lambda c: os.remove(os.path.join(c, "optimizer.pt")), "optimizer.pt is missing"),
        (lambda c: os.remove(os.path.join(c, "scheduler.pt")), "scheduler.pt is missing"),
        (lambda c: truncate(os.path.join(c, "rng_state.pth"), 0.9), "rng_state.pth is truncated"),
        (lambda c: os.rename(c, c.replace("checkpoint-2", "checkpoint-3")), "names step 2, not 3"),
    ],
    ids=[
        "no-state",
        "torn-state",
        "torn-weights",
        "no-weights",
        "torn-optimizer",
        "no-optimizer",
        "no-scheduler",
        "torn-rng",
        "misnamed",
    ],
)
def test_an_incomplete_checkpoint_is_skipped_with_its_reason(tmp_path, finished, damage, why):
    from transformers.trainer_utils import get_last_checkpoint, rotate_checkpoints

    from rrr.training.checkpoints import checkpoint_problem, plan_resume, set_aside

    out = copy_run(finished, tmp_path)["output_dir"]
    damage(os.path.join(out, "checkpoint-2"))
    (bad,) = [os.path.join(out, n) for n in os.listdir(out) if n in ("checkpoint-2", "checkpoint-3")]
    assert why in checkpoint_problem(bad)
    assert checkpoint_problem(os.path.join(out, "checkpoint-1")) is None
    plan = plan_resume(out)
    assert plan.checkpoint.endswith("checkpoint-1") and plan.step == 1
    assert plan.incomplete == [(bad, checkpoint_problem(bad))]
    (moved,) = set_aside(out, plan.incomplete)
    assert os.path.dirname(moved) == os.path.join(out, "incomplete-checkpoints")
    # transformers' own resume and rotation no longer see it
    assert get_last_checkpoint(out).endswith("checkpoint-1")
    rotate_checkpoints(out, save_total_limit=1)
    assert os.path.isdir(moved) and os.path.isdir(os.path.join(out, "checkpoint-1"))


def test_a_named_incomplete_checkpoint_is_refused_not_replaced(tmp_path, finished, tiny_dir):
    from rrr.training.checkpoints import CheckpointError, plan_resume

    out = copy_run(finished, tmp_path)["output_dir"]
    os.remove(os.path.join(out, "checkpoint-2", "trainer_state.json"))
    with pytest.raises(CheckpointError, match=r"checkpoint-2.*trainer_state\.json is missing"):
        plan_resume(out, os.path.join(out, "checkpoint-2"))
    assert plan_resume(out, os.path.join(out, "checkpoint-1")).step == 1
    # refused before anything is written: a mistyped path does not leave a claimed, empty output directory
    fresh = {**finished, "output_dir": str(tmp_path / "fresh"), "resume_from_checkpoint": f"{out}/checkpoint-2"}
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        train(RRRConfig(**fresh), ModelConfig(model_name_or_path=tiny_dir))
    assert not os.path.exists(fresh["output_dir"])


# ------------------------------------------------------------------------------------------------------------------
# Episodes on resume
# ------------------------------------------------------------------------------------------------------------------
def test_a_torn_episode_log_is_repaired_on_resume(tmp_path, tiny_dir):
    """Killed (or out of disk) while appending the first episodes after checkpoint-2: a half row ends the log."""
    from transformers import TrainerCallback

    options = run_options(tmp_path)
    out = options["output_dir"]

    class CrashAfterCheckpointTwo(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 2:
                control.should_training_stop = True

    trainer, _ = build_trainer(RRRConfig(**options), ModelConfig(model_name_or_path=tiny_dir))
    trainer.add_callback(CrashAfterCheckpointTwo())
    trainer.train()
    log = os.path.join(out, "episodes.jsonl")
    assert set(episode_steps(out)) == {0, 1}
    with open(log, "a") as f:
        f.write('{"step": 2, "task_id": 7, "reflec')  # the torn row of step 2

    summary = train(RRRConfig(**options), ModelConfig(model_name_or_path=tiny_dir))
    assert summary["global_step"] == 4 and summary["resumed_from"].endswith("checkpoint-2")
    assert_each_step_once(out, {0, 1, 2, 3})  # read_jsonl raises on a corrupt line in the middle of the log
    assert read_text(log).endswith("\n")


# ------------------------------------------------------------------------------------------------------------------
# A finished run re-run
# ------------------------------------------------------------------------------------------------------------------
def test_rerunning_a_finished_run_trains_nothing_unless_asked(tmp_path, finished, tiny_dir):
    options = copy_run(finished, tmp_path)
    out = options["output_dir"]
    before = {n: os.path.getmtime(os.path.join(out, n)) for n in ("model.safetensors", "episodes.jsonl")}
    episodes = read_text(os.path.join(out, "episodes.jsonl"))

    again = train(RRRConfig(**options), ModelConfig(model_name_or_path=tiny_dir))  # the identical command
    assert again["global_step"] == 2 and again["already_finished"] is True
    assert sorted(n for n in os.listdir(out) if n.startswith("checkpoint-")) == ["checkpoint-1", "checkpoint-2"]
    assert {n: os.path.getmtime(os.path.join(out, n)) for n in before} == before
    assert read_text(os.path.join(out, "episodes.jsonl")) == episodes

    # the final model missing (killed after its last checkpoint): saved from checkpoint-2, still nothing trained
    os.remove(os.path.join(out, "run_summary.json"))
    os.remove(os.path.join(out, "model.safetensors"))
    saved = train(RRRConfig(**options), ModelConfig(model_name_or_path=tiny_dir))
    assert saved["global_step"] == 2 and saved["already_finished"] is True
    assert os.path.exists(os.path.join(out, "model.safetensors"))
    assert not os.path.isdir(os.path.join(out, "checkpoint-3"))

    more = train(RRRConfig(**{**options, "max_steps": 3}), ModelConfig(model_name_or_path=tiny_dir))  # asked
    assert more["global_step"] == 3 and not more.get("already_finished")
    assert more["resumed_from"].endswith("checkpoint-2")
    assert_each_step_once(out, {0, 1, 2})


def test_sft_resumes_past_an_incomplete_checkpoint_and_stops_when_finished(tmp_path, tiny_dir):
    """The SFT trainer resumes the same way: newest complete checkpoint, nothing trained once finished."""
    from rrr.curriculum.dataset import CurriculumConfig, build_curriculum
    from rrr.curriculum.sft import CurriculumSFTConfig, train_sft
    from rrr.curriculum.teachers import OracleTeacher
    from rrr.tasks import get_task

    task = get_task("scheduling", strict=True)
    curriculum = build_curriculum(
        task,
        OracleTeacher(task),
        task.generate(4, seed=5),
        "strategy",
        str(tmp_path / "cur"),
        CurriculumConfig(progress=False),
    )
    options = dict(
        output_dir=str(tmp_path / "sft"),
        dataset_path=curriculum.sft_path,
        max_steps=2,
        per_device_train_batch_size=2,
        max_length=2048,
        save_strategy="steps",
        save_steps=1,
        **{k: v for k, v in QUIET_CPU_RUN.items() if k != "save_strategy"},
    )
    model_args = ModelConfig(model_name_or_path=tiny_dir, dtype="float32")
    out = options["output_dir"]
    assert train_sft(CurriculumSFTConfig(**options), model_args)["global_step"] == 2
    os.remove(os.path.join(out, "checkpoint-2", "trainer_state.json"))  # its save was cut short
    os.remove(os.path.join(out, "sft_summary.json"))  # ... so the run never finished

    resumed = train_sft(CurriculumSFTConfig(**options), model_args)
    assert resumed["global_step"] == 2 and resumed["resumed_from"].endswith("checkpoint-1")
    assert [n.split(".")[0] for n in incomplete_checkpoints(out)] == ["checkpoint-2"]
    again = train_sft(CurriculumSFTConfig(**options), model_args)
    assert again["global_step"] == 2 and again["already_finished"] is True
    assert not os.path.exists(os.path.join(out, "checkpoint-3"))


def test_report_line_of_a_step_without_failed_groups(monkeypatch, capsys):
    """The last logged step had no failed group: ``rrr/retry_success`` is None (NaN before logging)."""
    from rrr.cli import train as train_grpo  # what scripts/train_grpo.py runs

    summary = {"global_step": 2, "train_seconds": 1.0, "output_dir": "out"}
    monkeypatch.setattr(train_grpo, "parse_train_args", lambda argv: (None, None))
    for last in ({"rrr/retry_success": None, "rrr/first_attempt_acc": 1.0}, {"rrr/retry_success": float("nan")}, None):
        monkeypatch.setattr(train_grpo, "train", lambda a, m, last=last: {**summary, "last_log": last})
        assert train_grpo.main([]) == 0
        assert "retry success n/a" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------------------
# Processes: the launcher's children, and one writer per output directory
# ------------------------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for init to reap it counts as gone: it runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


LAUNCHED = """
import os, sys, time
sys.path.insert(0, {tests!r})
import conftest  # noqa: F401
import rrr.training.run as run
from rrr.training import RRRConfig, train
from rrr.training.config import QUIET_CPU_RUN
from trl import ModelConfig

def build_trainer(*a, **kw):  # stands in for the model load and training: long enough to be killed in
    with open({pid_file!r} + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace({pid_file!r} + ".tmp", {pid_file!r})
    time.sleep(120)
    raise SystemExit(3)

run.build_trainer = build_trainer
if os.environ.get("RRR_TEST_NO_PRCTL"):  # as on a platform without prctl: the portable watcher thread
    import rrr.training.launch as launch
    launch._arm_pdeathsig = lambda: None
args = RRRConfig(output_dir={out!r}, task="synthetic:KeyTask", max_steps=1, per_device_train_batch_size=8,
                 num_generations=8, **QUIET_CPU_RUN)
train(args, ModelConfig(model_name_or_path="unused"))
"""


def test_only_launched_processes_are_tied_to_their_parent():
    from rrr.training.launch import launched_by_launcher

    assert not launched_by_launcher({"PATH": "/bin", "HOME": "/root"})
    for name in ("LOCAL_RANK", "ACCELERATE_USE_CPU", "TORCHELASTIC_RUN_ID"):
        assert launched_by_launcher({name: "0"})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", ["prctl", "watcher-thread"])
def test_training_ends_with_a_killed_launcher(tmp_path, how):
    pid_file = str(tmp_path / "child.pid")
    script = tmp_path / "launched.py"
    script.write_text(LAUNCHED.format(tests=TESTS, pid_file=pid_file, out=str(tmp_path / "run")))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--master_port", str(free_port())]
    launcher = subprocess.Popen(
        [*cmd, str(script)],
        cwd=ROOT,
        env=child_env(**({"RRR_TEST_NO_PRCTL": "1"} if how == "watcher-thread" else {})),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    child = None
    try:
        deadline = time.time() + 180
        while not os.path.exists(pid_file):
            assert launcher.poll() is None, launcher.stderr.read().decode()[-3000:]
            assert time.time() < deadline, "the launched training never started"
            time.sleep(0.2)
        child = int(read_text(pid_file))
        assert child != launcher.pid and not gone(child)
        launcher.kill()  # kill -9: nothing can be forwarded
        launcher.wait()
        deadline = time.time() + 10
        while not gone(child) and time.time() < deadline:
            time.sleep(0.1)
        assert gone(child), "the training process outlived its killed launcher"
    finally:
        if child is not None and not gone(child):
            os.kill(child, signal.SIGKILL)
        if launcher.poll() is None:
            launcher.kill()
        launcher.stderr.close()


def test_a_second_training_on_one_output_directory_fails_at_once(tmp_path, tiny_dir):
    from rrr.utils.outputs import OutputLockedError

    options = run_options(tmp_path, max_steps=1)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from rrr.utils.outputs import output_lock
                with output_lock({options["output_dir"]!r}, "first training"):
                    print("locked", flush=True)
                    time.sleep(120)
                """
            ),
        ],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        start = time.time()
        with pytest.raises(OutputLockedError, match=rf"pid {holder.pid}\b.*first training"):
            train(RRRConfig(**options), ModelConfig(model_name_or_path=tiny_dir))
        assert time.time() - start < 10
        assert not os.path.exists(os.path.join(options["output_dir"], "episodes.jsonl"))
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    # the holder is gone (kill -9 included): its lock went with it
    summary = train(RRRConfig(**options), ModelConfig(model_name_or_path=tiny_dir))
    assert summary["global_step"] == 1


@pytest.mark.slow
def test_a_locked_output_directory_stops_every_rank(tmp_path, tiny_dir):
    """Two ranks on a directory another training holds: both stop at once with the holder's name, none hangs."""
    from rrr.utils.outputs import output_lock

    out = str(tmp_path / "ddp")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port())]
    cmd += ["scripts/train_grpo.py", "--config", "recipes/smoke/rrr/config_countdown.yaml"]
    cmd += ["--model_name_or_path", tiny_dir, "--output_dir", out, "--max_steps", "1", "--use_cpu", "true"]
    with output_lock(out, "the first training"):
        start = time.time()
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=ROOT, env=child_env())
    assert result.returncode != 0
    assert f"pid {os.getpid()}" in result.stdout + result.stderr
    assert time.time() - start < 200
    assert not os.path.exists(os.path.join(out, "episodes.jsonl"))
