"""Stage 2 — the curriculum: verified teacher solutions and reflections that worked, as prompt/completion SFT data.

Two datasets, both in TRL's conversational prompt/completion format (so ``SFTTrainer`` puts the loss on the
completion only) and saved with ``Dataset.save_to_disk`` through a temp directory (complete or absent):

* **solutions** (``sft``): ``prompt`` = the task's first-attempt messages, ``completion`` = one assistant message
  with the teacher's worked solution (reasoning + answer, not a bare label). Only solutions the task's verifier
  accepts are kept, and when the task has a small answer space (``task.majority_baseline`` is not None) the rows are
  balanced by answer, so the student cannot learn "always YES" from the data (the Linguistic RL trap: an 88%-YES
  test set that the always-YES baseline beats).
* **reflections** (``reflection``): for a failed attempt (the teacher's own failures from stage 1, plus synthetic
  plausible mistakes — ``rrr.curriculum.oracle.synthesize_failure``), ``prompt`` = ``task.reflection_messages(example,
  attempt)``, ``completion`` = the teacher's reflection. Kept only when the reflection does not leak the answer
  (``task.leaks_answer``) *and* the teacher's retry with that reflection in context passes the verifier. This is the
  RRR warm-start format: the same prompt the RRR trainer's reflection phase sees.

**The strategy in the prompt (``strategy_in_prompt``)** — a trade-off, off by default:

* off: the student learns the strategy *through* the worked solutions; its prompts are exactly the task's, so the SFT
  model drops straight into ``train_grpo.py`` and ``make eval`` (which use the task's prompts) with no mismatch;
* on: the final strategy is a system message of every prompt (Linguistic RL's format). A small student gets the rules
  spelled out at inference, but every prompt is longer, and the *same* system message must then be used wherever the
  model runs — evaluation here does this, while RRR training and ``make eval`` use the task's plain prompts. (The
  Linguistic RL code trained with the learned strategy but evaluated with the initial one: that mismatch is a bug.)

Extra columns (``example_id``, ``example_json``, ``origin``, ...) are kept for auditing; ``train_sft`` uses only
``prompt`` and ``completion`` and re-verifies solutions from ``example_json`` when it knows the task.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rrr.curriculum.oracle import synthesize_failure
from rrr.curriculum.prompts import strategy_prompt_messages
from rrr.curriculum.teachers import SolveResult, Teacher
from rrr.tasks.base import Example, Task, safe_verify
from rrr.tasks.parsing import last_answer
from rrr.utils.config import documented
from rrr.utils.io import atomic_directory, atomic_write_text
from rrr.utils.outputs import read_marker

logger = logging.getLogger("rrr.curriculum")

SFT_DIRNAME, REFLECTION_DIRNAME = "sft", "reflection"
#: The ownership kind (``rrr.utils.outputs``) of the datasets ``save_rows`` writes.
CURRICULUM_KIND = "curriculum_dataset"


class CurriculumError(ValueError):
    """The curriculum cannot be built (no verified solution, unreadable dataset, ...)."""


@documented
@dataclass
class CurriculumConfig:
    r"""How stage 2 turns teacher output into SFT data (see the module docstring).

    strategy_in_prompt (`bool`, defaults to `False`):
        Put the final strategy in a system message of every SFT prompt (trade-off in the module docstring).
    balance (`bool`, defaults to `True`):
        Balance the solutions by answer when the task has a small answer space (`task.majority_baseline`).
    reflections (`bool`, defaults to `True`):
        Build the reflection-SFT dataset.
    retry_rows (`bool`, defaults to `False`):
        Also train the retry that follows each kept reflection (a second row: retry prompt with the reflection in
        context -> the teacher's passing retry). A student that never saw a reflection in context must learn to
        *use* one; instruct models mostly can already, a model trained from scratch cannot.
    synthetic_failures (`int`, *optional*):
        Synthetic failed attempts to reflect on, beyond the teacher's real stage-1 failures (unset: one per problem).
    seed (`int`, defaults to `0`):
        Seed of the balancing and of the synthetic mistakes.
    progress (`bool`, defaults to `True`):
        tqdm progress bars.
    chunk_size (`int`, defaults to `16`):
        Problems per teacher request batch (progress granularity; HTTP teachers run a batch concurrently).
    """

    strategy_in_prompt: bool = False
    balance: bool = True
    reflections: bool = True
    retry_rows: bool = False
    synthetic_failures: int | None = None
    seed: int = 0
    progress: bool = True
    chunk_size: int = 16

    def __post_init__(self):
        if self.synthetic_failures is not None and self.synthetic_failures < 0:
            raise ValueError(f"synthetic_failures must be >= 0, got {self.synthetic_failures}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")


@dataclass
class CurriculumResult:
    """Paths and counts of the saved curriculum (``reflection_path`` None when no reflection row survived)."""

    sft_path: str
    reflection_path: str | None
    stats: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------------------
# Labels and balancing
# ----------------------------------------------------------------------------------------------------------------
def answer_label(task: Task, example: Example) -> str | None:
    """The example's correct final answer as a label (from ``task.reference_answer``), or None if unknown."""
    reference = task.reference_answer(example)
    answer = last_answer(reference) if reference else None
    return answer.strip().upper() if answer is not None else None


def has_small_answer_space(task: Task, examples: Sequence[Example]) -> bool:
    """Whether a majority-class baseline exists for the task (binary/multiple-choice style answers)."""
    try:
        return bool(examples) and task.majority_baseline(list(examples)) is not None
    except Exception:
        return False


def balance_by_label(task: Task, items: Sequence[Any], seed: int = 0, key: Callable[[Any], Example] | None = None):
    """Down-sample ``items`` so every answer label occurs equally often (order kept; seeded choice of what to drop).

    ``key`` maps an item to its example (default: the item is the example). Items whose label is unknown are kept.
    Returns ``(kept_items, counts_before, counts_after)``.
    """
    key = key or (lambda item: item)
    labels = [answer_label(task, key(item)) for item in items]
    before = Counter(label for label in labels if label is not None)
    if len(before) < 2:
        return list(items), dict(before), dict(before)
    target = min(before.values())
    rng = random.Random(seed)
    keep: set[int] = set()
    for label in before:
        idx = [i for i, lab in enumerate(labels) if lab == label]
        keep.update(rng.sample(idx, target))
    kept = [item for i, item in enumerate(items) if labels[i] is None or i in keep]
    after = Counter(labels[i] for i in range(len(items)) if labels[i] is not None and i in keep)
    return kept, dict(before), dict(after)


# ----------------------------------------------------------------------------------------------------------------
# Rows
# ----------------------------------------------------------------------------------------------------------------
def _example_json(example: Example) -> str:
    return json.dumps(example, sort_keys=True, ensure_ascii=False, default=str)


def solution_rows(
    task: Task, results: Sequence[SolveResult], strategy: str | None = None, origin: str = "teacher"
) -> list[dict[str, Any]]:
    """SFT rows from solutions the verifier accepts (re-verified here); ``strategy`` goes into the prompt if given."""
    rows = []
    for r in results:
        if not safe_verify(task, r.example, r.completion).passed:
            continue
        prompt = strategy_prompt_messages(task, r.example, strategy) if strategy else task.attempt_messages(r.example)
        rows.append(
            {
                "prompt": prompt,
                "completion": [{"role": "assistant", "content": r.completion}],
                "example_id": task.example_id(r.example),
                "example_json": _example_json(r.example),
                "origin": origin,
            }
        )
    return rows


@contextlib.contextmanager
def quiet_datasets():
    """Silence ``datasets``' per-call progress bars ("Saving the dataset ...") for the duration of the block."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def save_rows(rows: list[dict[str, Any]], path: str, preview: int = 20):
    """Save rows with ``Dataset.save_to_disk`` atomically, plus ``<path>.preview.jsonl`` (first rows, for humans).

    Only an earlier curriculum dataset is replaced (``rrr.utils.outputs``); one saved before the ownership marker
    existed is recognised by its preview file beside it.
    """
    import datasets

    if not rows:
        raise CurriculumError(f"refusing to save an empty dataset to {path}")
    ds = datasets.Dataset.from_list(rows)
    with atomic_directory(path, CURRICULUM_KIND, overwrite=_legacy_curriculum(path)) as tmp, quiet_datasets():
        ds.save_to_disk(tmp)
    text = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows[:preview])
    atomic_write_text(f"{path}.preview.jsonl", text)
    return ds


def _legacy_curriculum(path: str) -> bool:
    """A curriculum dataset ``save_rows`` wrote before directories carried the ownership marker."""
    return read_marker(path) is None and os.path.isdir(path) and os.path.isfile(f"{path}.preview.jsonl")


def load_curriculum(path: str):
    """A curriculum dataset from a ``save_to_disk`` directory or a ``.json``/``.jsonl`` file, columns checked."""
    import datasets

    path = os.path.expanduser(path)
    try:
        if os.path.isdir(path):
            ds = datasets.load_from_disk(path)
        elif os.path.isfile(path) and path.endswith((".json", ".jsonl")):
            ds = datasets.load_dataset("json", data_files=path, split="train")
        else:
            raise CurriculumError(
                f"curriculum dataset {path!r} does not exist (build it with scripts/run_curriculum.py, or pass a "
                "save_to_disk directory or a .jsonl file with prompt/completion columns)"
            )
    except CurriculumError:
        raise
    except Exception as exc:
        raise CurriculumError(f"cannot load curriculum dataset {path!r}: {type(exc).__name__}: {exc}") from None
    if isinstance(ds, datasets.DatasetDict):
        if "train" not in ds:
            raise CurriculumError(f"{path!r} is a DatasetDict without a 'train' split (splits: {list(ds)})")
        ds = ds["train"]
    missing = [c for c in ("prompt", "completion") if c not in ds.column_names]
    if missing:
        raise CurriculumError(f"curriculum dataset {path!r} lacks column(s) {missing} (has {ds.column_names})")
    if len(ds) == 0:
        raise CurriculumError(f"curriculum dataset {path!r} is empty")
    return ds


# ----------------------------------------------------------------------------------------------------------------
# Stage 2
# ----------------------------------------------------------------------------------------------------------------
def _chunked(items: list, size: int, fn: Callable[[list], list], desc: str, progress: bool) -> list:
    from tqdm.auto import tqdm

    out: list = []
    with tqdm(total=len(items), desc=desc, unit="ex", disable=not progress) as bar:
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            out.extend(fn(chunk))
            bar.update(len(chunk))
    return out


def build_curriculum(
    task: Task,
    teacher: Teacher,
    examples: Sequence[Example],
    strategy: str,
    output_dir: str,
    config: CurriculumConfig | None = None,
    failures: Sequence[SolveResult] = (),
) -> CurriculumResult:
    """Solve ``examples`` with the final ``strategy``, keep verified solutions, build reflections; save both.

    ``failures`` are real failed attempts to reflect on: the pipeline passes the teacher's own from stage 1; a
    student's failures on *training* problems (e.g. mined with ``rrr.evaluation.mine_failures``, wrapped as
    ``SolveResult``) work the same way and are the most on-policy. Synthetic ones are added per
    ``config.synthetic_failures``. Raises ``CurriculumError`` when no solution passes the verifier.
    """
    config = config or CurriculumConfig()
    examples = [dict(ex) for ex in examples]
    if not examples:
        raise CurriculumError("build_curriculum needs at least one example")
    stats: dict[str, Any] = {"problems": len(examples)}

    # (a) solutions -------------------------------------------------------------------------------------------
    texts = _chunked(
        examples,
        config.chunk_size,
        lambda chunk: teacher.solve_many(task, chunk, strategy),
        "stage 2: curriculum solutions",
        config.progress,
    )
    results = [SolveResult(ex, text, safe_verify(task, ex, text)) for ex, text in zip(examples, texts)]
    verified = [r for r in results if r.passed]
    stats["verified_solutions"] = len(verified)
    if not verified:
        reasons = Counter(r.verdict.reason for r in results).most_common(3)
        raise CurriculumError(
            f"none of the teacher's {len(results)} curriculum solutions passed the {task.name!r} verifier (most common "
            f"reasons: {reasons}); nothing to fine-tune on. Check the teacher's answer format against the task's "
            "attempt prompt, or use a stronger teacher."
        )
    if config.balance and has_small_answer_space(task, examples):
        verified, before, after = balance_by_label(task, verified, seed=config.seed, key=lambda r: r.example)
        stats["labels_before_balancing"], stats["labels"] = before, after
    rows = solution_rows(task, verified, strategy if config.strategy_in_prompt else None)
    sft_path = os.path.join(output_dir, SFT_DIRNAME)
    save_rows(rows, sft_path)
    stats["sft_rows"] = len(rows)

    # (b) reflections -----------------------------------------------------------------------------------------
    reflection_path = None
    if config.reflections:
        reflection_rows, reflection_stats = reflection_rows_for(task, teacher, examples, failures, config)
        stats.update(reflection_stats)
        if reflection_rows:
            reflection_path = os.path.join(output_dir, REFLECTION_DIRNAME)
            save_rows(reflection_rows, reflection_path)
        else:
            logger.warning("no reflection survived the leak and retry checks; the reflection dataset is skipped")
    if reflection_path is None:  # never leave a previous run's reflection data where a recipe would pick it up
        stale = os.path.join(output_dir, REFLECTION_DIRNAME)
        if os.path.isdir(stale):  # ... but delete only what rrr's curriculum builder wrote
            if (read_marker(stale) or {}).get("kind") != CURRICULUM_KIND and not _legacy_curriculum(stale):
                raise CurriculumError(f"{stale} was not written by rrr's curriculum builder; move it away")
            shutil.rmtree(stale)
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{stale}.preview.jsonl")
    stats["reflection_rows"] = stats.get("reflection_rows", 0)
    return CurriculumResult(sft_path=sft_path, reflection_path=reflection_path, stats=stats)


def reflection_rows_for(
    task: Task,
    teacher: Teacher,
    examples: Sequence[Example],
    failures: Sequence[SolveResult],
    config: CurriculumConfig,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Reflection-SFT rows: reflect on each failed attempt, drop leaks, keep those whose retry passes."""
    rng = random.Random(config.seed)
    items: list[tuple[Example, str, str]] = [(f.example, f.completion, "teacher") for f in failures if not f.passed]
    wanted = len(examples) if config.synthetic_failures is None else config.synthetic_failures
    pool = list(examples)
    rng.shuffle(pool)
    synthetic = 0
    for example in pool:
        if synthetic >= wanted:
            break
        attempt = synthesize_failure(task, example, rng)
        if attempt is not None:
            items.append((example, attempt, "synthetic"))
            synthetic += 1
    stats: dict[str, Any] = {"failed_attempts": len(items), "synthetic_failures": synthetic}
    if not items:
        return [], stats
    verdicts = [safe_verify(task, ex, attempt) for ex, attempt, _ in items]
    reflections = _chunked(
        list(zip(items, verdicts)),
        config.chunk_size,
        lambda chunk: teacher.reflect_many(task, [(ex, attempt, v) for (ex, attempt, _), v in chunk]),
        "stage 2: reflections",
        config.progress,
    )
    leaked = [task.leaks_answer(ex, refl) or not refl.strip() for (ex, _, _), refl in zip(items, reflections)]
    candidates = [(item, refl) for item, refl, leak in zip(items, reflections, leaked) if not leak]
    retries = _chunked(
        candidates,
        config.chunk_size,
        lambda chunk: teacher.retry_many(task, [(ex, attempt, refl) for (ex, attempt, _), refl in chunk]),
        "stage 2: retries",
        config.progress,
    )
    rows = []
    for ((example, attempt, origin), refl), retry in zip(candidates, retries):
        if not safe_verify(task, example, retry).passed:
            continue
        row = {
            "prompt": task.reflection_messages(example, attempt),
            "completion": [{"role": "assistant", "content": refl}],
            "example_id": task.example_id(example),
            "example_json": _example_json(example),
            "origin": origin,
            "retry": retry,
        }
        rows.append(row)
        if config.retry_rows:
            rows.append(
                {
                    **row,
                    "prompt": task.retry_messages(example, attempt, refl),
                    "completion": [{"role": "assistant", "content": retry}],
                    "origin": f"{origin}-retry",
                }
            )
    kept = sum(not r["origin"].endswith("-retry") for r in rows)
    stats.update(reflections_leaked=sum(leaked), retries_failed=len(candidates) - kept, reflection_rows=len(rows))
    return rows, stats
