"""Prompt templates of the LLM teacher and the strategies every teacher starts from (Linguistic RL style).

The templates follow D. Rawson's Linguistic RL scheduling solver (``docs/background.md``): the solve prompt
carries the CURRENT STRATEGY; after each batch the teacher sees its accuracy and worked examples with the verifier's
verdict and writes a journal entry (patterns, mistakes, edge cases, improvements); every few batches the recent
journal is distilled into a new strategy that *replaces* the old one. Two deliberate differences:

* the problem text is the task's own ``attempt_prompt`` (not a re-worded copy), so the teacher answers in exactly the
  format the task's verifier parses, and its verified solutions can be used verbatim as SFT completions;
* the verdict comes from the task's verifier (``Task.verify``), never from the teacher's own judgement.

Strategies are the task's own: ``Task.initial_strategy`` (the built-in tasks' are short and deliberately naive, so
that self-improvement has room to show; a task without one starts from ``GENERIC_STRATEGY``) and
``Task.oracle_procedure`` (what the offline oracle teacher "distills": the exact procedure its solver follows).
"""

from __future__ import annotations

from rrr.tasks.base import Messages, Task

GENERIC_STRATEGY = (
    "1. Read the problem carefully and restate what is asked.\n"
    "2. Work step by step, writing down intermediate results.\n"
    "3. Check the answer against every requirement of the problem before answering.\n"
    "4. Give the final answer exactly in the format the problem asks for."
)

SOLVER_SYSTEM = (
    "You are an expert problem solver who improves by reflecting on your own results.\n\n"
    "CURRENT STRATEGY:\n{strategy}\n\n"
    "Apply the strategy step by step, then give the final answer exactly in the format the problem asks for."
)

JOURNAL_PROMPT = (
    "You are keeping a learning journal while solving {task} problems.\n\n"
    "Your current strategy:\n{strategy}\n\n"
    "You just solved a batch of {n} problems and got {correct} right ({accuracy:.0%}). Here are some of them, with "
    "the verifier's verdict:\n\n{examples}\n\n"
    "Write a journal entry of a few short paragraphs: which patterns worked, which mistakes you made and why, edge "
    "cases to watch for, and concrete improvements to the strategy."
)

JOURNAL_EXAMPLE = "Example {i}: {status} (verifier: {reason})\nProblem:\n{problem}\nYour answer:\n{answer}"

DISTILL_PROMPT = (
    "Below are your most recent journal entries from solving {task} problems.\n\n{journal}\n\n"
    "Your current strategy:\n{strategy}\n\n"
    "Distill the journal into an improved strategy: concise, actionable, numbered rules that a careful solver can "
    "follow step by step, including the edge cases that caused mistakes. It replaces the current strategy. Reply "
    "with the strategy only."
)

REFLECT_SYSTEM = (
    "You are a tutor. A student made the attempt below and the verifier marked it wrong{note}. Write the reflection "
    "the student should write now: in 2-4 sentences, in the first person, name the specific mistake and the rule "
    "that avoids it next time. Do not state or hint at the final answer itself."
)


def initial_strategy(task: Task) -> str:
    """The strategy self-improvement starts from: the task's ``initial_strategy``, else a generic step-by-step one."""
    custom = task.initial_strategy
    if isinstance(custom, str) and custom.strip():
        return custom.strip()
    return GENERIC_STRATEGY


def oracle_procedure(task: Task, strategy: str) -> str:
    """What the oracle teacher distills: the task's ``oracle_procedure``, else the ``strategy`` it was given."""
    procedure = task.oracle_procedure
    return procedure if isinstance(procedure, str) and procedure else strategy


def with_system(system: str, messages: Messages) -> Messages:
    """``messages`` with ``system`` as the first system message (merged before an existing one, never two)."""
    if messages and messages[0].get("role") == "system":
        return [{"role": "system", "content": f"{system}\n\n{messages[0]['content']}"}, *messages[1:]]
    return [{"role": "system", "content": system}, *messages]


def solve_messages(task: Task, example, strategy: str) -> Messages:
    """The teacher's solve prompt: the strategy in a system message, then the task's own first-attempt messages."""
    return with_system(SOLVER_SYSTEM.format(strategy=strategy), task.attempt_messages(example))


def strategy_prompt_messages(task: Task, example, strategy: str) -> Messages:
    """The *student's* prompt when the curriculum keeps the strategy in context (``strategy_in_prompt=True``)."""
    return with_system(f"Strategy:\n{strategy}", task.attempt_messages(example))
