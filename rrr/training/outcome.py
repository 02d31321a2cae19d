"""Outcome GRPO — the usual baseline RRR is compared against.

Plain GRPO: G sampled *first attempts* per task, rewarded 1/0 by the same verifier, all attempt tokens trained.
It reuses ``RRRConfig`` for the task and data fields (the RRR-only knobs are ignored; ``max_completion_length`` is
the attempt budget), and can stop at a **generated-token budget** so that an ablation compares RRR and outcome GRPO
at equal generation compute rather than equal steps.
"""

from __future__ import annotations

import functools
import logging
import os
import time

from transformers import TrainerCallback

from rrr.tasks import Task
from rrr.tasks.base import safe_verify
from rrr.training.config import RRRConfig

logger = logging.getLogger("rrr.outcome")


def make_outcome_reward(task: Task):
    """Reward function: 1.0 when the completion passes the task's verifier (dataset columns arrive as kwargs)."""

    def outcome_reward(prompts, completions, **columns) -> list[float]:
        rows = len(completions)
        examples = [
            {k: v[i] for k, v in columns.items() if isinstance(v, list) and len(v) == rows} for i in range(rows)
        ]
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return [float(safe_verify(task, ex, t).passed) for ex, t in zip(examples, texts)]

    return functools.update_wrapper(functools.partial(outcome_reward), outcome_reward)


class TokenBudget(TrainerCallback):
    """Stop once the policy has generated ``budget`` tokens **summed over every process**.

    RRR's ``rrr/generated_tokens`` is a global count, so the baseline's must be too: counting only the local rank's
    completions would give the baseline ~P x the budget with P processes, and ranks whose local counts differ would
    stop at different steps (and hang the ones left in the next collective). ``add`` is called by the reward function,
    which every rank runs once per generation batch, so the all-reduce inside it is in step.
    """

    def __init__(self, budget: float | None):
        self.budget = budget
        self.generated = 0.0
        self.accelerator = None  # bound once the trainer exists

    def add(self, n: float) -> None:
        accelerator = self.accelerator
        if accelerator is not None and accelerator.num_processes > 1:
            import torch

            value = torch.tensor([float(n)], dtype=torch.float64, device=accelerator.device)
            n = float(accelerator.reduce(value, reduction="sum").item())
        self.generated += n

    def on_step_end(self, args, state, control, **kwargs):
        if self.budget is not None and self.generated >= self.budget:
            control.should_training_stop = True
            control.should_save = True


def train_outcome(args: RRRConfig, model_args, model=None, tokenizer=None, token_budget: float | None = None) -> dict:
    """Train with outcome GRPO; returns a summary like ``rrr.training.train`` (with ``generated_tokens``)."""
    from transformers import AutoModelForCausalLM, set_seed
    from trl import GRPOTrainer, get_peft_config

    from rrr.models.loading import load_tokenizer
    from rrr.tasks import get_task
    from rrr.training.run import load_training_data
    from rrr.utils.io import atomic_write_json

    set_seed(args.seed)
    task = get_task(args.task, **(args.task_kwargs or {}))
    dataset = load_training_data(args, task)
    tokenizer = tokenizer or load_tokenizer(model_args.model_name_or_path)
    model = model or AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path)
    budget = TokenBudget(token_budget)
    reward = make_outcome_reward(task)

    def counted_reward(prompts, completions, completion_ids=None, **kw):
        if completion_ids is not None:
            budget.add(sum(len(c) for c in completion_ids))
        return reward(prompts, completions, **kw)

    counted_reward.__name__ = "outcome_reward"
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[counted_reward],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=[budget],
    )
    budget.accelerator = trainer.accelerator
    start = time.time()
    result = trainer.train()
    trainer.save_model(args.output_dir)
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(args.output_dir)
    summary = {
        "task": task.name,
        "model": model_args.model_name_or_path,
        "output_dir": args.output_dir,
        "global_step": trainer.state.global_step,
        "train_seconds": round(time.time() - start, 2),
        "generated_tokens": budget.generated,
        "token_budget": token_budget,
        "metrics": result.metrics,
    }
    if trainer.accelerator.is_main_process:
        atomic_write_json(os.path.join(args.output_dir, "run_summary.json"), summary)
    return summary
