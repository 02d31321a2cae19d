"""Build and run an RRR training run from an ``RRRConfig`` and TRL's ``ModelConfig``.

Reads top to bottom like open-r1's ``grpo.py``: seed -> logging -> lock the output directory -> checkpoint -> task
and data -> tokenizer and model -> trainer -> train (resuming when a checkpoint exists) -> save.

Under faults (``tests/test_training_faults.py``): a checkpoint whose save was cut short is passed over and moved
aside (``rrr.training.checkpoints``); a run that already reached its step target trains nothing; the episode logs
are cut back to the resumed step, torn tail included; the process dies with its launcher and is its output
directory's only writer (``rrr.training.launch``).
"""

from __future__ import annotations

import logging
import os
import sys
import time

from rrr.training.config import RRRConfig

logger = logging.getLogger("rrr.train")


def parse_train_args(argv: list[str] | None = None):
    """``(RRRConfig, ModelConfig)`` from ``--config recipe.yaml``, ``--set key=value`` and TRL's ``--field value``
    flags (``rrr.utils.config.parse_trl_args``: TRL's parser underneath)."""
    import argparse

    from trl import ModelConfig

    from rrr.training.parallelism import SUPPORT_MATRIX
    from rrr.utils.config import parse_trl_args

    args, model_args = parse_trl_args(
        (RRRConfig, ModelConfig), argv, epilog=SUPPORT_MATRIX, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    return args, model_args


def _setup_logging(args) -> None:
    level = args.get_process_log_level()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout, level=level)
    logger.setLevel(level)
    import datasets
    import transformers

    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)


def load_training_data(args: RRRConfig, task):
    """The training dataset with a ``prompt`` column of first-attempt messages, columns checked up front."""
    from rrr.tasks.base import TaskDataError

    ds = task.load(split=args.dataset_split, n=args.dataset_size, seed=args.dataset_seed, source=args.dataset_source)
    if args.first_attempt_source == "column" and args.first_attempt_column not in ds.column_names:
        raise TaskDataError(
            f"first_attempt_source='column' needs a {args.first_attempt_column!r} column, but the dataset has "
            f"{ds.column_names}. Mine failures first (scripts/mine_failures.py) or use first_attempt_source: online"
        )
    if "prompt" in ds.column_names:
        ds = ds.remove_columns("prompt")
    return ds.map(lambda ex: {"prompt": task.attempt_messages(dict(ex))}, desc="rendering prompts")


def describe_backend(args) -> str:
    if args.use_vllm:
        return f"vLLM {args.vllm_mode} mode"
    return "HF transformers generate"


