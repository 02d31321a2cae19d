"""Task registry: ``get_task("countdown")`` or ``get_task("my_pkg.tasks:MyTask")`` for a user's own task."""

from __future__ import annotations

import importlib
from typing import Any

from rrr.tasks.base import Task

_BUILTIN: dict[str, str] = {
    "countdown": "rrr.tasks.countdown:CountdownTask",
    "apigen": "rrr.tasks.apigen:APIGenTask",
    "scheduling": "rrr.tasks.scheduling:SchedulingTask",
    "scheduling_min_rooms": "rrr.tasks.scheduling:MinRoomsSchedulingTask",
}


def task_names() -> list[str]:
    """Names accepted by ``get_task`` besides ``"package.module:ClassName"``."""
    return sorted(_BUILTIN)


def _import_class(path: str) -> type:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"task path {path!r} must look like 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import task module {module_name!r} from {path!r}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r} (from task path {path!r})") from None


def get_task(name: str | Task, **options: Any) -> Task:
    """Instantiate a task by registry name or ``"package.module:ClassName"``; ``options`` go to its constructor.

    A ``Task`` instance is returned unchanged, so every API can take a name or an object.
    """
    if isinstance(name, Task):
        if options:
            raise ValueError("options cannot be applied to an already constructed Task")
        return name
    if not isinstance(name, str) or not name:
        raise ValueError(f"task must be a name or a Task, got {name!r}")
    if name in _BUILTIN:
        cls = _import_class(_BUILTIN[name])
    elif ":" in name:
        cls = _import_class(name)
    else:
        raise ValueError(
            f"unknown task {name!r}; known tasks: {', '.join(task_names())}, "
            "or a user task as 'package.module:ClassName'"
        )
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ValueError(f"{name!r} is not a subclass of rrr.tasks.Task")
    try:
        return cls(**options)
    except TypeError as exc:
        raise ValueError(f"cannot construct task {name!r} with options {options}: {exc}") from None
