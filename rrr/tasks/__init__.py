"""Verifiable tasks: data, prompts of the three RRR phases, and a verifier that never crashes.

>>> from rrr.tasks import get_task
>>> task = get_task("countdown")
>>> task.verify({"nums": [3, 5, 2], "target": 16}, "<answer>(3 + 5) * 2</answer>").passed
True
"""

from rrr.tasks.base import (
    GENERATED,
    Example,
    Messages,
    Task,
    TaskDataError,
    Verdict,
    VerifierErrorRate,
    check_verifier_error_rate,
    safe_leaks_answer,
    safe_verify,
)
from rrr.tasks.parsing import last_answer
from rrr.tasks.registry import DEFAULT_TASK, get_task, registered_tasks, task_class, task_names

__all__ = [
    "DEFAULT_TASK",
    "GENERATED",
    "Example",
    "Messages",
    "Task",
    "TaskDataError",
    "Verdict",
    "VerifierErrorRate",
    "check_verifier_error_rate",
    "get_task",
    "last_answer",
    "registered_tasks",
    "safe_leaks_answer",
    "safe_verify",
    "task_class",
    "task_names",
]
