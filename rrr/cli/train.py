"""``rrr train`` / ``scripts/train_grpo.py``: RRR GRPO from a recipe (``RRRConfig`` + ``ModelConfig``).

    rrr train --config recipes/smoke/rrr/config_countdown.yaml --max_steps 2
    rrr train --config recipes/smoke/rrr/config_countdown.yaml --set max_steps=2 --set task_kwargs.strict=true

Every field is a TRL flag (``--learning_rate 1e-6``) and a ``--set`` key: both override the recipe
(``rrr.utils.config.parse_trl_args``; TRL's parser underneath, so ``accelerate launch`` works unchanged).
"""

from __future__ import annotations

from rrr.training import parse_train_args, train


def main(argv: list[str] | None = None) -> int:
    args, model_args = parse_train_args(argv)
    summary = train(args, model_args)
    last = summary.get("last_log") or {}
    if summary.get("already_finished"):
        print(f"already finished: {summary['global_step']} steps -> {summary['output_dir']} (nothing trained)")
        return 0
    print(
        f"done: {summary['global_step']} steps in {summary['train_seconds']} s -> {summary['output_dir']} | "
        f"retry success {_metric(last.get('rrr/retry_success'))}, "
        f"first-attempt acc {_metric(last.get('rrr/first_attempt_acc'))}"
    )
    return 0


def _metric(value) -> str:
    """A logged metric for the report line: ``n/a`` when the step had nothing to measure (logged as None/NaN).

    The model is saved before this line is printed, so formatting must never fail the run.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return "n/a"
    return f"{value:.3f}"
