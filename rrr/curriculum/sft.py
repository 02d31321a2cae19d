"""Stage 3 — student SFT on the curriculum with TRL's ``SFTTrainer`` (LoRA or full fine-tune).

The curriculum datasets are conversational prompt/completion data, so ``SFTTrainer`` (``completion_only_loss=None``
= on for such data) puts the loss on the completion tokens only — the worked solution or the reflection plus the
end-of-turn token — never on the task prompt (``tests/test_sft.py`` checks the labels).

The output directory is a valid starting point for the rest of the project:

* **LoRA** (``use_peft: true``): the adapter (``adapter_config.json`` whose ``base_model_name_or_path`` is an
  *absolute* path when the base is a local directory, so it resolves from any working directory) plus the tokenizer.
  ``rrr.models.load_model_and_tokenizer(output_dir)`` and ``make eval`` load it as base + adapter. Pass ``--merge``
  to save the merged full model instead — the form to give ``train_grpo.py`` as ``model_name_or_path`` (a plain model
  directory; GRPO then fine-tunes all weights, or a fresh LoRA with ``--use_peft``);
* **full fine-tune** (``use_peft: false``): the model and the tokenizer.

The tiny test tokenizer's marker file is copied along, so the output loads with ``rrr.models.load_tokenizer``.
``sft_summary.json`` is written last: its presence means the saved model is complete.

    accelerate launch scripts/train_sft.py --config recipes/Qwen2.5-1.5B-Instruct/sft/config_scheduling.yaml
    python scripts/train_sft.py --config recipes/smoke/sft/config_scheduling.yaml
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass

from trl import SFTConfig

from rrr.models.tiny import MARKER
from rrr.tasks.base import safe_verify
from rrr.utils.config import bf16_supported, documented, parse_task_kwargs, resolve_bf16

logger = logging.getLogger("rrr.sft")

SUMMARY_FILE = "sft_summary.json"
_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


@documented
@dataclass
class CurriculumSFTConfig(SFTConfig):
    r"""
    Configuration of curriculum SFT: every ``SFTConfig`` field plus the ones below.

    > Parameters that control the curriculum data

    dataset_path (`str`):
        The solutions dataset from stage 2 (`<curriculum output>/curriculum/sft`): a `save_to_disk` directory or a
        `.jsonl` file with conversational `prompt` and `completion` columns.
    reflection_dataset_path (`str`, *optional*):
        The reflection-SFT dataset from stage 2 (`<curriculum output>/curriculum/reflection`), mixed in when given.
    max_train_samples (`int`, *optional*):
        Keep at most this many rows after shuffling the mixed data (all when unset).
    task (`str`, *optional*):
        Task name (or `package.module:ClassName`). When set, every solution row is re-verified from its
        `example_json` column before training, and failing rows are dropped with a warning.
    task_kwargs (`dict` or `str`, *optional*):
        Options of the task's constructor, e.g. `{"strict": true}`. JSON on the command line.

    > Parameters that control the output

    merge (`bool`, defaults to `False`):
        With LoRA, save the merged full model instead of the adapter (the form `train_grpo.py` takes as
        `model_name_or_path`).
    """

    dataset_path: str | None = None
    reflection_dataset_path: str | None = None
    max_train_samples: int | None = None
    task: str | None = None
    task_kwargs: dict | str | None = None
    merge: bool = False

    def __post_init__(self):
        resolve_bf16(self)
        self.task_kwargs = parse_task_kwargs(self.task_kwargs)
        if not self.dataset_path:
            raise ValueError(
                "dataset_path is required: the curriculum built by scripts/run_curriculum.py, e.g. "
                "runs/curriculum-scheduling/curriculum/sft"
            )
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise ValueError(f"max_train_samples must be >= 1, got {self.max_train_samples}")
        super().__post_init__()


def parse_sft_args(argv: list[str] | None = None):
    """``(CurriculumSFTConfig, ModelConfig)`` from ``--config recipe.yaml``, ``--set key=value`` and TRL's flags."""
    from trl import ModelConfig

    from rrr.utils.config import parse_trl_args

    return parse_trl_args((CurriculumSFTConfig, ModelConfig), argv)


# ----------------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------------
def load_sft_dataset(args: CurriculumSFTConfig):
    """The training rows (solutions + reflections), verified when ``args.task`` is set; only prompt/completion."""
    import datasets

    from rrr.curriculum.dataset import CurriculumError, load_curriculum

    solutions = load_curriculum(args.dataset_path)
    if args.task:
        solutions = _verified(solutions, args)
    parts = [solutions.select_columns(["prompt", "completion"])]
    if args.reflection_dataset_path:
        reflections = load_curriculum(args.reflection_dataset_path)
        parts.append(reflections.select_columns(["prompt", "completion"]))
    try:
        ds = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    except ValueError as exc:  # mismatched features, e.g. a hand-made jsonl with other message fields
        raise CurriculumError(f"cannot mix {args.dataset_path!r} and {args.reflection_dataset_path!r}: {exc}") from None
    ds = ds.shuffle(seed=args.seed)
    if args.max_train_samples is not None and args.max_train_samples < len(ds):
        ds = ds.select(range(args.max_train_samples))
    return ds


