"""Evaluation and failure mining on the shared episode code.

``evaluate_model("Qwen/Qwen2.5-1.5B-Instruct", "countdown", n=500)`` gives first-try and after-reflection accuracy
with 95% intervals; ``mine_failures`` builds the paper's offline failure set.
"""

from __future__ import annotations

from rrr.evaluation.backends import make_generator
from rrr.evaluation.evaluate import (
    EvalConfig,
    EvaluationError,
    evaluate,
    format_results_table,
    load_results,
    summarize,
)
from rrr.evaluation.mining import MiningConfig, mine_failures

__all__ = [
    "EvalConfig",
    "EvaluationError",
    "MiningConfig",
    "evaluate",
    "evaluate_model",
    "format_results_table",
    "load_results",
    "make_generator",
    "mine_failures",
    "summarize",
]


def evaluate_model(
    model: str,
    task,
    *,
    adapter: str | None = None,
    backend: str = "auto",
    base_url: str | None = None,
    output_dir: str | None = None,
    progress: bool = True,
    **config,
) -> dict:
    """Evaluate a hub id, local directory, adapter directory, or served model on ``task``.

    ``config`` holds ``EvalConfig`` fields (``n``, ``split``, ``seed``, ``source``, budgets, temperatures ...).
    """
    task_name = task if isinstance(task, str) else task.name
    generator, used = make_generator(
        model, backend, adapter=adapter, base_url=base_url, batch_size=config.get("batch_size", 64)
    )
    cfg = EvalConfig(task=task_name, **config)
    name = model if not adapter else f"{model}+{adapter}"
    from rrr.models.loading import weights_fingerprint

    meta = {"backend": used, "weights": weights_fingerprint(model, adapter)}
    return evaluate(generator, cfg, output_dir=output_dir, model_name=name, progress=progress, meta=meta)