def build_trainer(args: RRRConfig, model_args, model=None, tokenizer=None, rollout_factory=None):
    """Task, data, tokenizer, model and ``RRRGRPOTrainer`` for a run (``model``/``tokenizer`` may be passed in).

    ``rollout_factory(task, args)`` builds the trainer's ``rollout_func``; the default is
    :class:`rrr.training.rollout.RRRRollout`. A variant of the rollout (the demo's shuffled-reward control,
    :class:`~rrr.training.rollout.ShuffledRewardRollout`) is passed here, never patched into a module. It is a
    factory rather than an instance because the task it needs is built here, from ``args``.
    """
    from transformers import AutoModelForCausalLM
    from trl import get_peft_config

    from rrr.models.loading import load_tokenizer
    from rrr.tasks import get_task
    from rrr.training.preflight import preflight_training
    from rrr.training.rollout import RRRRollout, episode_config_from_args, rrr_reward
    from rrr.training.trl_adapter import RRRGRPOTrainer

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    task = get_task(args.task, **(args.task_kwargs or {}))
    train_dataset = load_training_data(args, task)
    train_dataset, tokenizer = preflight_training(args, model_args, task, train_dataset, model, tokenizer)
    if tokenizer is None or model is None:
        if not model_args.model_name_or_path:
            raise ValueError("model_name_or_path is required (a hub id or a local dir; `make tiny-model` builds one)")
        tokenizer = tokenizer or load_tokenizer(model_args.model_name_or_path, revision=model_args.model_revision)
    if model is None and os.path.exists(os.path.join(model_args.model_name_or_path, "adapter_config.json")):
        # an SFT adapter directory: train the merged model (a frozen base under an adapter has nothing to train)
        from rrr.models.loading import load_model_and_tokenizer

        logger.info("%s holds a LoRA adapter: merging it into its base model", model_args.model_name_or_path)
        if args.beta > 0 and not model_args.use_peft:
            logger.warning(
                "beta > 0: TRL rebuilds the KL reference from the *base* model's path, i.e. without the adapter; "
                "save a merged model (train_sft.py --merge true) to use the SFT model as the reference"
            )
        model, _ = load_model_and_tokenizer(model_args.model_name_or_path, dtype=model_args.dtype, merge_adapter=True)
        model.requires_grad_(True)  # PEFT froze the base weights; the merged model is trained in full
        model.train()
    if model is None:
        import torch

        dtype = model_args.dtype if model_args.dtype in (None, "auto") else getattr(torch, model_args.dtype)
        model = AutoModelForCausalLM.from_pretrained(
            model_args.model_name_or_path,
            revision=model_args.model_revision,
            dtype=dtype,
            attn_implementation=model_args.attn_implementation,
        )
    trainer = RRRGRPOTrainer(
        model=model,
        reward_funcs=[rrr_reward],
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        rollout_func=(rollout_factory or RRRRollout)(task, args),
    )
    logger.info(
        "RRR on task %s | generation: %s | %d examples | %d tasks x %d reflections per generation batch | budgets: "
        "attempt %d, reflection %d, retry %d tokens | first attempts: %s",
        task.name,
        describe_backend(args),
        len(train_dataset),
        args.tasks_per_generation,
        args.num_generations,
        args.attempt_max_tokens,
        args.max_completion_length,
        args.retry_max_tokens,
        args.first_attempt_source,
    )
    log_sampling(episode_config_from_args(args, args.num_generations))
    return trainer, task


def log_sampling(config) -> None:
    """The sampling each phase really uses, once at start-up (nothing is inherited from a generation_config)."""
    for phase in ("attempt", "reflection", "retry"):
        logger.info("sampling %-10s %s", phase, getattr(config, phase).effective())


SUMMARY_FILE = "run_summary.json"
#: the ownership kind of a training output directory (``rrr.utils.outputs``), and files only it writes, for outputs
#: written before markers existed
OUTPUT_KIND = "train_grpo"
_LEGACY_FILES = (SUMMARY_FILE, "episodes.jsonl")


def train(args: RRRConfig, model_args, model=None, tokenizer=None, callbacks=None, rollout_factory=None) -> dict:
    """Run RRR GRPO; returns a summary dict (also written to ``<output_dir>/run_summary.json``).

    Resumes from ``resume_from_checkpoint`` or, when unset, from the newest *complete* checkpoint in ``output_dir``
    (incomplete ones are moved aside, see ``rrr.training.checkpoints``). A run that already reached its step target
    trains nothing: the summary is the stored one, with ``already_finished: true`` (a larger ``max_steps`` is how to
    ask for more). ``callbacks`` are extra ``transformers.TrainerCallback``s (e.g. a driver's own progress lines);
    ``rollout_factory`` replaces the RRR rollout (see :func:`build_trainer`).
    One process at a time writes an output directory: a second run on it fails at once naming the first.
    """
    from transformers import set_seed

    from rrr.training.checkpoints import check_explicit_resume
    from rrr.training.launch import die_with_launcher, single_writer

    die_with_launcher()  # a launcher killed with -9 takes this process with it
    _setup_logging(args)
    set_seed(args.seed)
    check_explicit_resume(args)
    with single_writer(args, OUTPUT_KIND, _LEGACY_FILES):
        return _train(args, model_args, model, tokenizer, callbacks, rollout_factory)