def _verified(ds, args: CurriculumSFTConfig):
    """Drop solution rows whose completion fails the task's verifier (needs the ``example_json`` column)."""
    from rrr.curriculum.dataset import CurriculumError
    from rrr.tasks import get_task

    if "example_json" not in ds.column_names:
        logger.warning("%s has no example_json column: solutions are not re-verified", args.dataset_path)
        return ds
    task = get_task(args.task, **(args.task_kwargs or {}))
    keep = [
        i
        for i, (example, completion) in enumerate(zip(ds["example_json"], ds["completion"]))
        if safe_verify(task, json.loads(example), completion[-1]["content"]).passed
    ]
    if not keep:
        raise CurriculumError(
            f"no row of {args.dataset_path!r} passes the {task.name!r} verifier (wrong task or task_kwargs?)"
        )
    if len(keep) < len(ds):
        logger.warning("dropping %d of %d rows that fail the %s verifier", len(ds) - len(keep), len(ds), task.name)
        ds = ds.select(keep)
    return ds


# ----------------------------------------------------------------------------------------------------------------
# Trainer
# ----------------------------------------------------------------------------------------------------------------
def _resolve(name_or_path: str) -> str:
    """An absolute path for a local directory (so an adapter's base path resolves anywhere), else the hub id."""
    path = os.path.expanduser(name_or_path)
    return os.path.abspath(path) if os.path.isdir(path) else name_or_path


def build_sft_trainer(args: CurriculumSFTConfig, model_args, model=None, tokenizer=None):
    """``SFTTrainer`` over the curriculum (``model``/``tokenizer`` may be passed in, e.g. by tests)."""
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer, get_peft_config

    from rrr.models.loading import load_tokenizer

    train_dataset = load_sft_dataset(args)
    if model is None or tokenizer is None:
        if not model_args.model_name_or_path:
            raise ValueError("model_name_or_path is required (a hub id or a local dir; `make tiny-model` builds one)")
        name = _resolve(model_args.model_name_or_path)
        tokenizer = tokenizer or load_tokenizer(name, revision=model_args.model_revision)
        if model is None:
            import torch

            dtype = model_args.dtype if model_args.dtype in (None, "auto") else getattr(torch, model_args.dtype)
            model = AutoModelForCausalLM.from_pretrained(
                name,
                revision=model_args.model_revision,
                dtype=dtype,
                attn_implementation=model_args.attn_implementation,
            )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    return trainer


def _setup_logging(args) -> None:
    level = args.get_process_log_level()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout, level=level)
    logger.setLevel(level)


OUTPUT_KIND = "train_sft"


def train_sft(args: CurriculumSFTConfig, model_args, model=None, tokenizer=None, callbacks=None) -> dict:
    """Fine-tune the student on the curriculum and save it (see the module docstring); returns a summary dict.

    Resumes like ``rrr.training.train``: from the newest *complete* checkpoint (incomplete ones moved aside), and a
    run that already reached its step target trains nothing (``already_finished: true`` in the returned summary;
    a larger ``max_steps`` asks for more). One process at a time writes an output directory.
    ``callbacks`` are extra ``transformers.TrainerCallback``s (e.g. a driver's own progress lines)."""
    from transformers import set_seed

    from rrr.training.checkpoints import check_explicit_resume
    from rrr.training.launch import die_with_launcher, single_writer

    die_with_launcher()  # a launcher killed with -9 takes this process with it
    _setup_logging(args)
    set_seed(args.seed)
    check_explicit_resume(args)
    with single_writer(args, OUTPUT_KIND, (SUMMARY_FILE,)):
        return _train_sft(args, model_args, model, tokenizer, callbacks)


