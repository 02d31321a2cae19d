"""Tasks own their knowledge: no module outside ``rrr/tasks/`` names a registered task or a task class in code.

``curriculum/``, ``bench``, evaluation and the demo call the hooks declared on ``Task`` (``docs/tasks.md``), so adding
a task is one module and one registry line. This scan is what keeps it so: an ``isinstance(task, CountdownTask)``
or an ``INITIAL_STRATEGIES["countdown"]`` anywhere in ``rrr/`` fails here.

What is scanned: the code of every module under ``rrr/`` outside ``rrr/tasks/`` (``ast``: string constants, names,
attributes, imports). Docstrings and comments are not: they illustrate the API with real task names
(``evaluate_model(..., "countdown")``), which is documentation, not a branch. Recipes and tests name tasks freely.
"""

from __future__ import annotations

import ast
from pathlib import Path

from rrr.tasks import registered_tasks, task_class

ROOT = Path(__file__).resolve().parent.parent / "rrr"

#: (path under rrr/, the mention) -> why it may stay. Each is a place where naming one task *is* the point.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("demo/config.py", "scheduling_demo"): "the demo is an experiment on one task; its config names it, as a "
    "recipe does",
    **{
        ("bench/real_model.py", name): "the real-model report is a measurement of the built-in tasks on one named "
        "model (docs/real-model.md): which tasks it reports is its recipe"
        for name in ("countdown", "apigen", "scheduling")
    },
}


def _task_vocabulary() -> tuple[set[str], set[str], set[str]]:
    """(registered names, task class names, task module paths) of every registered task and its task bases."""
    names = set(registered_tasks())
    classes: set[str] = set()
    modules: set[str] = set()
    for name in names:
        for cls in task_class(name).__mro__:
            if cls.__module__.startswith("rrr.tasks.") and cls.__module__ != "rrr.tasks.base":
                classes.add(cls.__name__)
                modules.add(cls.__module__)
                package = cls.__module__.rpartition(".")[0]
                if package != "rrr.tasks":  # a task that is a package (rrr.tasks.apigen.task): the package too
                    modules.add(package)
    return names, classes, modules


def _docstring_nodes(tree: ast.AST) -> set[int]:
    """Strings that are statements of their own: module/class/function docstrings and attribute docstrings."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }


def _mentions(path: Path, names: set[str], classes: set[str], modules: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = _docstring_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if node.value in names:
                found.add(node.value)
            found.update(c for c in classes | modules if c in node.value)
        elif isinstance(node, ast.Name) and node.id in classes:
            found.add(node.id)
        elif isinstance(node, ast.Attribute) and node.attr in classes:
            found.add(node.attr)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.update(m for m in modules if node.module == m or node.module.startswith(m + "."))
            found.update(alias.name for alias in node.names if alias.name in classes)
        elif isinstance(node, ast.Import):
            found.update(m for m in modules for alias in node.names if alias.name == m)
    return found


def test_no_module_outside_rrr_tasks_names_a_task():
    names, classes, modules = _task_vocabulary()
    assert {"countdown", "apigen", "scheduling"} <= names and "CountdownTask" in classes  # the scan sees them
    offenders = {}
    seen_exceptions = set()
    for path in sorted(ROOT.rglob("*.py")):
        relative = str(path.relative_to(ROOT))
        if relative.startswith("tasks/"):
            continue
        for mention in _mentions(path, names, classes, modules):
            if (relative, mention) in EXCEPTIONS:
                seen_exceptions.add((relative, mention))
            else:
                offenders.setdefault(relative, []).append(mention)
    assert not offenders, f"task names/classes outside rrr/tasks/ (declare a hook on Task instead): {offenders}"
    # an exception whose mention is gone must be removed, so the list only shrinks
    stale = {(path, mention) for path, mention in set(EXCEPTIONS) - seen_exceptions if (ROOT / path).exists()}
    assert not stale, f"stale exceptions: {stale}"


def test_the_scan_catches_a_branch_on_a_task(tmp_path):
    """The scan is honest: a branch on a task class and a name-keyed table are both found."""
    names, classes, modules = _task_vocabulary()
    bad = tmp_path / "bad.py"
    bad.write_text(
        '"""Docstrings may say countdown."""\n'
        "from rrr.tasks.countdown import CountdownTask\n"
        "def f(task):\n"
        "    return isinstance(task, CountdownTask) or {'apigen': 1}.get(task.name)\n"
    )
    assert _mentions(bad, names, classes, modules) == {"rrr.tasks.countdown", "CountdownTask", "apigen"}