def _train(args: RRRConfig, model_args, model, tokenizer, callbacks, rollout_factory) -> dict:
    from rrr.training.checkpoints import finished_run, plan_resume, set_aside, target_steps
    from rrr.utils.io import atomic_write_json

    plan = plan_resume(args.output_dir, args.resume_from_checkpoint, with_optimizer=not args.save_only_model)
    summary_path = os.path.join(args.output_dir, SUMMARY_FILE)
    if args.max_steps > 0:  # known before any model is loaded
        done = finished_run(summary_path, args.max_steps, plan, "max_steps")
        if done is not None:
            return done
    trainer, task = build_trainer(args, model_args, model=model, tokenizer=tokenizer, rollout_factory=rollout_factory)
    # epoch-based runs learn their step target from the dataloader, so only once the trainer exists
    target = target_steps(trainer) if plan.checkpoint or os.path.exists(summary_path) else None
    if args.max_steps <= 0 and target is not None:
        done = finished_run(summary_path, target, plan, "num_train_epochs")
        if done is not None:
            return done
    for callback in callbacks or ():
        trainer.add_callback(callback)
    if trainer.accelerator.is_main_process:
        set_aside(args.output_dir, plan.incomplete)
    if plan.checkpoint and plan.step >= target:
        return _finish_from_checkpoint(trainer, task, args, model_args, plan, target)
    if trainer.accelerator.is_main_process:
        _drop_episodes_after_checkpoint(args.output_dir, plan.step)
        if os.path.exists(summary_path):
            os.remove(summary_path)  # it marks a finished run; the model files are about to change
    trainer.accelerator.wait_for_everyone()
    start = time.time()
    result = trainer.train(resume_from_checkpoint=plan.checkpoint)
    trainer.save_model(args.output_dir)
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(args.output_dir)
    summary = _summary(trainer, task, args, model_args, plan.checkpoint, round(time.time() - start, 2), result.metrics)
    if trainer.accelerator.is_main_process:
        atomic_write_json(summary_path, summary)
    return summary


def _summary(trainer, task, args, model_args, checkpoint, seconds, metrics) -> dict:
    return {
        "task": task.name,
        "model": model_args.model_name_or_path,
        "output_dir": args.output_dir,
        "global_step": trainer.state.global_step,
        "train_seconds": seconds,
        "resumed_from": checkpoint,
        "generation_backend": describe_backend(args),
        "metrics": metrics,
        "generated_tokens": getattr(trainer, "rrr_totals", {}).get("rrr/generated_tokens"),
        "last_log": next((h for h in reversed(trainer.state.log_history) if "rrr/retry_success" in h), None),
    }


def _finish_from_checkpoint(trainer, task, args, model_args, plan, target) -> dict:
    """The checkpoint already reached the target but the final model was never saved (killed after the last
    checkpoint): save that checkpoint's weights as the final model, train nothing."""
    from rrr.training.checkpoints import already_done_message, restore_final_state
    from rrr.utils.io import atomic_write_json

    logger.warning(already_done_message(plan.step, target, "max_steps" if args.max_steps > 0 else "num_train_epochs"))
    logger.warning("saving the final model from %s (the run stopped before saving it)", plan.checkpoint)
    restore_final_state(trainer, plan.checkpoint)
    trainer.save_model(args.output_dir)
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(args.output_dir)
    summary = _summary(trainer, task, args, model_args, plan.checkpoint, 0.0, {})
    if trainer.accelerator.is_main_process:
        atomic_write_json(os.path.join(args.output_dir, SUMMARY_FILE), summary)
    return {**summary, "already_finished": True}


def _drop_episodes_after_checkpoint(output_dir: str, resumed_step: int) -> None:
    """Make the episode logs hold exactly the steps before ``resumed_step`` (0: a start from scratch), whole lines.

    Episodes logged at or after the resumed step belong to steps that will be re-run: dropping them keeps any step
    from appearing twice, and keeping every earlier one loses none. A torn last line (a run killed or out of disk
    mid-append) is dropped first (``repair_jsonl`` warns, naming the file), so nothing is glued onto it. The rewrite
    is atomic: a crash here loses nothing.
    """
    import glob
    import json

    from rrr.utils.io import atomic_write_text, read_jsonl, repair_jsonl

    for path in sorted(glob.glob(os.path.join(output_dir, "episodes*.jsonl"))):
        repair_jsonl(path)
        rows = read_jsonl(path)
        kept = [r for r in rows if r.get("step", 0) < resumed_step]
        if len(kept) == len(rows):
            continue
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
        logger.log(
            logging.INFO if resumed_step else logging.WARNING,
            "dropped %d episodes logged at or after step %d from %s (those steps are trained again)",
            len(rows) - len(kept),
            resumed_step,
            path,
        )
