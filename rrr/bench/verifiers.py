"""Benchmark the task verifiers: verifications per second on one core, with a realistic completion mix.

For each benchmark setting of each registered task (``Task.bench_configs``: by default one row per task, built
without options) it generates ``--n`` examples and, per example, a GRPO-like group of 20 completions:

* 9 (45%) the reference answer after ~150–250 characters of plausible reasoning (``Task.bench_reasoning``);
* 9 (45%) a wrong answer: the reference mutated (``Task.bench_wrong_answers``; Countdown: a number changed; APIGen:
  an argument value changed; scheduling: the label flipped or a wrong peak stated) — only mutations the verifier
  rejects are kept;
* 1 (5%) reasoning without any answer tag (a truncated or format-ignoring completion);
* 1 (5%) a hostile one: ``__import__('os').system('x')``, 5,000 nested brackets, an exponent bomb.

``verify`` is timed with ``time.perf_counter`` over ``--seconds`` of repeated passes after an untimed warm-up pass,
which also checks every verdict: the pass rate must equal the fraction of reference completions (0.45), and a
reference that fails or a wrong/hostile completion that passes makes the script exit non-zero. ``leaks_answer`` is
timed the same way on reflection-like texts (half of them lessons, half of them handing over the answer:
``Task.bench_lesson`` and ``Task.bench_leak``, beside a generic lesson and the bare reference).

What it measures, and what it does not:

* **one core**: a single-threaded loop in this process, no multiprocessing; a trainer that verifies in a pool
  scales roughly with its workers;
* **answer caches as in training** (default, rows without a suffix): verifiers cache per answer string (Countdown's
  parsed expressions, APIGen's parsed reference calls) and a GRPO group repeats answers, so the mix repeats them the
  same way (3 distinct reasoning texts and 3 distinct wrong answers per group). Every cache in ``rrr.tasks`` is
  cleared at the start of each pass, so each pass is a new training step whose first occurrences miss;
* **cold path** (``--no-repeat``, rows marked ``cold``): every completion is unique (a unique number inside its
  reasoning) *and* every cache is cleared before every call, so nothing is ever served from a cache. The
  ``cache_clear`` calls (well under a microsecond) are included in the time.

By default both are measured (``--no-repeat`` measures the cold path only); the gate (``--min-rate``, default
10,000 verifications/s) applies to every measured row. Leak checks run once per reflection, far less often than
verification, so they are reported but not gated. ``--json PATH`` writes every number (atomically).

    python scripts/bench_verifiers.py                    # defaults: 500 examples, 2 s per measurement
    python scripts/bench_verifiers.py --no-repeat --json runs/bench_verifiers.json

The library side of ``scripts/bench_verifiers.py``; the task-specific texts live on each task.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from rrr.tasks import get_task, last_answer
from rrr.tasks.registry import registered_tasks, task_class


def bench_tasks() -> dict[str, tuple[str, dict[str, Any]]]:
    """Benchmark rows of every registered task: label -> (registry name, constructor options), in registry order.

    From each task class's ``bench_configs`` (``None``: one row named after the task, no options; ``{}``: none)."""
    rows: dict[str, tuple[str, dict[str, Any]]] = {}
    for name in registered_tasks():
        configs = task_class(name).bench_configs
        for label, options in ({name: {}} if configs is None else configs).items():
            rows[label] = (name, dict(options))
    return rows


#: Benchmarked tasks: label -> (registry name, constructor options).
TASKS: dict[str, tuple[str, dict[str, Any]]] = bench_tasks()
#: Completions per example, by kind: 45% / 45% / 5% / 5% of a group of 20.
GROUP = (("reference", 9), ("wrong", 9), ("no_tags", 1), ("hostile", 1))
GROUP_SIZE = sum(count for _, count in GROUP)
EXPECTED_PASS_RATE = dict(GROUP)["reference"] / GROUP_SIZE
#: Distinct reasoning texts / wrong answers per group in the default (training-like) mode.
VARIANTS = 3
#: Calls between two clock reads (and the chunk size of a pass).
CHUNK = 256

HOSTILE = (
    "<answer>__import__('os').system('x')</answer>",
    "<answer>" + "(" * 5_000 + "1" + ")" * 5_000 + "</answer>",
    "<answer>" + "[" * 5_000 + "]" * 5_000 + "</answer>",
    '<answer>9**9**9**9**9 [{"name": "eval", "arguments": {"code": "open(\'/etc/passwd\').read()"}}]</answer>',
)

Pair = tuple[dict, str]


# ----------------------------------------------------------------------------------------------------------------
# The completion mix
# ----------------------------------------------------------------------------------------------------------------
#: A lesson for any task (a reflection that does not hand over the answer).
GENERIC_LESSON = (
    "My answer was wrong because I rushed the last step and did not re-check it against the question. Next "
    "time I will restate the constraints first, work through them one at a time, and verify before answering."
)


