"""Output directories: rrr only replaces what it wrote, and one process at a time writes each one.

Two rules, shared by every writer (training, SFT, evaluation, mining, curriculum, demo, ablation, model builders):

**Ownership.** A directory rrr writes carries ``.rrr-output.json`` (``MARKER``): the *kind* of output (one name per
command, e.g. ``"evaluate"``, ``"mine_failures"``), the command line and the time it was first written.
``check_output_dir(path, kind)`` accepts a path that does not exist, an empty directory, or a directory whose marker
has the same kind (an earlier output of the same command: re-running resumes or replaces it, as it always did).
Anything else is refused with one message saying how to proceed (another path, or ``--overwrite`` where the command
offers it): a regular file, a non-empty directory without the marker (``--output-dir .`` inside a project used to
delete the project), or the output of another command. Outputs written before the marker existed are recognised by
a *legacy* file only that command writes (``eval_config.json`` for an evaluation, ...), so old runs keep resuming.

* ``claim_output_dir(path, kind)`` — for writers that fill a directory in place and resume from it (evaluation,
  training, demo, ablation, curriculum): checks, creates it, writes the marker.
* ``replace_directory(path, kind)`` — for writers that build a whole directory and swap it in (a mined dataset, a
  model): checks, builds in ``.<name>.tmp-*`` beside it, writes the marker, swaps. Its leftovers from a killed run
  are removed by the next run (``clean_stale_temps``), and a swap killed half-way is rolled back to the previous
  output rather than losing both.

**One writer.** ``output_lock(path, command)`` holds an ``fcntl.flock`` on ``.<name>.rrr-lock`` *beside* the
directory (beside, because ``replace_directory`` swaps the directory itself, and nothing is written into a path
before its ownership is checked). The lock file records pid, host, command and start time, so a second writer fails
at once naming the first. ``flock`` (not a pid file) because the kernel releases it when its holder dies: a
``kill -9``'d run never blocks the next one. Locks are re-entrant within a process (the demo's evaluation stage may
lock a directory its caller already holds).

Under ``accelerate launch`` / ``torchrun`` every rank runs the same script on the same output directory. Only the
global main process (``RANK`` unset or ``0``) takes the lock; the other ranks skip it (``output_lock`` yields
``None`` there). A second launch on a locked directory fails on its rank 0, and the launcher then ends its other
ranks; taking it on every rank would make rank 1 of the *same* launch fail against its own rank 0. Call
``output_lock`` on every rank anyway (it is a no-op off rank 0), and claim/write on the main process only, as the
trainers already do for their files.

Errors are ``OutputDirError`` (a ``ValueError``: a bad ``--output-dir`` is a bad argument, and every script already
turns a ``ValueError`` into one ``error:`` line with exit status 2).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import glob
import json
import logging
import os
import shlex
import shutil
import socket
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

logger = logging.getLogger("rrr.outputs")

#: The ownership marker inside every directory rrr writes.
MARKER = ".rrr-output.json"
#: The lock file's suffix; it lives beside the directory as ``.<name>.rrr-lock``.
LOCK_SUFFIX = ".rrr-lock"
#: Temp directories of ``replace_directory`` are ``.<name>.tmp-<random>`` (and ``...tmp-<random>.old`` mid-swap).
TEMP_INFIX = ".tmp-"

_SECRET_FLAGS = ("key", "token", "secret", "password")


class OutputDirError(ValueError):
    """An output path rrr must not write to as asked: not its own, or being written by another process."""


class OutputLockedError(OutputDirError):
    """Another live process holds the output directory's lock (the message names it)."""


# ----------------------------------------------------------------------------------------------------------------------
# Provenance
# ----------------------------------------------------------------------------------------------------------------------
def command_line(argv: list[str] | None = None) -> str:
    """``sys.argv`` as one shell-quoted line for markers and lock files, values of key/token flags masked.

    The marker and lock files outlive the run, so a secret passed on the command line must not land in them.
    """
    argv = list(sys.argv if argv is None else argv)
    out, mask_next = [], False
    for arg in argv:
        if mask_next:
            out.append("***")
            mask_next = False
            continue
        flag, eq, _value = arg.partition("=")
        secret = flag.startswith("-") and any(s in flag.lower() for s in _SECRET_FLAGS) and not flag.endswith("-env")
        if secret and eq:
            out.append(f"{flag}=***")
        else:
            out.append(arg)
            mask_next = secret
    text = shlex.join(out)
    return text if len(text) <= 500 else text[:497] + "..."


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


# ----------------------------------------------------------------------------------------------------------------------
# Ownership
# ----------------------------------------------------------------------------------------------------------------------
def read_marker(path: str) -> dict | None:
    """The marker of directory ``path`` (``{"kind", "command", "created", ...}``), or None when it has none."""
    try:
        with open(os.path.join(path, MARKER), encoding="utf-8") as f:
            marker = json.load(f)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError):
        return {"kind": None, "command": "unreadable marker"}
    return marker if isinstance(marker, dict) else {"kind": None, "command": "unreadable marker"}


