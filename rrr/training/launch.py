"""How a training process behaves among others: it ends with its launcher, and it is its output directory's only writer.

**Ending with the launcher.** A training process started by ``accelerate launch`` / ``torchrun`` ends when the
launcher does.

Why: ``kill -9`` of the launcher cannot be forwarded to its children, so each worker would go on training
(holding the GPU, the output directory's lock, and appending to its logs) with nobody to collect it. The worker
cannot be told; it has to notice. On Linux the kernel does the noticing: ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` asks
for a SIGTERM when the parent dies. Elsewhere (or if ``prctl`` is unavailable) a daemon thread polls
``os.getppid()`` once a second and sends the same SIGTERM to its own process.

SIGTERM rather than SIGKILL: Python's default action for it ends the process at once, while a handler installed
by the user (or by a library that wants to flush a log) still gets its chance.

Only processes whose environment names a launcher are armed: a training started from a shell or a notebook is the
user's to stop, and its parent (the shell, a Jupyter kernel's parent) ending is no reason to stop it.

**One writer per output directory** (:func:`single_writer`): two trainings on one ``output_dir`` used to both
"succeed", interleaving their checkpoints and episode logs. The lock and the ownership marker are
``rrr.utils.outputs``'; this module decides which ranks take them under a launcher.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time

logger = logging.getLogger("rrr.train")

#: environment variables a launcher sets in the processes it starts (accelerate's own prefix; torchrun/elastic's)
LAUNCHER_ENV = ("LOCAL_RANK", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT")
LAUNCHER_ENV_PREFIXES = ("ACCELERATE_", "TORCHELASTIC_")

_PR_SET_PDEATHSIG = 1
_armed = False


def launched_by_launcher(environ=None) -> bool:
    """Whether this process was started by ``accelerate launch`` / ``torchrun`` (judged by what they export)."""
    env = os.environ if environ is None else environ
    return any(name in env for name in LAUNCHER_ENV) or any(k.startswith(LAUNCHER_ENV_PREFIXES) for k in env)


def die_with_launcher(force: bool = False, poll_seconds: float = 1.0) -> str | None:
    """Arrange for SIGTERM to this process when its parent (the launcher) dies; returns how, or ``None``.

    A no-op unless :func:`launched_by_launcher` (or ``force``). Idempotent. The parent may already have died
    between our fork and this call: the kernel would then never signal, so the parent id is read before and after
    arming, and a change (or a parent of 1, init having adopted us) ends the process right away.
    """
    global _armed
    if _armed:
        return "already armed"
    if not (force or launched_by_launcher()):
        return None
    parent = os.getppid()
    how = _arm_pdeathsig() if sys.platform.startswith("linux") else None
    if how is None:
        _start_parent_watch(parent, poll_seconds)
        how = "parent-watch thread"
    _armed = True
    now = os.getppid()
    if now != parent or now == 1:
        logger.error("the launcher (pid %d) is already gone: stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)
    return how


def _arm_pdeathsig() -> str | None:
    """``prctl(PR_SET_PDEATHSIG, SIGTERM)`` through libc; ``None`` when it cannot be done here."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            return None
    except (OSError, AttributeError):
        return None
    return "prctl(PR_SET_PDEATHSIG)"


def _start_parent_watch(parent: int, poll_seconds: float) -> None:
    def watch():
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        logger.error("the launcher (pid %d) is gone: stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="rrr-parent-watch", daemon=True).start()


@contextlib.contextmanager
def single_writer(args, kind: str, legacy_files=()):
    """Hold ``output_dir``'s one-writer lock and claim it as ``kind``'s for the block (``rrr.utils.outputs``).

    Under a distributed launch only the global main process takes the lock and claims the directory; its outcome is
    then broadcast to every rank, so a refusal on rank 0 stops all ranks at once with the same message instead of
    leaving the others waiting at their first collective until the launcher notices.
    """
    from rrr.utils.cli import UsageError
    from rrr.utils.outputs import OutputDirError, claim_output_dir, is_main_process, output_lock

    out = args.output_dir
    error = None
    created = not os.path.exists(out)  # a directory this run creates is removed again if start-up checks refuse it
    with contextlib.ExitStack() as stack:
        if is_main_process():
            try:
                stack.enter_context(output_lock(out, flag="--output_dir"))
                legacy = list(legacy_files) + (
                    [n for n in os.listdir(out) if n.startswith("checkpoint-")] if os.path.isdir(out) else []
                )
                claim_output_dir(out, kind, legacy=legacy, flag="--output_dir")
            except Exception as exc:  # any failure here must reach the other ranks, or they wait for rank 0
                error = exc
        message = _from_rank_zero(args, None if error is None else str(error))
        if error is not None:
            raise error
        if message is not None:
            raise OutputDirError(message)
        try:
            yield
        except UsageError:
            if created and is_main_process():
                _unclaim(out)
            raise


def _unclaim(path: str) -> None:
    """Remove a directory this run created when it holds nothing but rrr's marker: a run refused at start-up (bad
    data, a too-small dataset) leaves no trace, as if it had been refused before the claim."""
    from rrr.utils.outputs import MARKER

    with contextlib.suppress(OSError):
        if os.listdir(path) == [MARKER]:
            os.remove(os.path.join(path, MARKER))
            os.rmdir(path)


def _from_rank_zero(args, value):
    """``value`` as rank 0 has it, on every rank (a collective when several processes run; else ``value``)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return value
    from accelerate.utils import broadcast_object_list

    _ = args.device  # sets up the process group (TrainingArguments does it lazily) before the collective
    box = [value]
    broadcast_object_list(box, from_process=0)
    return box[0]
