"""Prompt templates of the LLM teacher and the strategies every teacher starts from (Linguistic RL style).

The templates follow D. Rawson's Linguistic RL scheduling solver (``docs/background.md``): the solve prompt
carries the CURRENT STRATEGY; after each batch the teacher sees its accuracy and worked examples with the verifier's
verdict and writes a journal entry (patterns, mistakes, edge cases, improvements); every few batches the recent
journal is distilled into a new strategy that *replaces* the old one. Two deliberate differences:

* the problem text is the task's own ``attempt_prompt`` (not a re-worded copy), so the teacher answers in exactly the
  format the task's verifier parses, and its verified solutions can be used verbatim as SFT completions;
* the verdict comes from the task's verifier (``Task.verify``), never from the teacher's own judgement.

Initial strategies: a task may set an ``initial_strategy`` attribute (a string); the built-in tasks get the short,
deliberately naive strategies below (the scheduling one is Linguistic RL's 4-step starting strategy), so that
self-improvement has room to show. ``ORACLE_PROCEDURES`` are what the offline oracle teacher "distills": the exact
procedure its solver follows.
"""

from __future__ import annotations

from rrr.tasks.base import Messages, Task

GENERIC_STRATEGY = (
    "1. Read the problem carefully and restate what is asked.\n"
    "2. Work step by step, writing down intermediate results.\n"
    "3. Check the answer against every requirement of the problem before answering.\n"
    "4. Give the final answer exactly in the format the problem asks for."
)

#: Starting strategies of the built-in tasks, keyed by task name.
INITIAL_STRATEGIES: dict[str, str] = {
    "scheduling": (
        "1. Find which meetings overlap.\n"
        "2. Count the maximum number of meetings happening at the same time.\n"
        "3. If that maximum is at most the number of rooms, answer YES; otherwise answer NO.\n"
        "4. Meetings that only touch (one ends when the next starts) do not overlap."
    ),
    "scheduling_min_rooms": (
        "1. Find which meetings overlap.\n"
        "2. Count the maximum number of meetings happening at the same time.\n"
        "3. That maximum is the minimum number of rooms.\n"
        "4. Meetings that only touch (one ends when the next starts) do not overlap."
    ),
    "countdown": (
        "1. Try combinations of the numbers with + - * / until one reaches the target.\n"
        "2. Use each number exactly once."
    ),
    "apigen": (
        "1. Identify what the user asks for.\n2. Call the matching tool with the arguments taken from the query."
    ),
}

#: The procedure the oracle's solver follows, per task name: the oracle teacher's distilled strategy.
ORACLE_PROCEDURES: dict[str, str] = {
    "scheduling": (
        "1. For each distinct start time t, list the meetings running at t: those with start <= t < end. A meeting "
        "that ends at t has already left, so meetings that only touch do not clash.\n"
        "2. The peak is the largest of these counts (the peak is always reached at some start time, so checking the "
        "start times is enough). State it as peak: N.\n"
        "3. Answer YES if the peak is at most the number of rooms, otherwise NO."
    ),
    "scheduling_min_rooms": (
        "1. For each distinct start time t, list the meetings running at t: those with start <= t < end. A meeting "
        "that ends at t has already left, so meetings that only touch do not clash.\n"
        "2. The peak is the largest of these counts (always reached at some start time). State it as peak: N.\n"
        "3. The minimum number of rooms equals the peak."
    ),
    "countdown": (
        "1. Combine two of the remaining values at a time with + - * /, writing each step as a = b op c.\n"
        "2. Aim for a value close to the target (multiply to get near it, then add or subtract what is left; divide "
        "only when it comes out exact).\n"
        "3. Track which numbers are used: each given number exactly once, none twice, none left out.\n"
        "4. Check that the final expression evaluates exactly to the target before answering."
    ),
    "apigen": (
        "1. Split the query into its independent requests; each request needs exactly one call (several requests "
        "may call the same tool).\n"
        "2. For each request pick the tool whose description matches, and use the exact argument names of its "
        "schema.\n"
        "3. Copy values from the query with the right types; include an optional argument only when the query "
        "specifies it.\n"
        "4. Answer with the JSON list of all calls inside <answer></answer>."
    ),
}

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
    """The strategy self-improvement starts from: the task's ``initial_strategy`` attribute, a built-in one, or a
    generic step-by-step strategy."""
    custom = getattr(task, "initial_strategy", None)
    if isinstance(custom, str) and custom.strip():
        return custom.strip()
    return INITIAL_STRATEGIES.get(task.name, GENERIC_STRATEGY)


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