def write_marker(path: str, kind: str, command: str | None = None, **info: Any) -> None:
    """Write the ownership marker into directory ``path`` (atomically; ``info`` adds JSON fields)."""
    from rrr.utils.io import atomic_write_json

    previous = read_marker(path) or {}
    created = previous.get("created") if previous.get("kind") == kind else None
    marker = {"kind": kind, "command": command or command_line(), "created": created or _now(), **info}
    atomic_write_json(os.path.join(path, MARKER), marker)


def _contents(path: str) -> list[str]:
    return [n for n in os.listdir(path) if n != MARKER and not n.endswith(LOCK_SUFFIX)]


def check_output_dir(
    path: str,
    kind: str,
    *,
    legacy: Iterable[str] = (),
    overwrite: bool = False,
    flag: str = "--output-dir",
    overwrite_flag: str | None = None,
) -> str:
    """Whether rrr may write output ``kind`` at ``path``; returns ``"new"``, ``"empty"``, ``"ours"`` or
    ``"overwrite"``, or raises ``OutputDirError`` saying how to proceed. Writes nothing.

    ``legacy``: file names (inside ``path``) that only this command writes, so a directory it wrote before markers
    existed still counts as its own. ``overwrite``: the user asked to replace whatever is there (a directory only:
    never a regular file, never the current directory or one above it). ``flag`` / ``overwrite_flag`` name the
    options in the message (``overwrite_flag=None``: the command has no such option, so it is not suggested).
    """
    path = os.path.abspath(os.path.expanduser(path))
    other = f"choose another {flag}"
    if not os.path.lexists(path):
        return "new"
    if not os.path.isdir(path):
        raise OutputDirError(f"{path} is a file, not a directory: rrr will not replace it; move it away or {other}")
    if not _contents(path):
        return "empty"
    marker = read_marker(path)
    if marker is not None and marker.get("kind") == kind:
        return "ours"
    if marker is None and any(os.path.exists(os.path.join(path, name)) for name in legacy):
        return "ours"
    if overwrite:
        here = os.path.realpath(os.getcwd())
        target = os.path.realpath(path)
        if here == target or here.startswith(target.rstrip(os.sep) + os.sep):
            raise OutputDirError(f"refusing to overwrite {path}: it holds the current directory; {other}")
        return "overwrite"
    how = f"{other}, or pass {overwrite_flag} to replace it" if overwrite_flag else other
    if marker is not None:
        raise OutputDirError(
            f"{path} holds the output of another rrr command ({marker.get('kind')!r}, written by "
            f"`{marker.get('command')}`), not of {kind!r}: rrr will not mix the two; {how}"
        )
    raise OutputDirError(
        f"{path} is not empty and was not written by rrr's {kind!r} (no {MARKER}): rrr will not delete or mix into "
        f"files it did not write; {how}"
    )


def claim_output_dir(path: str, kind: str, *, legacy: Iterable[str] = (), command: str | None = None, **kw) -> str:
    """``check_output_dir``, then create ``path`` and mark it as ``kind``'s; returns the check's answer.

    For writers that fill a directory in place and resume from it. Call it while holding ``output_lock(path)``
    (on the main process only under a distributed launch). With ``overwrite=True`` a directory that is not this
    command's is deleted first (the user asked to replace it); this command's own output is kept, to resume from.
    """
    state = check_output_dir(path, kind, legacy=legacy, **kw)
    if state == "overwrite":
        shutil.rmtree(path)
    os.makedirs(path, exist_ok=True)
    if state != "ours" or read_marker(path) is None:
        write_marker(path, kind, command)
    return state


def _temp_prefix(path: str) -> str:
    return os.path.join(os.path.dirname(path), f".{os.path.basename(path)}{TEMP_INFIX}")


def clean_stale_temps(path: str) -> list[str]:
    """Remove the ``.<name>.tmp-*`` directories a killed ``replace_directory(path)`` left; returns what it removed.

    Only names of ``replace_directory``'s own pattern for this ``path`` are touched. A swap killed between its two
    renames leaves ``path`` absent and the previous output at ``...tmp-*.old``: that one is moved back first. Call
    it holding ``output_lock(path)``, so no live writer's temp dir is removed.
    """
    path = os.path.abspath(path)
    stale = sorted(glob.glob(glob.escape(_temp_prefix(path)) + "*"))
    olds = [p for p in stale if p.endswith(".old") and os.path.isdir(p)]
    if olds and not os.path.lexists(path):
        logger.warning("%s: restoring the previous output from %s (a replacement was interrupted)", path, olds[-1])
        os.replace(olds[-1], path)
        stale.remove(olds[-1])
    removed = []
    for p in stale:
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(p)
        removed.append(p)
    if removed:
        logger.info("%s: removed %d leftover temp dir(s) of an interrupted run", path, len(removed))
    return removed


