"""The oracle teacher of the demo: ``OracleTeacher`` with witness reflections instead of prose lessons.

``rrr.curriculum.OracleTeacher`` writes reflections as sentences ("I counted a peak of 3, but ..."), which is right for
an instruct model and far too long for a 1M-parameter student. This subclass writes the task's witness instead
(``DemoSchedulingTask.witness_reflection``: ``at 12 : 11-13 12-14 = 2``) and otherwise is the oracle — solutions are
``task.worked_solution``, retries the worked solution, everything through the teacher cache — so the curriculum is
built by ``rrr.curriculum.build_curriculum`` exactly as for any other teacher.
"""

from __future__ import annotations

from rrr.curriculum.teachers import OracleTeacher
from rrr.tasks.base import Example, Task, Verdict


class DemoOracleTeacher(OracleTeacher):
    """Oracle teacher whose reflection is ``task.witness_reflection(example)`` when the task has one."""

    def reflect(self, task: Task, example: Example, attempt: str, verdict: Verdict) -> str:
        witness = getattr(task, "witness_reflection", None)
        if witness is None:
            return super().reflect(task, example, attempt, verdict)
        content = {"example": example, "attempt": attempt, "verdict": [verdict.passed, verdict.reason]}
        return self._op(task, "reflect_witness", content, lambda: witness(example) or "")