def _reflections(task, example: dict, reference: str) -> list[tuple[str, bool]]:
    """Reflection-like texts ``(text, hands over the answer)``: two lessons, two leaks."""
    return [
        (GENERIC_LESSON, False),
        (task.bench_lesson(example, reference), False),
        (f"I should have answered {reference}", True),
        (task.bench_leak(example, reference), True),
    ]


class _Unique:
    """Numbers that make texts unique in ``--no-repeat`` mode."""

    def __init__(self) -> None:
        self.value = 0

    def tag(self) -> str:
        self.value += 1
        return f" (draft {self.value})"


def build_mix(task, examples: list[dict], unique: bool, seed: int = 0) -> dict[str, Any]:
    """Completion and reflection pairs for ``examples``, with the verdict each completion should get."""
    rng = random.Random(seed)
    counter = _Unique()
    pairs: list[Pair] = []
    expected: list[bool] = []
    kinds: list[str] = []
    reflections: list[Pair] = []
    leaks_expected = 0
    skipped = 0
    for index, example in enumerate(examples):
        reference = task.reference_answer(example)
        if reference is None:
            skipped += 1
            continue
        candidates = task.bench_wrong_answers(example, reference)
        wrong = [w for w in candidates if not task.verify(example, w).passed]
        wrong = wrong or candidates[:1]  # then the sanity check flags it
        reasoning = task.bench_reasoning(example)
        group: list[tuple[str, str]] = []
        for kind, count in GROUP:
            for j in range(count):
                variant = j % VARIANTS
                text = reasoning[variant % len(reasoning)]
                if unique:
                    text += counter.tag()
                if kind == "reference":
                    text += "\n\n" + reference
                elif kind == "wrong":
                    text += "\n\n" + wrong[j % min(len(wrong), VARIANTS)]
                elif kind == "no_tags":
                    text += " So the answer is " + (last_answer(reference) or "") + "."
                else:
                    text += "\n\n" + HOSTILE[index % len(HOSTILE)]
                group.append((kind, text))
        rng.shuffle(group)
        for kind, text in group:
            pairs.append((example, text))
            kinds.append(kind)
            expected.append(kind == "reference")
        for text, leaks in _reflections(task, example, reference):
            reflections.append((example, text + (counter.tag() if unique else "")))
            leaks_expected += leaks
    return {
        "pairs": pairs,
        "kinds": kinds,
        "expected": expected,
        "reflections": reflections,
        "leaks_expected": leaks_expected,
        "skipped": skipped,
    }


# ----------------------------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------------------------
def _task_caches() -> list[Callable[[], None]]:
    """``cache_clear`` of every functools cache at module level in ``rrr.tasks`` (the verifiers' answer caches)."""
    clears = []
    for name, module in list(sys.modules.items()):
        if name == "rrr.tasks" or name.startswith("rrr.tasks."):
            for value in vars(module).values():
                clear = getattr(value, "cache_clear", None)
                if callable(clear) and callable(getattr(value, "cache_info", None)) and clear not in clears:
                    clears.append(clear)
    return clears


def time_calls(fn: Callable[[dict, str], Any], pairs: list[Pair], seconds: float, cold: bool) -> tuple[int, float]:
    """``(calls, seconds)`` of calling ``fn`` on ``pairs`` in repeated passes for at least ``seconds``.

    Caches are cleared at the start of every pass (a new training step) and, when ``cold``, before every call.
    """
    clears = _task_caches()

    def clear_all() -> None:
        for clear in clears:
            clear()

    calls, elapsed, position = 0, 0.0, 0
    while elapsed < seconds or calls == 0:
        if position == 0:
            clear_all()
        batch = pairs[position : position + CHUNK]
        if cold:
            start = time.perf_counter()
            for example, text in batch:
                clear_all()
                fn(example, text)
        else:
            start = time.perf_counter()
            for example, text in batch:
                fn(example, text)
        elapsed += time.perf_counter() - start
        calls += len(batch)
        position = (position + len(batch)) % len(pairs)
    return calls, elapsed


def measure(label: str, n: int, seconds: float, cold: bool, seed: int = 0) -> dict[str, Any]:
    """Build the mix for one task and mode, check every verdict in a warm-up pass, then time both methods."""
    name, options = TASKS[label]
    task = get_task(name, **options)
    mix = build_mix(task, task.generate(n, seed=seed, split="train"), unique=cold, seed=seed)
    pairs = mix["pairs"]
    if not pairs:
        raise SystemExit(f"{label}: no example has a reference answer")
    # Warm-up pass (untimed): every verdict, against what each completion was built to get.
    mismatches = []
    passed = 0
    for (example, text), kind, should_pass in zip(pairs, mix["kinds"], mix["expected"]):
        verdict = task.verify(example, text)
        passed += verdict.passed
        if verdict.passed != should_pass:
            mismatches.append(f"{kind} completion {'passed' if verdict.passed else 'failed'}: {verdict.reason}")
    leaks = sum(task.leaks_answer(example, text) for example, text in mix["reflections"])
    calls, elapsed = time_calls(task.verify, pairs, seconds, cold)
    leak_calls, leak_elapsed = time_calls(task.leaks_answer, mix["reflections"], seconds, cold)
    return {
        "task": name,
        "options": options,
        "mode": "no_repeat" if cold else "repeat",
        "examples": n - mix["skipped"],
        "completions": len(pairs),
        "verifications_per_s": calls / elapsed,
        "us_per_call": 1e6 * elapsed / calls,
        "calls": calls,
        "seconds": elapsed,
        "pass_rate": passed / len(pairs),
        "expected_pass_rate": sum(mix["expected"]) / len(pairs),
        "verdict_mismatches": len(mismatches),
        "mismatch_examples": mismatches[:5],
        "leak_checks_per_s": leak_calls / leak_elapsed,
        "leak_us_per_call": 1e6 * leak_elapsed / leak_calls,
        "leak_rate": leaks / len(mix["reflections"]),
        "expected_leak_rate": mix["leaks_expected"] / len(mix["reflections"]),
    }