@contextlib.contextmanager
def replace_directory(
    path: str,
    kind: str,
    *,
    legacy: Iterable[str] = (),
    overwrite: bool = False,
    command: str | None = None,
    flag: str = "--output-dir",
    overwrite_flag: str | None = None,
    info: dict | None = None,
) -> Iterator[str]:
    """Yield a temp directory beside ``path``; on success mark it as ``kind``'s and swap it in, on error remove it.

    The result is complete or absent (readers never see half a model or dataset), and what it replaces must pass
    ``check_output_dir`` first: only an earlier output of the same command, or anything with ``overwrite``.
    The result has the user's umask, whatever wrote into it (``mkdtemp``'s 0700 and the 0600 files ``safetensors``
    writes through its own temp files made artifacts unreadable to a group that the umask lets read them).
    """
    from rrr.utils.io import apply_umask, make_temp_dir

    path = os.path.abspath(os.path.expanduser(path))
    check_output_dir(path, kind, legacy=legacy, overwrite=overwrite, flag=flag, overwrite_flag=overwrite_flag)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    clean_stale_temps(path)
    tmp = make_temp_dir(_temp_prefix(path))
    try:
        yield tmp
        write_marker(tmp, kind, command, **(info or {}))
        apply_umask(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if os.path.lexists(path):
        old = tmp + ".old"
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------------------------------
# Locks
# ----------------------------------------------------------------------------------------------------------------------
_HELD: dict[str, list] = {}  # lock path -> [fd, depth]
_HELD_GUARD = threading.Lock()


def lock_path(path: str) -> str:
    """Where ``output_lock(path)`` keeps its lock file: ``.<name>.rrr-lock`` beside the directory."""
    path = os.path.abspath(os.path.expanduser(path)).rstrip(os.sep) or os.sep
    return os.path.join(os.path.dirname(path), f".{os.path.basename(path)}{LOCK_SUFFIX}")


def is_main_process() -> bool:
    """True unless this is a non-zero rank of a distributed launch (``RANK`` is set by torchrun and accelerate)."""
    return os.environ.get("RANK", "0") in ("", "0")


def _holder_message(path: str, fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 65536, 0).decode("utf-8") or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder:
        return f"{path} is being written by another process (it has just started); wait for it, or choose another"
    pid, host = holder.get("pid"), holder.get("host")
    alive = ""
    if host == socket.gethostname() and isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            alive = " (no longer running: a child process it started still holds the lock)"
        except PermissionError:
            pass
    return (
        f"{path} is being written by another process: pid {pid} on {host}{alive}, `{holder.get('command')}`, "
        f"since {holder.get('since')}; wait for it to finish (or stop it: kill {pid}), or choose another"
    )


@contextlib.contextmanager
def output_lock(
    path: str, command: str | None = None, *, flag: str = "--output-dir", all_ranks: bool = False
) -> Iterator[str | None]:
    """Hold the one-writer lock of output directory ``path`` for the block; yields the lock file's path.

    Fails at once with ``OutputLockedError`` naming the holder (pid, host, command, since when) when another live
    process holds it; never waits (two runs on one directory is a mistake to report, not a queue). A lock left by a
    killed process does not count: ``flock`` dies with its holder. Re-entrant within a process. On a non-zero rank
    of a distributed launch it does nothing and yields None (see the module docstring), unless ``all_ranks``.

    The lock file is removed on release; one left by a killed run is harmless (its lock is gone) and reused.
    """
    if not all_ranks and not is_main_process():
        yield None
        return
    lp = lock_path(path)
    with _HELD_GUARD:
        held = _HELD.get(lp)
        if held is not None:
            held[1] += 1
    if held is not None:
        try:
            yield lp
        finally:
            with _HELD_GUARD:
                held[1] -= 1
        return
    fd = _acquire(lp, os.path.abspath(os.path.expanduser(path)), flag)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command or command_line(), "since": _now()}
    with contextlib.suppress(OSError):  # who holds it is for the message only: a full disk must not leak the lock
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    with _HELD_GUARD:
        _HELD[lp] = [fd, 1]
    try:
        yield lp
    finally:
        with _HELD_GUARD:
            _HELD.pop(lp, None)
        with contextlib.suppress(OSError):
            os.unlink(lp)  # before unlocking: a process that opened it meanwhile sees the inode change and retries
        os.close(fd)


def _acquire(lp: str, path: str, flag: str) -> int:
    os.makedirs(os.path.dirname(lp), exist_ok=True)
    while True:
        try:
            fd = os.open(lp, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                raise OutputDirError(
                    f"cannot create the lock file {lp} for {path} ({exc.strerror}): rrr needs to write beside its "
                    f"output directory; choose another {flag}"
                ) from None
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            message = _holder_message(path, fd)
            os.close(fd)
            raise OutputLockedError(f"{message} {flag}") from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.stat(lp).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder released and removed it between our open and flock: take the new file


def held_locks() -> list[str]:
    """Lock files this process holds (for tests and diagnostics)."""
    with _HELD_GUARD:
        return list(_HELD)
