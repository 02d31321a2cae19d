"""Artifacts are complete or absent, and logs are whole lines.

Every file and directory rrr writes goes through a temp path and a rename, created with the user's umask (``mkstemp``
and ``mkdtemp`` make 0600 / 0700, which hid artifacts from a group that was meant to read them). Append-only JSONL
logs (``samples.jsonl``, ``episodes.jsonl``, mining progress) are repaired before each append and never left torn by
rrr itself: a disk that fills up mid-append used to leave a half line that the next append glued a row onto, and a
later run then failed with ``Expecting ',' delimiter`` naming neither the file nor the fix.

Ownership of output directories and the one-writer lock live in ``rrr.utils.outputs``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from typing import Any

logger = logging.getLogger("rrr.io")


class JSONLError(ValueError):
    """A JSONL file rrr reads has a corrupt line (the message names the file, the line and the fix)."""


def make_temp_dir(prefix: str) -> str:
    """Create a fresh directory ``<prefix><random>`` with mode 0777 & ~umask (``mkdtemp`` would make it 0700)."""
    for _ in range(100):
        path = prefix + secrets.token_hex(4)
        try:
            os.mkdir(path, 0o777)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(errno.EEXIST, "no free temp directory name", prefix)


def current_umask() -> int:
    """The process umask (read from ``/proc`` where it can be, so the process-wide value is never swapped)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(root: str) -> None:
    """Give ``root`` and everything under it the modes a plain ``open``/``mkdir`` would have under the umask.

    Libraries that write through their own temp files (``safetensors`` does) leave 0600 files inside a directory
    rrr then publishes; a model or dataset built for a group must be readable by it as the umask says.
    """
    mask = current_umask()
    for top, _dirs, files in os.walk(root):
        os.chmod(top, 0o777 & ~mask)
        for name in files:
            path = os.path.join(top, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                os.chmod(path, (0o777 if st.st_mode & 0o100 else 0o666) & ~mask)


def _temp_file(prefix: str) -> tuple[int, str]:
    """Create a fresh file ``<prefix><random>`` with mode 0666 & ~umask (``mkstemp`` would make it 0600)."""
    for _ in range(100):
        path = prefix + secrets.token_hex(4)
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temp file name", prefix)


@contextlib.contextmanager
def atomic_directory(path: str, kind: str, **options: Any) -> Iterator[str]:
    """``rrr.utils.outputs.replace_directory``: build a directory in a temp dir and swap it in, but only over an
    earlier output of the same ``kind`` (never over a file or a directory rrr did not write)."""
    from rrr.utils.outputs import replace_directory

    with replace_directory(path, kind, **options) as tmp:
        yield tmp


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and ``os.replace`` (readers never see half a file)."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fd, tmp = _temp_file(os.path.join(parent, f".{os.path.basename(path)}."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


# ----------------------------------------------------------------------------------------------------------------------
# Append-only JSONL
# ----------------------------------------------------------------------------------------------------------------------
def _repair_fd(fd: int, path: str) -> int:
    """Drop bytes after the last newline of the open file (a torn row); returns how many were dropped.

    A tail that parses as a JSON object is a complete row missing only its newline (written by another tool): it
    gets the newline instead. Reads only the tail, so it is cheap on a long log.
    """
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    end, block = size, 1 << 16
    while end > 0:
        start = max(0, end - block)
        chunk = os.pread(fd, end - start, start)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            keep = start + cut + 1
            break
        end = start
    else:
        keep = 0
    tail = os.pread(fd, size - keep, keep)
    with contextlib.suppress(ValueError):
        if isinstance(json.loads(tail), dict):
            os.pwrite(fd, b"\n", size)
            return 0
    os.ftruncate(fd, keep)
    logger.warning(
        "%s: dropped a torn last line (%d bytes after the last newline, from an interrupted write); the rows "
        "before it are kept, and a resumed run redoes that row",
        path,
        size - keep,
    )
    return size - keep


def repair_jsonl(path: str | os.PathLike) -> int:
    """Make ``path`` end at a whole line: a torn tail is dropped with a warning naming the file and the bytes.

    Returns the number of bytes dropped (0 when the file is whole or absent). Call it before resuming from a log
    that a killed or disk-full run may have torn; ``append_jsonl`` calls it itself.
    """
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return 0
    try:
        return _repair_fd(fd, path)
    finally:
        os.close(fd)


def append_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Append rows as JSON lines to a log that grows during a run; all of them, or none.

    A torn tail left by an earlier run is repaired first (``repair_jsonl``), so a row is never glued onto half a
    line. If the write fails part-way (``ENOSPC``, ``EDQUOT``, ...), the file is truncated back to its size before
    this call and the error re-raised: rrr never leaves a torn line itself.
    """
    path = os.fspath(path)
    data = "".join(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    if not data:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        _repair_fd(fd, path)
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read JSON lines. A torn last line (no final newline: a run killed mid-append) is ignored; a corrupt line
    anywhere else is a ``JSONLError`` naming the file, the line number and what to do about it."""
    path = os.fspath(path)
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        text = f.read()
    lines = text.split("\n")
    torn = lines.pop()  # "" when the file ends with a newline
    rows = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise JSONLError(
                f"{path}, line {i}: not a JSON row ({exc.msg} at column {exc.colno}), probably a line torn by an "
                f"interrupted write that an older rrr then appended to; delete that line (e.g. `sed -i '{i}d' "
                f"{path}`) and re-run: a resumable run redoes the rows that are missing"
            ) from None
    if torn.strip():
        with contextlib.suppress(json.JSONDecodeError):
            rows.append(json.loads(torn))
    return rows
