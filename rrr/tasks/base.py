"""The Task interface: one verifiable problem family, end to end.

A task owns everything that is specific to one kind of problem, so that the episode code (attempt -> reflection ->
retry -> verify), training, evaluation, failure mining and the curriculum never branch on the task's name:

* **data** — ``load(split, n, seed, source)`` returns a ``datasets.Dataset`` from the hub, a local file, or the task's
  own seeded generator; the columns the verifier needs, and every row (``row_problem``), are checked at load time,
  never discovered as a silent zero reward halfway through a run;
* **prompts** — the chat messages of the first attempt, of the self-reflection request after a failed attempt, and of
  the retry with the reflection in context (each phase *extends* the previous conversation, so prefix caching and the
  trainer's token accounting see one growing transcript);
* **verification** — ``verify(example, completion) -> Verdict``: total, fast and side-effect free. Model output is
  data, never code: a verifier must return ``Verdict(passed=False, reason=...)`` for any string, however hostile;
* **answer leakage** — ``leaks_answer(example, reflection)``: does a reflection simply hand the retry its answer?

* **teaching** — what the offline oracle teacher and self-improvement know about the task: ``initial_strategy`` and
  ``oracle_procedure`` (the strategy a teacher starts from, and the exact procedure the task's solver follows),
  ``oracle_reflections`` (lessons about a failed attempt that do not state the answer), ``witness_reflection`` (one
  reflection to teach instead), ``plausible_mistakes`` and ``synthesize_failure`` (wrong attempts a student would make,
  so a reflection curriculum can be built without a model that fails);
* **benchmarks** — ``bench_configs``, ``bench_reasoning``, ``bench_wrong_answers``, ``bench_lesson`` and ``bench_leak``: the
  realistic completion mix ``rrr.bench.verifiers`` times the verifier on.

Subclasses set the class attributes and implement ``verify``, ``attempt_prompt`` and (when they have a generator)
``generate``. Everything else has a sensible default that a task may override, so a new task is one module and one
line in ``rrr.tasks.registry`` (``docs/tasks.md`` walks through one).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from rrr.tasks.parsing import last_answer
from rrr.utils.cli import UsageError, one_line

Example = dict[str, Any]
Messages = list[dict[str, str]]

#: Sources that mean "use the task's seeded generator" rather than a dataset.
GENERATED = "generated"
_LOCAL_SUFFIXES = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}


class TaskDataError(UsageError, ValueError):
    """A dataset cannot be used with a task (missing columns, unreadable file, unusable rows, gated hub dataset, ...).

    A ``UsageError``: scripts print its message on one line and exit 2 (``rrr.utils.cli.run``)."""


#: What ``Task.load`` does with a row that ``row_problem`` rejects: raise (the default: a dataset with unusable rows is
#: usually the wrong file or a broken export), or drop it and report how many were dropped.
BAD_ROW_POLICIES = ("error", "skip")
#: Rows quoted in a bad-row error or warning (the count covers the rest).
_QUOTED_BAD_ROWS = 3


@dataclass(frozen=True)
class Verdict:
    """The outcome of verifying one completion.

    ``passed`` is the binary reward; ``reason`` is a short human-readable explanation ("no <answer> tag",
    "uses 7 twice", "2 calls expected, got 1") that ends up in ``episodes.jsonl`` and evaluation samples, so a user
    can see *why* a completion failed without re-running the verifier.
    """

    passed: bool
    reason: str
    #: The exception class name when the verifier itself failed (raised, or returned something that is not a
    #: ``Verdict``); None for an ordinary verdict. Set by ``safe_verify`` and by the built-in verifiers' own
    #: last-resort catch, so a run can count verifier bugs apart from wrong answers instead of silently training on
    #: them as zero rewards.
    error: str | None = None

    def __bool__(self) -> bool:  # `if task.verify(...)` reads naturally
        return self.passed


class Task(ABC):
    """Base class of every task. See the module docstring for the contract."""

    #: Registry name (``get_task(name)``).
    name: ClassVar[str] = "task"
    #: Columns every example must have for prompts and verification to work.
    required_columns: ClassVar[tuple[str, ...]] = ()
    #: Default ``source`` of ``load``: a hub dataset id, a local path, or ``"generated"``.
    default_source: ClassVar[str] = GENERATED
    #: Optional system prompt placed before the first user turn.
    system_prompt: ClassVar[str | None] = None
    #: The user turn after a failed attempt (the paper: short, task-specific, "say what went wrong, do not answer").
    reflection_instruction: ClassVar[str] = (
        "Your answer was wrong. Reflect briefly on what went wrong and how to do better next time. "
        "Do not state the final answer."
    )
    #: The user turn after the reflection.
    retry_instruction: ClassVar[str] = "Using your reflection, try again. Give the final answer in <answer></answer>."
    #: Column holding a difficulty label, if the task has one (evaluation reports per difficulty).
    difficulty_column: ClassVar[str | None] = None
    #: ``"error"`` or ``"skip"`` (see ``BAD_ROW_POLICIES``): set per instance with the ``on_bad_row`` option of
    #: ``get_task`` (``task_kwargs: {"on_bad_row": "skip"}`` in a recipe), which every task accepts.
    on_bad_row: str = "error"
    #: Hub datasets that publish a single split, which ``load`` carves by position into held-out splits (see
    #: ``held_out_splits``), so no seed can leak a test row into training.
    single_split_sources: ClassVar[tuple[str, ...]] = ()
    #: The carve-out of a ``single_split_sources`` dataset: split name -> rows, taken from the *end* of the file in
    #: this order (``{"test": 2000, "validation": 500}``: test = the last 2,000 rows, validation = the 500 before);
    #: ``train`` is every row before them.
    held_out_splits: ClassVar[dict[str, int]] = {}
    #: Other spellings of split names accepted by a carve-out, lower-case (``{"val": "validation"}``).
    split_aliases: ClassVar[dict[str, str]] = {}
    #: How to get access to a gated ``single_split_sources`` dataset (replaces the generic hint of a load error).
    hub_access_hint: ClassVar[str | None] = None
    #: The strategy self-improvement starts from (``rrr.curriculum.self_improve``); None: a generic step-by-step one.
    #: Deliberately naive for the built-in tasks, so that self-improvement has room to show.
    initial_strategy: ClassVar[str | None] = None
    #: The procedure the task's own solver follows: what the offline oracle teacher "distills" from its journal.
    #: None: the oracle keeps the strategy it was given.
    oracle_procedure: ClassVar[str | None] = None
    #: Benchmark settings of ``rrr.bench.verifiers``: row label -> constructor options (``{}``: not benchmarked).
    #: Default: one row named after the task, built with no options.
    bench_configs: ClassVar[dict[str, dict[str, Any]] | None] = None

    # ------------------------------------------------------------------------------------------------------------
    # Prompts
    # ------------------------------------------------------------------------------------------------------------
    @abstractmethod
    def attempt_prompt(self, example: Example) -> str:
        """The user's request for the first attempt (plain text)."""

    def attempt_messages(self, example: Example) -> Messages:
        """Chat messages of the first attempt."""
        messages: Messages = []
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": self.attempt_prompt(example)})
        return messages

    def reflection_messages(self, example: Example, attempt: str) -> Messages:
        """Messages that ask for a self-reflection after the failed ``attempt``."""
        return [
            *self.attempt_messages(example),
            {"role": "assistant", "content": attempt},
            {"role": "user", "content": self.reflection_instruction},
        ]

    def retry_messages(self, example: Example, attempt: str, reflection: str) -> Messages:
        """Messages of the retry: the whole first exchange plus the reflection, then the retry request."""
        return [
            *self.reflection_messages(example, attempt),
            {"role": "assistant", "content": reflection},
            {"role": "user", "content": self.retry_instruction},
        ]

    # ------------------------------------------------------------------------------------------------------------
    # Verification
    # ------------------------------------------------------------------------------------------------------------
    @abstractmethod
    def verify(self, example: Example, completion: str) -> Verdict:
        """Judge ``completion`` for ``example``. Must never raise and never execute model output."""

    def leaks_answer(self, example: Example, reflection: str) -> bool:
        """True when ``reflection`` hands the retry a passing answer instead of a lesson.

        Default: the reflection itself would pass the verifier. Tasks refine this (e.g. Countdown also flags a
        reflection that contains a correct expression outside ``<answer>`` tags).
        """
        return self.verify(example, reflection).passed

    def reference_answer(self, example: Example) -> str | None:
        """A completion that passes ``verify`` (for the oracle teacher and tests), or None if unknown."""
        return None

    def worked_solution(self, example: Example) -> str | None:
        """A passing completion *with its reasoning* (the oracle teacher's curriculum). Default: the bare answer."""
        return self.reference_answer(example)

    # ------------------------------------------------------------------------------------------------------------
    # Teaching: what the offline oracle teacher knows (``rrr.curriculum.oracle``)
    # ------------------------------------------------------------------------------------------------------------
    def witness_reflection(self, example: Example) -> str | None:
        """The one reflection to teach for ``example`` whatever the failed attempt (the demo's ``at 12 : 11-13
        12-14``: where to look, not the number), or None. Used by the default ``oracle_reflections``."""
        return None

    def oracle_reflections(self, example: Example, attempt: str, verdict: Verdict) -> list[str]:
        """Reflections a good student would write after the failed ``attempt``, most informative first.

        Each names the mistake and the rule that avoids it. The oracle checks every candidate with ``leaks_answer``
        and keeps the first that does not leak, falling back to generic texts built from ``verdict.reason``, so a
        candidate may be bold. Default: the ``witness_reflection``, if any.
        """
        witness = self.witness_reflection(example)
        return [witness] if witness else []

    def plausible_mistakes(self, example: Example) -> list[str]:
        """Wrong attempts a student plausibly makes on ``example``, the designed mistakes first; the caller keeps
        those ``verify`` rejects. Default: the reference answer's YES/NO flipped, its integer off by one, or an
        "unsure" variant (a bare answer reversed when the solution has no ``<answer>`` tag)."""
        solution = self.worked_solution(example) or self.reference_answer(example)
        if not solution:
            return []
        answer = last_answer(solution)
        if answer is None:
            return [solution[::-1], "I am not sure."]
        flips = {"YES": "NO", "NO": "YES", "TRUE": "FALSE", "FALSE": "TRUE"}
        if answer.upper() in flips:
            wrong = [flips[answer.upper()]]
        elif re.fullmatch(r"-?\d+", answer):
            wrong = [str(int(answer) + 1), str(int(answer) - 1)]
        else:
            wrong = [answer + " (unsure)", ""]
        return [f"<answer>{w}</answer>" for w in wrong]

    def synthesize_failure(self, example: Example, rng: random.Random) -> str | None:
        """One plausible wrong attempt that ``verify`` rejects, or None: the first of ``plausible_mistakes`` half
        the time (the designed mistake), else one drawn with ``rng`` (variety)."""
        failing = [c for c in dict.fromkeys(self.plausible_mistakes(example)) if c and not self.verify(example, c)]
        if not failing:
            return None
        return failing[0] if len(failing) == 1 or rng.random() < 0.5 else rng.choice(failing)

    def describe_reflection(self, example: Example, reflection: str) -> str | None:
        """A label of what kind of reflection ``reflection`` is, for diagnostics (the demo reports how many
        witnesses are faithful); None when the task has no such notion. Must not raise."""
        return None

    # ------------------------------------------------------------------------------------------------------------
    # Benchmark fixtures (``rrr.bench.verifiers``)
    # ------------------------------------------------------------------------------------------------------------
    def bench_reasoning(self, example: Example) -> tuple[str, ...]:
        """Wordings of ~150-250 characters of plausible reasoning before an answer (the benchmark uses 3)."""
        return (
            "Let me read the problem again and work through it step by step, writing down each intermediate result "
            "and checking it against the question before I commit to an answer.",
            "I restate what is asked, list what is given, and solve it one step at a time; then I check the result "
            "against every requirement of the problem before writing the final answer.",
            "First I make sure I understand the question. Then I work it out carefully, double-checking the last "
            "step, because a rushed final step is where most of my mistakes come from.",
        )

    def bench_wrong_answers(self, example: Example, reference: str) -> list[str]:
        """Realistic wrong completions (mutations of ``reference``), most realistic first; the benchmark keeps
        those ``verify`` rejects. Default: ``plausible_mistakes``."""
        return self.plausible_mistakes(example)

    def bench_lesson(self, example: Example, reference: str) -> str:
        """A task-specific lesson (a reflection that does *not* hand over the answer) for the benchmark's leak
        checks, beside a generic one and the bare reference."""
        return (
            "I misread one of the requirements and built my answer on that. Next time I will underline each "
            "requirement, solve it against all of them, and check the result before answering."
        )

    def bench_leak(self, example: Example, reference: str) -> str:
        """A reflection that hands over the answer in prose (``leaks_answer`` must flag it). Default: the answer
        stated in a sentence."""
        return f"Counting again, the correct answer is {last_answer(reference) or ''}."

    def majority_baseline(self, examples) -> float | None:
        """Accuracy of always giving the most common answer, where the task has a small answer space; else None."""
        return None

    def surface_baseline(self, examples) -> float | None:
        """Accuracy of a small classifier that sees only surface statistics of the prompt, fitted on the task's
        generated training data and applied to ``examples``; None for tasks without one.

        Printed beside ``majority_baseline``: when it is much higher, the data has a shortcut (a model can score
        without solving the task), and accuracy must be read against it rather than against the majority.
        """
        return None

    # ------------------------------------------------------------------------------------------------------------
    # Data
    # ------------------------------------------------------------------------------------------------------------
    def generate(self, n: int, seed: int = 0, split: str = "train") -> list[Example]:
        """Seeded generator of ``n`` examples (override in tasks that have one)."""
        raise TaskDataError(f"task {self.name!r} has no generator; pass a hub dataset id or a local file as source")

    def load(self, split: str = "train", n: int | None = None, seed: int = 0, source: str | None = None):
        """Load examples as a ``datasets.Dataset`` with the required columns and every row checked.

        ``source`` is ``"generated"`` (the task's seeded generator; ``n`` defaults to 1000), a local
        ``.json``/``.jsonl``/``.parquet``/``.csv`` file or a directory written by ``Dataset.save_to_disk``, or a hub
        dataset id. ``n`` keeps the first ``n`` rows after a seeded shuffle of hub/local data (so different seeds see
        different subsets, and the same seed always the same one). Rows that ``row_problem`` rejects are an error, or
        are dropped with a warning when ``on_bad_row`` is ``"skip"`` (before the ``n``-row subset is drawn, so ``n``
        counts usable rows).

        A hub dataset in ``single_split_sources`` (one published split) is carved by position instead:
        ``held_out_splits`` rows from the end of the file, ``train`` every row before them, whatever the ``seed``
        (which only draws the ``n``-row subset), so no seed can move a test row into training. Rows are checked after
        the carve, so skipping a bad row never moves another one across splits.
        """
        import datasets

        source = source or self.default_source
        if source == GENERATED:
            rows = self.generate(1000 if n is None else n, seed=seed, split=split)
            ds = datasets.Dataset.from_list(rows)
        else:
            if source in self.single_split_sources:
                ds = self._carve(source, split)
            else:
                ds = _load_dataset_source(source, split)
                ds = self.prepare(ds)
                self.check_columns(ds.column_names, source=source)
                ds = self.check_rows(ds, source=source)
            if n is not None:
                if n < 0 or n > len(ds):
                    raise TaskDataError(f"asked for n={n} examples but {source!r} split {split!r} has {len(ds)}")
                ds = ds.shuffle(seed=seed).select(range(n))
        self.check_columns(ds.column_names, source=source)
        if len(ds) == 0:
            raise TaskDataError(f"dataset {source!r} (split {split!r}) is empty")
        return ds

    def _carve(self, source: str, split: str):
        """The ``split`` rows of the single published split of ``source`` (see ``load``), prepared and checked."""
        names = ["train", *reversed(self.held_out_splits)]
        canonical = split if split in names else self.split_aliases.get(str(split).lower())
        if canonical not in names:
            listed = ", ".join(repr(name) for name in names[:-1]) + f" and {names[-1]!r}"
            raise TaskDataError(f"{source!r} has one published split, carved into {listed}; got {split!r}")
        try:
            full = _load_dataset_source(source, "train")
        except TaskDataError as exc:
            if not self.hub_access_hint:
                raise
            message = str(exc)
            if _GATED_HINT in message:
                message = message.replace(_GATED_HINT, " " + self.hub_access_hint)
            else:
                message += " " + self.hub_access_hint
            raise TaskDataError(message) from None
        full = self.prepare(full)
        self.check_columns(full.column_names, source=source)
        total, held_out = len(full), sum(self.held_out_splits.values())
        if total <= held_out:
            raise TaskDataError(f"{source!r} has {total} rows; carving {names} needs more than {held_out}")
        end = total
        ranges = {}
        for name, rows in self.held_out_splits.items():
            ranges[name] = range(end - rows, end)
            end -= rows
        ranges["train"] = range(0, end)
        return self.check_rows(full.select(ranges[canonical]), source=f"{source} ({canonical})")

    def prepare(self, ds):
        """Hook to normalise a loaded dataset (decode JSON-string columns, rename fields). Default: unchanged.

        A row that cannot be normalised should be left for ``row_problem`` to report (e.g. its column set to None)
        when ``self.on_bad_row == "skip"``, and may raise ``TaskDataError`` naming the row otherwise.
        """
        return ds

    def check_columns(self, columns, source: str = "dataset") -> None:
        missing = [c for c in self.required_columns if c not in columns]
        if missing:
            raise TaskDataError(
                f"task {self.name!r} needs columns {list(self.required_columns)} but {source!r} lacks {missing} "
                f"(it has {sorted(columns)})"
            )

    def row_problem(self, example: Example) -> str | None:
        """Why ``example`` cannot be trained or evaluated on (its verifier could never pass it), or None if it can.

        Called once per row at load time with the row's required columns, so a dataset whose rows the verifier
        cannot read (answers that are not JSON, a missing target) fails before the run instead of training on
        zero rewards everywhere. Default: a required column that is null. Tasks override it with their own parsing
        (and call this one first). Must not raise.
        """
        for column in self.required_columns:
            if example.get(column) is None:
                return f"{column} is missing (null)"
        return None

    def check_rows(self, ds, source: str = "dataset"):
        """``ds`` with every row passing ``row_problem``; bad rows raise ``TaskDataError`` or, with
        ``on_bad_row="skip"``, are dropped and counted in a warning. Linear in the rows, reads only the required
        columns (a batch at a time, not one ``Dataset.__getitem__`` per row)."""
        if self.on_bad_row not in BAD_ROW_POLICIES:
            raise TaskDataError(f"on_bad_row must be one of {BAD_ROW_POLICIES}, got {self.on_bad_row!r}")
        columns = [c for c in self.required_columns if c in ds.column_names] or list(ds.column_names)
        if not columns:
            return ds
        bad: list[tuple[int, str]] = []
        index = 0
        for batch in ds.select_columns(columns).iter(batch_size=1000):
            for values in zip(*(batch[c] for c in columns)):
                try:
                    problem = self.row_problem(dict(zip(columns, values)))
                except Exception as exc:  # the hook must not raise; if it does, the row is unusable, not the run
                    problem = f"row check raised {type(exc).__name__}: {exc}"
                if problem:
                    bad.append((index, one_line(problem)))
                index += 1
        if not bad:
            return ds
        quoted = "; ".join(f"row {i}: {why:.160}" for i, why in bad[:_QUOTED_BAD_ROWS])
        more = f" (and {len(bad) - _QUOTED_BAD_ROWS} more)" if len(bad) > _QUOTED_BAD_ROWS else ""
        summary = f"{len(bad)} of {len(ds)} rows of {source!r} cannot be used by task {self.name!r}"
        if self.on_bad_row == "error":
            raise TaskDataError(
                f"{summary} -- {quoted}{more} (rows count from 0). Fix or remove those rows, or drop them at load "
                'time with the task option on_bad_row=skip (task_kwargs: {"on_bad_row": "skip"})'
            )
        if len(bad) == len(ds):
            raise TaskDataError(f"{summary}: all of them -- {quoted}{more} (rows count from 0)")
        logger.warning("on_bad_row=skip: skipped %s -- %s%s (rows count from 0)", summary, quoted, more)
        bad_index = {i for i, _ in bad}
        return ds.select([i for i in range(len(ds)) if i not in bad_index])

    def example_id(self, example: Example) -> str:
        """A stable id of an example (its ``id`` column, else a hash of its required columns)."""
        if example.get("id") not in (None, ""):
            return str(example["id"])
        payload = json.dumps({c: example.get(c) for c in self.required_columns}, sort_keys=True, default=str)
        return hashlib.sha1(payload.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


logger = logging.getLogger(__name__)

#: (task class, exception class) pairs already logged by ``safe_verify``: a verifier bug is logged loudly once, not
#: once per completion (which would bury the first traceback under thousands of copies).
_LOGGED_VERIFIER_ERRORS: set[tuple[str, str]] = set()
_LOGGED_LOCK = threading.Lock()
_MAX_ERROR_MESSAGE = 120


class VerifierErrorRate(RuntimeError):
    """Too many completions hit a verifier error: the rewards mean nothing, so the run stops instead of training on
    (or reporting) zeros that come from a bug rather than from the model."""


def safe_verify(task: Task, example: Example, text: str) -> Verdict:
    """``task.verify(example, text)`` that never raises and always returns a ``Verdict``.

    A user's verifier that raises, or returns something other than a ``Verdict``, must not kill a training or
    evaluation run hours in; it must not pass either. Such a completion gets ``Verdict(passed=False,
    reason="verifier error: <ExcClass>: <short message>", error="<ExcClass>")``; the traceback is logged as a warning
    once per (task class, exception class), and callers count ``verdict.error is not None`` against
    ``check_verifier_error_rate`` so that a verifier that is *mostly* broken stops the run with a clear message.
    """
    try:
        verdict = task.verify(example, text)
    except Exception as exc:  # the point is to contain any verifier bug
        return _verifier_error(task, type(exc).__name__, str(exc), exc)
    if not isinstance(verdict, Verdict):
        message = f"verify returned {type(verdict).__name__}, not Verdict"
        return _verifier_error(task, "TypeError", message, None)
    return verdict


def safe_leaks_answer(task: Task, example: Example, reflection: str) -> bool:
    """``task.leaks_answer`` that never raises: a leak check that fails counts as "no leak" (logged like a verifier
    error), so a user task's bug in an auxiliary check neither crashes the run nor penalises the reflection."""
    try:
        return bool(task.leaks_answer(example, reflection))
    except Exception as exc:
        _verifier_error(task, f"leaks_answer:{type(exc).__name__}", str(exc), exc)
        return False


def _verifier_error(task: Task, error: str, message: str, exc: BaseException | None) -> Verdict:
    message = " ".join(message.split())
    if len(message) > _MAX_ERROR_MESSAGE:
        message = message[: _MAX_ERROR_MESSAGE - 3] + "..."
    key = (type(task).__qualname__, error)
    with _LOGGED_LOCK:
        first = key not in _LOGGED_VERIFIER_ERRORS
        _LOGGED_VERIFIER_ERRORS.add(key)
    if first:
        logger.warning(
            "verifier error in task %r (%s): %s: %s -- the completion counts as failed; this is logged once per "
            "task and error class, and the run stops past max_verifier_error_rate",
            task.name,
            type(task).__name__,
            error,
            message,
            exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None,
            stack_info=exc is None,
        )
    reason = f"verifier error: {error}: {message}" if message else f"verifier error: {error}"
    return Verdict(passed=False, reason=reason, error=error)


#: Verifications a run has made before its verifier-error rate is judged (training, evaluation and mining alike),
#: so one odd completion early on is reported, not fatal.
MIN_VERIFICATIONS = 200


def check_verifier_error_rate(errors: int, total: int, max_rate: float, where: str, min_total: int = 0) -> None:
    """Raise ``VerifierErrorRate`` when ``errors / total`` exceeds ``max_rate``.

    ``where`` names the run and setting ("evaluation of countdown", "training step 40") so the message says what
    stopped and how to allow more. A few errors are tolerated (one odd input should not end a day-long run); a
    high rate means the verifier is broken and every reward after it is noise.
    """
    if total <= 0 or errors <= 0 or total < min_total:
        return
    rate = errors / total
    if rate > max_rate:
        raise VerifierErrorRate(
            f"{where}: {errors} of {total} verifications ({rate:.1%}) hit a verifier error, above the limit of "
            f"{max_rate:.1%}. Fix the task's verify() (the first traceback of each error class is in the log), or "
            f"raise the limit: max_verifier_error_rate above {rate:.2f} in the run's config, or "
            "--max-verifier-error-rate for scripts/evaluate.py (1.0 never stops)."
        )


#: The generic advice of a gated hub dataset (a task's ``hub_access_hint`` replaces it).
_GATED_HINT = " The dataset is gated: accept its terms on the hub and run `huggingface-cli login` (or set HF_TOKEN)."


def _load_dataset_source(source: str, split: str):
    """Load ``source`` (local file, saved dataset directory, or hub id) with one readable error on failure."""
    import datasets

    path = os.path.expanduser(source)
    suffix = os.path.splitext(path)[1].lower()
    try:
        if os.path.isdir(path) and os.path.exists(os.path.join(path, "dataset_info.json")):
            return datasets.load_from_disk(path)
        if os.path.isdir(path) and os.path.exists(os.path.join(path, "dataset_dict.json")):
            dd = datasets.load_from_disk(path)
            if split not in dd:
                raise TaskDataError(f"{source!r} has splits {list(dd)}, not {split!r}")
            return dd[split]
        if suffix in _LOCAL_SUFFIXES:
            if not os.path.exists(path):
                raise TaskDataError(f"dataset file {source!r} does not exist")
            if os.path.isdir(path):
                raise TaskDataError(f"dataset file {source!r} is a directory, not a {suffix} file")
            if _is_blank(path):
                raise TaskDataError(
                    f"dataset file {source!r} is empty: it holds no rows. Write one example per line (JSON Lines) "
                    "or use another file"
                )
            return _load_local_file(path, source, _LOCAL_SUFFIXES[suffix])
        if source.startswith((".", "/", "~")) and not os.path.exists(path):
            raise TaskDataError(f"dataset path {source!r} does not exist")
        return datasets.load_dataset(source, split=split)
    except TaskDataError:
        raise
    except Exception as exc:  # datasets raises many types (FileNotFound, ConnectionError, DatasetNotFound, gated)
        text = _innermost_message(exc)
        hint = ""
        if "gated" in text.lower() or "401" in text or "403" in text:
            hint = _GATED_HINT
        elif "offline" in text.lower() or "connection" in text.lower() or "resolve" in text.lower():
            hint = " The hub is unreachable (HF_HUB_OFFLINE set or no network): use a local file or source='generated'."
        raise TaskDataError(f"cannot load dataset {source!r} split {split!r}: {text}.{hint}") from None


#: Bytes read at a time when looking for the first non-blank character of a local file.
_BLANK_CHUNK = 1 << 16


def _is_blank(path: str) -> bool:
    """Whether a file holds nothing but whitespace (``datasets`` then fails with a bare ``StopIteration``). Reads
    until the first non-blank byte, so a real file costs one small read."""
    with open(path, "rb") as f:
        while chunk := f.read(_BLANK_CHUNK):
            if chunk.strip():
                return False
    return True


def _load_local_file(path: str, source: str, builder: str):
    """One local json/jsonl/parquet/csv file as a Dataset; a JSON syntax error names the file and the line.

    ``datasets`` reports a bad JSON line as "An error occurred while generating the dataset" after logging pyarrow's
    own complaint and a progress bar; the progress bar and log are silenced for this one call (the file is local, so
    it loads in seconds), and on failure the file is scanned once to name the first line that does not parse.
    """
    import datasets
    from datasets.utils import logging as ds_logging

    bars = ds_logging.is_progress_bar_enabled()
    verbosity = ds_logging.get_verbosity()
    ds_logging.disable_progress_bar()
    ds_logging.set_verbosity(ds_logging.CRITICAL)
    try:
        return datasets.load_dataset(builder, data_files=path, split="train")
    except Exception:
        where = _json_syntax_error(path) if builder == "json" else None
        if where is None:
            raise
        form = "each line one JSON object" if path.lower().endswith(".jsonl") else "one JSON document or JSON Lines"
        raise TaskDataError(f"dataset file {source!r} is not valid JSON: {where}. Fix it ({form})") from None
    finally:
        ds_logging.set_verbosity(verbosity)
        if bars:
            ds_logging.enable_progress_bar()


def _json_syntax_error(path: str) -> str | None:
    """``"line N, column C: <reason>"`` of the first JSON syntax error in a JSON Lines file (or a ``.json`` file
    holding one document), or None when it parses (the load failed for another reason). On the failure path only."""
    parsed_a_line = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                if parsed_a_line or not path.lower().endswith(".json"):
                    return f"line {lineno}, column {exc.colno}: {exc.msg}"
                break  # a .json file whose first line is no JSON value alone: one document over many lines
            parsed_a_line = True
        else:
            return None
    with open(path, encoding="utf-8", errors="replace") as f:
        try:
            json.load(f)
        except json.JSONDecodeError as exc:
            return f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
    return None


def _innermost_message(exc: BaseException) -> str:
    """``"Class: message"`` of ``exc`` on one line, followed by its causes' messages: ``datasets`` wraps the useful
    error (pyarrow's, naming the bad column) in ``DatasetGenerationError("An error occurred while generating the
    dataset")``."""
    parts = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen and len(parts) < 4:
        seen.add(id(cur))
        text = one_line(str(cur))
        if text:
            parts.append(f"{type(cur).__name__}: {text}")
        cur = cur.__cause__ or cur.__context__
    return " <- ".join(parts) or type(exc).__name__
