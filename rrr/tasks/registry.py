"""Task registry: ``get_task("countdown")`` or ``get_task("my_pkg.tasks:MyTask")`` for a user's own task."""

from __future__ import annotations

import importlib
from typing import Any

from rrr.tasks.base import BAD_ROW_POLICIES, Task
from rrr.utils.cli import ConfigError

_BUILTIN: dict[str, str] = {
    "countdown": "rrr.tasks.countdown:CountdownTask",
    "apigen": "rrr.tasks.apigen:APIGenTask",
    "scheduling": "rrr.tasks.scheduling:SchedulingTask",
    "scheduling_min_rooms": "rrr.tasks.scheduling:MinRoomsSchedulingTask",
    "scheduling_demo": "rrr.tasks.scheduling_demo:DemoSchedulingTask",
    "reverse": "rrr.tasks.reverse:ReverseTask",
}


#: The task a run uses when its config names none (``RRRConfig.task``, evaluation): configs take it from here, so no
#: module outside ``rrr.tasks`` names a task.
DEFAULT_TASK = "countdown"


def task_names() -> list[str]:
    """Names accepted by ``get_task`` besides ``"package.module:ClassName"``."""
    return sorted(_BUILTIN)


def registered_tasks() -> list[str]:
    """The registered names in registry order (the order benchmarks and docs list them in)."""
    return list(_BUILTIN)


def task_class(name: str) -> type[Task]:
    """The class ``get_task(name)`` would construct (its class attributes: ``bench_configs``, strategies, ...)."""
    if name in _BUILTIN:
        cls = _import_class(_BUILTIN[name])
    elif isinstance(name, str) and ":" in name:
        cls = _import_class(name)
    else:
        raise ConfigError(
            f"unknown task {name!r}; known tasks: {', '.join(task_names())}, "
            "or a user task as 'package.module:ClassName'"
        )
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ConfigError(f"{name!r} is not a subclass of rrr.tasks.Task")
    return cls


def _import_class(path: str) -> type:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"task path {path!r} must look like 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import task module {module_name!r} from {path!r}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"module {module_name!r} has no attribute {attr!r} (from task path {path!r})") from None


def get_task(name: str | Task, **options: Any) -> Task:
    """Instantiate a task by registry name or ``"package.module:ClassName"``; ``options`` go to its constructor.

    ``on_bad_row`` (``"error"`` or ``"skip"``, see ``Task.check_rows``) is taken by every task, built-in or not, and
    set on the instance rather than passed to the constructor, so a user's task need not know it.
    A ``Task`` instance is returned unchanged, so every API can take a name or an object.
    """
    on_bad_row = options.pop("on_bad_row", None)
    if on_bad_row is not None and on_bad_row not in BAD_ROW_POLICIES:
        raise ConfigError(f"task option on_bad_row must be one of {', '.join(BAD_ROW_POLICIES)}, got {on_bad_row!r}")
    if isinstance(name, Task):
        if options or on_bad_row is not None:
            raise ConfigError("options cannot be applied to an already constructed Task")
        return name
    task = _construct(name, options)
    if on_bad_row is not None:
        task.on_bad_row = on_bad_row
    return task


def _construct(name: str, options: dict[str, Any]) -> Task:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"task must be a name or a Task, got {name!r}")
    cls = task_class(name)
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:  # the options are the user's task_kwargs: name them and the task
        raise ConfigError(f"cannot construct task {name!r} with options (task_kwargs) {options}: {exc}") from None
