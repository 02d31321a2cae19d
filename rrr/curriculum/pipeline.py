"""Teacher -> curriculum -> student, measured: ``run_knowledge_transfer``.

The role ``run_knowledge_transfer(domain=...)`` plays in the Linguistic RL framework, for any ``Task`` (a built-in
name, ``package.module:ClassName``, or an instance of a user's own subclass) and any teacher (``make_teacher`` spec or
``Teacher``). Stages, each timed:

1. **data** — training problems for stage 1, fresh training problems for the curriculum, and a held-out test split,
   **balanced by answer** when the task has a small answer space (the published scheduling test set was 88% YES, so
   always-YES beat every model on it); the test set is saved under ``data/test`` so every number is reproducible;
2. **teacher baseline** — the teacher on the test split with its initial strategy;
3. **self-improvement** (``self_improve``) on the training problems; then the teacher again on the test split with
   the final strategy;
4. **curriculum** (``build_curriculum``): verified worked solutions + reflections whose retry passed;
5. **student baseline**, **student SFT** (``train_sft``, LoRA by default), **student after SFT** — first-try accuracy
   on the same test split.

It reports all four accuracies side by side with 95% Wilson intervals, and the majority-class baseline where the task
has one, in ``summary.json`` and ``summary.md`` under ``output_dir``. Teacher calls are cached under
``<output_dir>/teacher_cache`` (or ``cache_dir``), so a re-run makes no teacher calls.

Student accuracy comes from ``rrr.evaluation.evaluate_model`` when that module is available (the project's
evaluator), else from a small built-in fallback on ``rrr.episode.run_episodes`` + ``HFGenerator`` (greedy).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from rrr.curriculum.dataset import (
    CurriculumConfig,
    CurriculumError,
    answer_label,
    balance_by_label,
    build_curriculum,
    has_small_answer_space,
    quiet_datasets,
)
from rrr.curriculum.prompts import strategy_prompt_messages, with_system
from rrr.curriculum.self_improve import SelfImproveConfig, self_improve
from rrr.curriculum.teachers import SolveResult, Teacher, make_teacher
from rrr.evaluation.stats import wilson_interval  # the project's one implementation (95% Wilson score)
from rrr.tasks import Task, get_task
from rrr.tasks.base import Example, Messages, safe_verify
from rrr.utils.config import documented
from rrr.utils.io import atomic_directory, atomic_write_json, atomic_write_text
from rrr.utils.outputs import claim_output_dir, output_lock

logger = logging.getLogger("rrr.curriculum")
#: The ownership kind of ``run_knowledge_transfer``'s output directory (``rrr.utils.outputs``).
OUTPUT_KIND = "curriculum"


@documented
@dataclass
class SFTOptions:
    r"""Student fine-tuning inside ``run_knowledge_transfer`` (for a GPU run, prefer ``scripts/train_sft.py``).

    Defaults follow the Linguistic RL framework (LoRA r=16, alpha=32, q/k/v/o projections, lr 2e-4, 3 epochs) — on
    balanced data with worked solutions instead of labels.

    enabled (`bool`, defaults to `True`):
        Fine-tune the student at all (false: stages 1-2 and the teacher/student baselines only).
    use_lora (`bool`, defaults to `True`):
        LoRA (true) or full fine-tune (false).
    lora_r (`int`, defaults to `16`):
        LoRA rank.
    lora_alpha (`int`, defaults to `32`):
        LoRA alpha.
    lora_dropout (`float`, defaults to `0.05`):
        LoRA dropout.
    lora_target_modules (`list[str]`):
        Modules LoRA adapts (default: the q/k/v/o projections).
    learning_rate (`float`, defaults to `2e-4`):
        Peak learning rate.
    num_train_epochs (`float`, defaults to `3.0`):
        Epochs over the curriculum (`max_steps` > 0 overrides it).
    max_steps (`int`, defaults to `-1`):
        Training steps; overrides `num_train_epochs` when > 0.
    per_device_train_batch_size (`int`, defaults to `4`):
        Rows per device per step.
    gradient_accumulation_steps (`int`, defaults to `2`):
        Steps whose gradients are summed before each optimizer step.
    max_length (`int`, *optional*, defaults to `2048`):
        Tokens per training sequence (prompt + completion); longer ones are truncated.
    include_reflections (`bool`, defaults to `True`):
        Mix the reflection-SFT dataset into training.
    merge (`bool`, defaults to `False`):
        Save the merged model instead of the adapter (the form `train_grpo.py` takes).
    extra (`dict`):
        Any other `CurriculumSFTConfig` field, e.g. `{"lr_scheduler_type": "cosine"}`.
    """

    enabled: bool = True
    use_lora: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    learning_rate: float = 2e-4
    num_train_epochs: float = 3.0
    max_steps: int = -1
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 2
    max_length: int | None = 2048
    include_reflections: bool = True
    merge: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@documented
@dataclass
class CurriculumRunConfig:
    r"""One ``rrr curriculum`` run (``scripts/run_curriculum.py``): what ``run_knowledge_transfer`` is called with.
    A ``--config`` recipe (e.g. ``recipes/smoke/curriculum/scheduling.yaml``) states these fields; each flag
    overrides one.

    task (`str`, *optional*):
        Task name or `package.module:ClassName` (a user's own Task); required.
    task_kwargs (`dict`):
        Options of the task's constructor, e.g. `{"strict": true}`.
    teacher (`str`, defaults to `"oracle"`):
        `oracle` | `openai:<model>@<base_url>` (key from OPENAI_API_KEY) | `anthropic:<model>` (ANTHROPIC_API_KEY) |
        `hf:<model name or path>`.
    student (`str`, *optional*):
        Student model (hub id or local dir); unset: stages 1-2 only.
    output_dir (`str`, *optional*):
        Where the run's data, curriculum, student and `summary.{json,md}` go; required.
    num_train (`int`, defaults to `100`):
        Stage-1 training problems.
    num_curriculum (`int`, *optional*):
        Curriculum problems (default: `num_train`).
    num_test (`int`, defaults to `150`):
        Held-out test problems (before answer balancing).
    source (`str`, *optional*):
        Data source for `task.load` (default: the task's own).
    test_source (`str`, *optional*):
        Test data source (default: `source`).
    seed (`int`, defaults to `0`):
        Seed of the data, of the curriculum (its `seed` is always this one) and of the student's SFT.
    batch_size (`int`, defaults to `10`):
        Problems per journal entry of the teacher's self-improvement.
    distill_every (`int`, defaults to `5`):
        Distill a new strategy every N batches.
    teacher_max_tokens (`int`, defaults to `1024`):
        Token budget of each teacher reply (not the oracle's).
    teacher_temperature (`float`, defaults to `0.0`):
        Sampling temperature of the teacher (not the oracle's).
    concurrency (`int`, defaults to `4`):
        Parallel requests to an HTTP teacher.
    cache_dir (`str`, *optional*):
        Teacher cache (default: `<output_dir>/teacher_cache`).
    curriculum (`CurriculumConfig`):
        How the teacher's output becomes SFT data (`rrr.curriculum.CurriculumConfig`).
    sft (`SFTOptions`):
        The student's fine-tuning (`rrr.curriculum.pipeline.SFTOptions`).
    evaluate_teacher (`bool`, defaults to `True`):
        Measure the teacher on the test split.
    evaluate_student (`bool`, defaults to `True`):
        Measure the student before and after SFT.
    eval_max_new_tokens (`int`, defaults to `512`):
        Student generation budget in the evaluation.
    progress (`bool`, defaults to `True`):
        Progress bars.
    """

    task: str | None = None
    task_kwargs: dict = field(default_factory=dict)
    teacher: str = "oracle"
    student: str | None = None
    output_dir: str | None = None
    num_train: int = 100
    num_curriculum: int | None = None
    num_test: int = 150
    source: str | None = None
    test_source: str | None = None
    seed: int = 0
    batch_size: int = 10
    distill_every: int = 5
    teacher_max_tokens: int = 1024
    teacher_temperature: float = 0.0
    concurrency: int = 4
    cache_dir: str | None = None
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    sft: SFTOptions = field(default_factory=SFTOptions)
    evaluate_teacher: bool = True
    evaluate_student: bool = True
    eval_max_new_tokens: int = 512
    progress: bool = True

    def __post_init__(self):
        missing = [name for name in ("task", "output_dir") if not getattr(self, name)]
        if missing:
            raise ValueError(f"{' and '.join(missing)} required (--task, --output-dir, or the recipe's keys)")
        self.curriculum = replace(self.curriculum, seed=self.seed)

    def teacher_options(self) -> dict[str, Any]:
        """``make_teacher`` options: the oracle takes none, an HF teacher no concurrency."""
        if self.teacher.strip() == "oracle":
            return {}
        options: dict[str, Any] = {"max_tokens": self.teacher_max_tokens, "temperature": self.teacher_temperature}
        if not self.teacher.startswith("hf:"):
            options["concurrency"] = self.concurrency
        return options

    def run(self, teacher: Teacher | None = None) -> dict[str, Any]:
        """``run_knowledge_transfer`` with these settings (``teacher``: one already built from ``self.teacher``)."""
        return run_knowledge_transfer(
            self.task,
            teacher if teacher is not None else self.teacher,
            self.student,
            self.output_dir,
            task_kwargs=self.task_kwargs,
            num_train=self.num_train,
            num_test=self.num_test,
            num_curriculum=self.num_curriculum,
            batch_size=self.batch_size,
            distill_every=self.distill_every,
            source=self.source,
            test_source=self.test_source,
            seed=self.seed,
            curriculum=self.curriculum,
            sft=self.sft,
            evaluate_teacher=self.evaluate_teacher,
            evaluate_student=self.evaluate_student,
            eval_max_new_tokens=self.eval_max_new_tokens,
            cache_dir=self.cache_dir,
            progress=self.progress,
        )


class StrategyPromptTask(Task):
    """A task whose prompts carry a strategy as a system message; everything else is the wrapped task's.

    Used to evaluate a student trained with ``strategy_in_prompt=True`` with exactly the prompts it was trained on.
    """

    def __init__(self, inner: Task, strategy: str):
        self.inner, self.strategy = inner, strategy
        self.name = inner.name
        self.required_columns = inner.required_columns
        self.difficulty_column = inner.difficulty_column
        self.reflection_instruction = inner.reflection_instruction
        self.retry_instruction = inner.retry_instruction
        self.system_prompt = inner.system_prompt

    def _system(self, messages: Messages) -> Messages:
        return with_system(f"Strategy:\n{self.strategy}", messages)

    def attempt_prompt(self, example: Example) -> str:
        return self.inner.attempt_prompt(example)

    def attempt_messages(self, example: Example) -> Messages:
        return strategy_prompt_messages(self.inner, example, self.strategy)

    def reflection_messages(self, example: Example, attempt: str) -> Messages:
        return self._system(self.inner.reflection_messages(example, attempt))

    def retry_messages(self, example: Example, attempt: str, reflection: str) -> Messages:
        return self._system(self.inner.retry_messages(example, attempt, reflection))

    def verify(self, example, completion):
        return self.inner.verify(example, completion)

    def leaks_answer(self, example, reflection):
        return self.inner.leaks_answer(example, reflection)

    def reference_answer(self, example):
        return self.inner.reference_answer(example)

    def worked_solution(self, example):
        return self.inner.worked_solution(example)

    def majority_baseline(self, examples):
        return self.inner.majority_baseline(examples)

    def example_id(self, example):
        return self.inner.example_id(example)

    def load(self, *args, **kwargs):
        return self.inner.load(*args, **kwargs)

    def generate(self, *args, **kwargs):
        return self.inner.generate(*args, **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------------------------------------------------
def _score(correct: int, n: int, **extra: Any) -> dict[str, Any]:
    low, high = wilson_interval(correct, n)
    return {"acc": correct / n if n else None, "correct": correct, "n": n, "ci95": [low, high], **extra}


def teacher_accuracy(
    task: Task, teacher: Teacher, examples: Sequence[Example], strategy: str, progress: bool = True
) -> tuple[dict[str, Any], list[SolveResult]]:
    """The teacher's accuracy on ``examples`` with ``strategy`` (cached calls, verified by the task)."""
    from tqdm.auto import tqdm

    results: list[SolveResult] = []
    with tqdm(total=len(examples), desc="teacher on test", unit="ex", disable=not progress) as bar:
        for start in range(0, len(examples), 16):
            chunk = list(examples[start : start + 16])
            for ex, text in zip(chunk, teacher.solve_many(task, chunk, strategy)):
                results.append(SolveResult(ex, text, safe_verify(task, ex, text)))
            bar.update(len(chunk))
    return _score(sum(r.passed for r in results), len(results)), results


def student_accuracy(
    model: str,
    task: Task,
    examples: Sequence[Example],
    test_dir: str,
    output_dir: str,
    max_new_tokens: int = 512,
    seed: int = 0,
    task_spec: tuple[str, dict] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Greedy first-try accuracy of ``model`` (a model dir, hub id or adapter dir) on the saved test split.

    With ``task_spec`` (the task's registry name and constructor options) the project's evaluator
    ``rrr.evaluation.evaluate_model`` runs on ``test_dir``; it rebuilds the task from its name, so a task object it
    cannot rebuild (a user's instance, a ``StrategyPromptTask``) goes through the built-in fallback instead. The
    output directory is cleared first: the evaluator resumes from matching samples, and a retrained model at the same
    path must not inherit the previous model's answers.
    """
    if os.path.isdir(output_dir):
        shutil.rmtree(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    try:
        from rrr.evaluation import evaluate_model
    except ImportError:
        evaluate_model = None
    if evaluate_model is not None and task_spec is not None:
        name, kwargs = task_spec
        adapter_dir = os.path.exists(os.path.join(os.path.expanduser(model), "adapter_config.json"))
        result = evaluate_model(
            model,
            name,
            backend="hf" if adapter_dir else "auto",
            output_dir=output_dir,
            progress=progress,
            task_kwargs=dict(kwargs),
            split="test",
            source=test_dir,
            seed=seed,
            attempt_max_tokens=max_new_tokens,
            retry_max_tokens=max_new_tokens,
            reflection_max_tokens=min(128, max_new_tokens),
        )
        metrics = result["metrics"]
        first, second = metrics["first_try"], metrics.get("second_try") or {}
        return _score(
            int(first["k"]),
            int(first["n"]),
            within_two_acc=second.get("acc"),
            evaluator="rrr.evaluation.evaluate_model",
        )
    return _first_try_fallback(model, task, examples, output_dir, max_new_tokens)


def _first_try_fallback(
    model_path: str, task: Task, examples: Sequence[Example], output_dir: str, max_new_tokens: int
) -> dict[str, Any]:
    """Greedy first attempts through the shared episode code (``rrr.evaluation`` is not available)."""
    from rrr.episode import EpisodeConfig, run_episodes
    from rrr.generation import HFGenerator, SamplingParams
    from rrr.models import load_model_and_tokenizer
    from rrr.utils.io import atomic_write_text as write

    model, tokenizer = load_model_and_tokenizer(model_path)
    generator = HFGenerator(model, tokenizer, batch_size=32)
    greedy = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0)
    reflection = SamplingParams(max_new_tokens=min(128, max_new_tokens), temperature=0.0)
    config = EpisodeConfig(attempt=greedy, reflection=reflection, retry=greedy)
    episodes = run_episodes(task, generator, list(examples), config)
    correct = sum(ep.first_try_passed for ep in episodes)
    two = sum(ep.passed_within_two for ep in episodes)
    lines = [
        json.dumps(
            {
                "example_id": ep.example_id,
                "attempt": ep.attempts[0].text,
                "passed": ep.first_try_passed,
                "reason": ep.attempts[0].verdict.reason,
                "reflection": ep.reflections[0].text if ep.reflections else None,
                "retry_passed": ep.retry_passed,
            },
            ensure_ascii=False,
        )
        for ep in episodes
    ]
    write(os.path.join(output_dir, "samples.jsonl"), "".join(line + "\n" for line in lines))
    return _score(
        correct, len(episodes), within_two_acc=two / max(1, len(episodes)), evaluator="run_episodes (fallback)"
    )


# ----------------------------------------------------------------------------------------------------------------
# The pipeline
# ----------------------------------------------------------------------------------------------------------------
def _as(cls, value):
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        return cls(**value)
    raise TypeError(f"expected {cls.__name__} or dict, got {type(value).__name__}")


def _save_examples(examples: list[Example], path: str) -> None:
    """Save the test split; ``path`` is inside ``run_knowledge_transfer``'s own (claimed) output directory."""
    import datasets

    with atomic_directory(path, "curriculum_examples", overwrite=True) as tmp, quiet_datasets():
        datasets.Dataset.from_list(examples).save_to_disk(tmp)


def run_knowledge_transfer(
    task: Task | str,
    teacher: Teacher | str = "oracle",
    student: str | None = None,
    output_dir: str = "runs/curriculum",
    *,
    task_kwargs: dict | None = None,
    num_train: int = 100,
    num_test: int = 150,
    num_curriculum: int | None = None,
    batch_size: int = 10,
    distill_every: int = 5,
    source: str | None = None,
    test_source: str | None = None,
    seed: int = 0,
    curriculum: CurriculumConfig | dict | None = None,
    sft: SFTOptions | dict | None = None,
    evaluate_teacher: bool = True,
    evaluate_student: bool = True,
    eval_max_new_tokens: int = 512,
    cache_dir: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run teacher self-improvement -> curriculum -> student SFT for ``task`` and measure every stage.

    Args:
        task: a ``Task``, a registry name, or ``"package.module:ClassName"`` (a user's own task).
        teacher: a ``Teacher`` or a spec: ``oracle``, ``openai:<model>@<base_url>``, ``anthropic:<model>``,
            ``hf:<path>``.
        student: the model to fine-tune (hub id or local dir); None skips the student stages.
        output_dir: everything goes here (see the module docstring for the layout).
        num_train / num_curriculum / num_test: problems for stage 1, for the curriculum (default: ``num_train``),
            and for the held-out test split (before balancing).
        batch_size / distill_every: stage-1 batch size and distillation interval (Linguistic RL: 10 and 5).
        source / test_source: data sources for ``task.load`` (default: the task's own; ``test_source`` defaults to
            ``source``).
        curriculum: ``CurriculumConfig`` (or its fields as a dict): strategy in prompt, balancing, reflections.
        sft: ``SFTOptions`` (or a dict): LoRA/full, hyper-parameters, merge.
        evaluate_teacher / evaluate_student: measure the teacher / the student on the test split.
        eval_max_new_tokens: student generation budget in the built-in evaluator.
        cache_dir: teacher cache (default ``<output_dir>/teacher_cache``).

    Returns the summary dict also written to ``summary.json`` (accuracies with 95% CIs, the majority baseline,
    dataset sizes, teacher usage and cost, stage timings, artifact paths).
    """
    timings: dict[str, float] = {}
    clock = time.time()
    task_obj = get_task(task, **(task_kwargs or {}))
    curriculum_cfg = CurriculumConfig(seed=seed) if curriculum is None else _as(CurriculumConfig, curriculum)
    curriculum_cfg = replace(curriculum_cfg, progress=curriculum_cfg.progress and progress)
    sft_opts = _as(SFTOptions, sft)
    output_dir = os.path.abspath(output_dir)
    for name, value in (("num_train", num_train), ("num_test", num_test), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    # one writer, and only into a directory that is new, empty or an earlier run's (rrr.utils.outputs)
    with output_lock(output_dir):
        claim_output_dir(output_dir, OUTPUT_KIND, legacy=(os.path.join("data", "test", "dataset_info.json"),))
        teacher_obj = make_teacher(teacher, task=task_obj)
        if teacher_obj.cache is None or cache_dir:
            teacher_obj.set_cache_dir(cache_dir or os.path.join(output_dir, "teacher_cache"))

        # 1. data ---------------------------------------------------------------------------------------------------
        start = time.time()
        train = [dict(r) for r in task_obj.load(split="train", n=num_train, seed=seed, source=source)]
        cur_examples = [
            dict(r) for r in task_obj.load(split="train", n=num_curriculum or num_train, seed=seed + 1, source=source)
        ]
        test = [dict(r) for r in task_obj.load(split="test", n=num_test, seed=seed, source=test_source or source)]
        test_labels: dict[str, int] | None = None
        if has_small_answer_space(task_obj, test):
            test, before, test_labels = balance_by_label(task_obj, test, seed=seed)
            if before != test_labels:
                logger.info("balanced the test split by answer: %s -> %s", before, test_labels)
        if not test:
            raise CurriculumError("the test split is empty after balancing")
        test_dir = os.path.join(output_dir, "data", "test")
        _save_examples(test, test_dir)
        majority = task_obj.majority_baseline(test) if test_labels is not None else None
        timings["data"] = time.time() - start

        rows: dict[str, dict[str, Any] | None] = {}
        # 2. teacher baseline ---------------------------------------------------------------------------------------
        initial = teacher_obj.initial_strategy(task_obj)
        if evaluate_teacher:
            start = time.time()
            rows["teacher_baseline"], _ = teacher_accuracy(task_obj, teacher_obj, test, initial, progress)
            timings["teacher_baseline"] = time.time() - start

        # 3. self-improvement ---------------------------------------------------------------------------------------
        start = time.time()
        stage1 = self_improve(
            task_obj,
            teacher_obj,
            train,
            os.path.join(output_dir, "self_improve"),
            SelfImproveConfig(batch_size=batch_size, distill_every=distill_every, progress=progress),
            initial_strategy=initial,
        )
        timings["self_improve"] = time.time() - start
        final_strategy = stage1.final_strategy
        if evaluate_teacher:
            start = time.time()
            rows["teacher_after"], _ = teacher_accuracy(task_obj, teacher_obj, test, final_strategy, progress)
            timings["teacher_after"] = time.time() - start

        # 4. curriculum ---------------------------------------------------------------------------------------------
        start = time.time()
        cur = build_curriculum(
            task_obj,
            teacher_obj,
            cur_examples,
            final_strategy,
            os.path.join(output_dir, "curriculum"),
            curriculum_cfg,
            failures=stage1.failures,
        )
        timings["curriculum"] = time.time() - start

        # 5. student ------------------------------------------------------------------------------------------------
        eval_task = StrategyPromptTask(task_obj, final_strategy) if curriculum_cfg.strategy_in_prompt else task_obj
        # The project's evaluator rebuilds the task by name: only possible for a task given by name, without a strategy.
        task_spec = (task, dict(task_kwargs or {})) if isinstance(task, str) and eval_task is task_obj else None
        sft_summary = None
        sft_dir = None
        if student is not None and evaluate_student:
            start = time.time()
            rows["student_baseline"] = student_accuracy(
                student,
                eval_task,
                test,
                test_dir,
                os.path.join(output_dir, "eval", "student_baseline"),
                eval_max_new_tokens,
                seed,
                task_spec,
                progress,
            )
            timings["student_baseline"] = time.time() - start
        if student is not None and sft_opts.enabled:
            start = time.time()
            sft_dir = os.path.join(output_dir, "student_sft")
            sft_summary = _train_student(student, sft_dir, cur, sft_opts, seed, progress)
            timings["student_sft"] = time.time() - start
            if evaluate_student:
                start = time.time()
                rows["student_after"] = student_accuracy(
                    sft_dir,
                    eval_task,
                    test,
                    test_dir,
                    os.path.join(output_dir, "eval", "student_after"),
                    eval_max_new_tokens,
                    seed,
                    task_spec,
                    progress,
                )
                timings["student_after"] = time.time() - start
        timings["total"] = time.time() - clock

        summary = {
            "task": task_obj.name,
            "task_repr": repr(task_obj),
            "teacher": teacher_obj.spec,
            "student": student,
            "output_dir": output_dir,
            "test": {"n": len(test), "labels": test_labels, "path": test_dir},
            "majority_baseline": majority,
            "accuracy": rows,
            "self_improve": {
                "train_accuracy": stage1.accuracy,
                "batches": stage1.batches,
                "strategy_versions": len(stage1.strategies),
                "final_strategy": final_strategy,
            },
            "curriculum": {"sft_path": cur.sft_path, "reflection_path": cur.reflection_path, **cur.stats},
            "curriculum_config": asdict(curriculum_cfg),
            "sft": sft_summary,
            "sft_options": asdict(sft_opts) if student is not None and sft_opts.enabled else None,
            "student_sft_dir": sft_dir,
            "teacher_usage": teacher_obj.usage_report(),
            "timings_s": {k: round(v, 2) for k, v in timings.items()},
        }
        atomic_write_json(os.path.join(output_dir, "summary.json"), summary)
        atomic_write_text(os.path.join(output_dir, "summary.md"), summary_markdown(summary))
        return summary


def _train_student(student: str, sft_dir: str, cur, opts: SFTOptions, seed: int, progress: bool) -> dict:
    """Stage 3 in-process: build the SFT configs from ``SFTOptions`` and call ``train_sft``."""
    import torch
    from trl import ModelConfig

    from rrr.curriculum.sft import CurriculumSFTConfig, train_sft

    gpu = torch.cuda.is_available()
    bf16 = gpu and torch.cuda.is_bf16_supported()
    fields = dict(
        output_dir=sft_dir,
        dataset_path=cur.sft_path,
        reflection_dataset_path=cur.reflection_path if opts.include_reflections else None,
        learning_rate=opts.learning_rate,
        num_train_epochs=opts.num_train_epochs,
        max_steps=opts.max_steps,
        per_device_train_batch_size=opts.per_device_train_batch_size,
        gradient_accumulation_steps=opts.gradient_accumulation_steps,
        max_length=opts.max_length,
        merge=opts.merge,
        use_cpu=not gpu,
        bf16=bf16,
        gradient_checkpointing=False,
        logging_steps=5,
        save_strategy="no",
        report_to="none",
        seed=seed,
        disable_tqdm=not progress,
        log_level="warning",
    )
    fields.update(opts.extra)
    args = CurriculumSFTConfig(**fields)
    model_args = ModelConfig(
        model_name_or_path=student,
        dtype="bfloat16" if bf16 else "float32",
        use_peft=opts.use_lora,
        lora_r=opts.lora_r,
        lora_alpha=opts.lora_alpha,
        lora_dropout=opts.lora_dropout,
        lora_target_modules=list(opts.lora_target_modules),
    )
    return train_sft(args, model_args)


# ----------------------------------------------------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------------------------------------------------
_ROWS = (
    ("student_baseline", "student baseline"),
    ("teacher_baseline", "teacher baseline (initial strategy)"),
    ("teacher_after", "teacher after self-improvement"),
    ("student_after", "student after SFT"),
)


def _loss(values: list[float]) -> str:
    return f"{values[0]:.3f}" if values else "n/a"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def summary_markdown(summary: dict[str, Any]) -> str:
    """The side-by-side table (and the numbers behind it) as markdown."""
    test = summary["test"]
    labels = test.get("labels")
    balance = f" (balanced by answer: {', '.join(f'{k} {v}' for k, v in sorted(labels.items()))})" if labels else ""
    lines = [
        f"# Knowledge transfer: {summary['task']} — teacher {summary['teacher']} → student {summary['student']}",
        "",
        f"Held-out test split: {test['n']} examples{balance}. First-try accuracy, greedy; 95% Wilson intervals. "
        "Students also get one self-reflection and a retry (last column).",
        "",
        "| stage | accuracy | 95% CI | correct / n | after 1 reflection + retry |",
        "|---|---|---|---|---|",
    ]
    if summary.get("majority_baseline") is not None:
        lines.append(f"| majority-class baseline | {_pct(summary['majority_baseline'])} | | | |")
    for key, label in _ROWS:
        row = summary["accuracy"].get(key)
        if row is None:
            continue
        if key == "teacher_after":
            label += f" (strategy v{summary['self_improve']['strategy_versions'] - 1})"
        low, high = row["ci95"]
        two = _pct(row["within_two_acc"]) if row.get("within_two_acc") is not None else ""
        lines.append(
            f"| {label} | {_pct(row['acc'])} | [{_pct(low)}, {_pct(high)}] | {row['correct']} / {row['n']} | {two} |"
        )
    usage = summary["teacher_usage"]
    cost = usage["estimated_cost_usd"]
    cur = summary["curriculum"]
    lines += [
        "",
        f"- Teacher: {usage['calls']} calls, {usage['cache_hits']} cache hits, {usage['prompt_tokens']} prompt + "
        f"{usage['completion_tokens']} completion tokens, estimated cost "
        f"{'unknown' if cost is None else f'${cost:.4f}'}.",
        f"- Self-improvement: training accuracy {_pct(summary['self_improve']['train_accuracy'])} over "
        f"{len(summary['self_improve']['batches'])} batches, {summary['self_improve']['strategy_versions']} strategy "
        "versions.",
        f"- Curriculum: {cur.get('sft_rows', 0)} solution rows"
        + (f" (labels {cur['labels']})" if cur.get("labels") else "")
        + f", {cur.get('reflection_rows', 0)} reflection rows.",
    ]
    if summary.get("sft"):
        sft = summary["sft"]
        lines.append(
            f"- Student SFT: {sft['kind']}, {sft['global_step']} steps on {sft['train_rows']} rows in "
            f"{sft['train_seconds']} s, loss {_loss(sft['losses'][:1])} -> {_loss(sft['losses'][-1:])} (first -> last "
            f"logged); saved to {sft['output_dir']}."
        )
    lines.append("- Timings (s): " + ", ".join(f"{k} {v}" for k, v in summary["timings_s"].items()) + ".")
    lines += ["", "## Final strategy", "", summary["self_improve"]["final_strategy"], ""]
    return "\n".join(lines)


__all__ = [
    "SFTOptions",
    "StrategyPromptTask",
    "answer_label",
    "run_knowledge_transfer",
    "student_accuracy",
    "summary_markdown",
    "teacher_accuracy",
    "wilson_interval",
]