def _train_sft(args: CurriculumSFTConfig, model_args, model, tokenizer, callbacks) -> dict:
    from rrr.training.checkpoints import (
        already_done_message,
        finished_run,
        plan_resume,
        restore_final_state,
        set_aside,
        target_steps,
    )
    from rrr.utils.io import atomic_write_json

    out = args.output_dir
    summary_path = os.path.join(out, SUMMARY_FILE)
    plan = plan_resume(out, args.resume_from_checkpoint, with_optimizer=not args.save_only_model)
    if args.max_steps > 0:
        done = finished_run(summary_path, args.max_steps, plan, "max_steps")
        if done is not None:
            return done
    trainer = build_sft_trainer(args, model_args, model=model, tokenizer=tokenizer)
    # epoch-based runs learn their step target from the dataloader, so only once the trainer exists
    target = target_steps(trainer) if plan.checkpoint or os.path.exists(summary_path) else None
    if args.max_steps <= 0 and target is not None:
        done = finished_run(summary_path, target, plan, "num_train_epochs")
        if done is not None:
            return done
    for callback in callbacks or ():
        trainer.add_callback(callback)
    if trainer.accelerator.is_main_process:
        set_aside(out, plan.incomplete)
        if os.path.exists(summary_path):
            os.remove(summary_path)  # the model files are about to change: no longer "complete"
    trainer.accelerator.wait_for_everyone()
    use_peft = bool(getattr(model_args, "use_peft", False)) or _is_peft(trainer.model)
    start = time.time()
    reached = bool(plan.checkpoint) and plan.step >= target
    if reached:  # killed after its last checkpoint, before the final save
        logger.warning(already_done_message(plan.step, target, "max_steps" if args.max_steps > 0 else "epochs"))
        logger.warning("saving the final model from %s (the run stopped before saving it)", plan.checkpoint)
        restore_final_state(trainer, plan.checkpoint)
        metrics = {}
    else:
        metrics = trainer.train(resume_from_checkpoint=plan.checkpoint).metrics
    seconds = round(time.time() - start, 2)

    merged = False
    if trainer.accelerator.is_main_process:
        if use_peft and args.merge:
            model = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
            for name in _ADAPTER_FILES:  # a stale adapter would take precedence over the merged model when loading
                if os.path.exists(os.path.join(out, name)):
                    os.remove(os.path.join(out, name))
            model.save_pretrained(out)
            merged = True
        else:
            if not use_peft:
                for name in _ADAPTER_FILES:
                    if os.path.exists(os.path.join(out, name)):
                        os.remove(os.path.join(out, name))
            trainer.save_model(out)
        trainer.processing_class.save_pretrained(out)
        base = model_args.model_name_or_path and _resolve(model_args.model_name_or_path)
        if base and os.path.exists(os.path.join(base, MARKER)):
            shutil.copyfile(os.path.join(base, MARKER), os.path.join(out, MARKER))
    summary = {
        "output_dir": out,
        "base_model": model_args.model_name_or_path and _resolve(model_args.model_name_or_path),
        "kind": "merged" if merged else ("adapter" if use_peft else "full"),
        "train_rows": len(trainer.train_dataset),
        "dataset_path": args.dataset_path,
        "reflection_dataset_path": args.reflection_dataset_path,
        "global_step": trainer.state.global_step,
        "train_seconds": seconds,
        "train_loss": metrics.get("train_loss"),
        "resumed_from": plan.checkpoint,
        "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
    }
    if trainer.accelerator.is_main_process:
        atomic_write_json(summary_path, summary)
    return {**summary, "already_finished": True} if reached else summary


def _is_peft(model) -> bool:
    try:
        from peft import PeftModel

        return isinstance(model, PeftModel)
    except ImportError:
        return False


# ----------------------------------------------------------------------------------------------------------------
# Recipe check (for scripts/check_recipes.py)
# ----------------------------------------------------------------------------------------------------------------
def check_sft_recipe(path: str) -> None:
    """Raise ``ValueError`` naming the problem unless ``path`` parses into the configs ``train_sft.py`` builds.

    Unknown keys are named; hardware-only settings this machine cannot honour (``bf16`` without a bf16 GPU) are
    overridden, as ``scripts/check_recipes.py`` does for RRR recipes; the task and its options must construct.
    ``dataset_path`` need not exist yet (stage 2 builds it).
    """
    import contextlib
    import dataclasses
    import io

    import yaml
    from trl import ModelConfig

    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping")
    allowed = {f.name for f in dataclasses.fields(CurriculumSFTConfig)} | {
        f.name for f in dataclasses.fields(ModelConfig)
    }
    unknown = sorted(set(data) - allowed - {"env"})
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; keys must be fields of CurriculumSFTConfig or ModelConfig")
    overrides = ["--bf16", "false"] if data.get("bf16") and not bf16_supported() else []
    saved = dict(os.environ)
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args, _ = parse_sft_args(["--config", str(path), *overrides])
    except SystemExit:
        lines = stderr.getvalue().strip().splitlines()
        raise ValueError(f"{path}: {lines[-1] if lines else 'argument parsing failed'}") from None
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if args.task:
        from rrr.tasks import get_task

        get_task(args.task, **(args.task_kwargs or {}))
