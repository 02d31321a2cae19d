"""Build and run an RRR training run from an ``RRRConfig`` and TRL's ``ModelConfig``.

Reads top to bottom like open-r1's ``grpo.py``: seed -> logging -> checkpoint -> task and data -> tokenizer and
model -> trainer -> train (resuming when a checkpoint exists) -> save.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from rrr.training.config import RRRConfig

logger = logging.getLogger("rrr.train")


def parse_train_args(argv: list[str] | None = None):
    """Parse ``--config recipe.yaml`` plus CLI overrides into ``(RRRConfig, ModelConfig)``."""
    import argparse

    from trl import ModelConfig, TrlParser

    from rrr.training.parallelism import SUPPORT_MATRIX

    parser = TrlParser(
        (RRRConfig, ModelConfig), epilog=SUPPORT_MATRIX, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    args, model_args = parser.parse_args_and_config(args=argv)
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


def build_trainer(args: RRRConfig, model_args, model=None, tokenizer=None):
    """Task, data, tokenizer, model and ``RRRGRPOTrainer`` for a run (``model``/``tokenizer`` may be passed in)."""
    from transformers import AutoModelForCausalLM
    from trl import get_peft_config

    from rrr.models.loading import load_tokenizer
    from rrr.tasks import get_task
    from rrr.training.rollout import RRRRollout, episode_config_from_args, rrr_reward
    from rrr.training.trl_adapter import RRRGRPOTrainer

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    task = get_task(args.task, **(args.task_kwargs or {}))
    train_dataset = load_training_data(args, task)
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
        rollout_func=RRRRollout(task, args),
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


def train(args: RRRConfig, model_args, model=None, tokenizer=None, callbacks=None) -> dict:
    """Run RRR GRPO; returns a summary dict (also written to ``<output_dir>/run_summary.json``).

    Resumes from ``resume_from_checkpoint`` or, when unset, from the last checkpoint in ``output_dir``.
    ``callbacks`` are extra ``transformers.TrainerCallback``s (e.g. a driver's own progress lines).
    """
    from transformers import set_seed
    from transformers.trainer_utils import get_last_checkpoint

    from rrr.utils.io import atomic_write_json

    _setup_logging(args)
    set_seed(args.seed)

    checkpoint = args.resume_from_checkpoint
    if checkpoint is None and os.path.isdir(args.output_dir):
        checkpoint = get_last_checkpoint(args.output_dir)
        if checkpoint:
            logger.info("resuming from the last checkpoint %s", checkpoint)

    trainer, task = build_trainer(args, model_args, model=model, tokenizer=tokenizer)
    for callback in callbacks or ():
        trainer.add_callback(callback)
    if checkpoint and trainer.accelerator.is_local_main_process:
        _drop_episodes_after_checkpoint(args.output_dir, checkpoint)
    trainer.accelerator.wait_for_everyone()
    start = time.time()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(args.output_dir)
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(args.output_dir)
    summary = {
        "task": task.name,
        "model": model_args.model_name_or_path,
        "output_dir": args.output_dir,
        "global_step": trainer.state.global_step,
        "train_seconds": round(time.time() - start, 2),
        "resumed_from": checkpoint,
        "generation_backend": describe_backend(args),
        "metrics": result.metrics,
        "generated_tokens": getattr(trainer, "rrr_totals", {}).get("rrr/generated_tokens"),
        "last_log": next((h for h in reversed(trainer.state.log_history) if "rrr/retry_success" in h), None),
    }
    if trainer.accelerator.is_main_process:
        atomic_write_json(os.path.join(args.output_dir, "run_summary.json"), summary)
    return summary


def _drop_episodes_after_checkpoint(output_dir: str, checkpoint: str) -> None:
    """Episodes logged after the checkpoint belong to steps that will be re-run: drop them, so none appear twice."""
    import glob
    import json

    from rrr.utils.io import atomic_write_text, read_jsonl

    state = os.path.join(checkpoint, "trainer_state.json")
    if not os.path.exists(state):
        return
    with open(state) as f:
        resumed_step = json.load(f)["global_step"]
    for path in glob.glob(os.path.join(output_dir, "episodes*.jsonl")):
        rows = read_jsonl(path)
        kept = [r for r in rows if r.get("step", 0) < resumed_step]
        if len(kept) != len(rows):
            atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
            logger.info("dropped %d episodes logged after %s from %s", len(rows) - len(kept), checkpoint, path)