# ----------------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------------
def _short_number(value: float) -> str:
    return f"{value / 1000:g}k" if value >= 1000 and value % 1000 == 0 else f"{value:g}"


def format_table(rows: list[dict[str, Any]], min_rate: float) -> str:
    lines = [
        f"| task | verifications/s | µs/call | pass rate | leak checks/s | ≥{_short_number(min_rate)}/s? |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for row in rows:
        label = row["label"] + (" (cold)" if row["mode"] == "no_repeat" else "")
        ok = "yes" if row["verifications_per_s"] >= min_rate else "**NO**"
        lines.append(
            f"| {label} | {row['verifications_per_s']:,.0f} | {row['us_per_call']:.1f} | {row['pass_rate']:.3f} | "
            f"{row['leak_checks_per_s']:,.0f} | {ok} |"
        )
    return "\n".join(lines)


def write_json_atomic(path: str, payload: dict[str, Any]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".bench_verifiers.", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, measure, print the table (and write ``--json``); 1 when a row is slow or a verdict wrong."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500, help="examples per task (20 completions each)")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per task, mode and method")
    parser.add_argument("--min-rate", type=float, default=10_000, help="exit 1 when a task verifies fewer per second")
    parser.add_argument("--no-repeat", action="store_true", help="measure only the cold path (unique completions)")
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {', '.join(TASKS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    labels = [label.strip() for label in args.tasks.split(",") if label.strip()]
    unknown = [label for label in labels if label not in TASKS]
    if unknown or not labels or args.n < 1 or args.seconds <= 0:
        parser.error(f"need --n >= 1, --seconds > 0 and --tasks from {', '.join(TASKS)} (unknown: {unknown})")
    modes = [True] if args.no_repeat else [False, True]

    print(
        f"verifier benchmark: one core, {args.n} examples x {GROUP_SIZE} completions per task "
        f"(45% reference, 45% wrong, 5% no tags, 5% hostile), {args.seconds:g} s per measurement",
        flush=True,
    )
    rows = []
    for label in labels:
        for cold in modes:
            rows.append({"label": label, **measure(label, args.n, args.seconds, cold, seed=args.seed)})
    print(format_table(rows, args.min_rate))
    print("rows without a suffix: answer caches as in training (groups repeat answers); (cold): no cache hits")

    slow = sorted({row["label"] for row in rows if row["verifications_per_s"] < args.min_rate})
    wrong = sorted({row["label"] for row in rows if row["verdict_mismatches"]})
    for row in rows:
        for line in row["mismatch_examples"]:
            print(f"  verdict mismatch in {row['label']} ({row['mode']}): {line}", file=sys.stderr)
    if args.json:
        tasks: dict[str, dict[str, Any]] = {}
        for row in rows:
            entry = tasks.setdefault(
                row["label"],
                {"task": row["task"], "options": row["options"], "pass_rate": row["pass_rate"], "modes": {}},
            )
            entry["modes"][row["mode"]] = {k: v for k, v in row.items() if k not in ("label", "task", "options")}
        for entry in tasks.values():
            entry["verifications_per_s"] = min(m["verifications_per_s"] for m in entry["modes"].values())
            entry["meets_min_rate"] = entry["verifications_per_s"] >= args.min_rate
        payload = {
            "settings": {
                "n": args.n,
                "seconds": args.seconds,
                "min_rate": args.min_rate,
                "modes": ["no_repeat" if cold else "repeat" for cold in modes],
                "seed": args.seed,
                "group": dict(GROUP),
                "python": platform.python_version(),
                "machine": platform.machine(),
                "one_core": True,
            },
            "tasks": tasks,
            "slow": slow,
            "verdict_mismatches": wrong,
            "ok": not slow and not wrong,
        }
        write_json_atomic(args.json, payload)
        print(f"wrote {args.json}")
    if wrong:
        print(f"FAIL: verdicts differ from the intended mix for {', '.join(wrong)} (see above)", file=sys.stderr)
    if slow:
        print(f"FAIL: below {args.min_rate:,.0f} verifications/s: {', '.join(slow)}", file=sys.stderr)
    return 1 if slow or wrong else 0
