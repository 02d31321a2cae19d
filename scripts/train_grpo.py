"""Train a student with Reflect, Retry, Reward (GRPO on reflection tokens only).

    accelerate launch scripts/train_grpo.py --config recipes/Qwen2.5-1.5B-Instruct/rrr/config_countdown.yaml
    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml scripts/train_grpo.py --config ...
    python scripts/train_grpo.py --config recipes/smoke/rrr/config_countdown.yaml --max_steps 2

Every RRRConfig / GRPOConfig / ModelConfig field is a flag (`--help`); the YAML recipe gives defaults, flags override.
"""

import sys

from rrr.training import parse_train_args, train


def main(argv=None) -> int:
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


if __name__ == "__main__":
    from rrr.utils.cli import run

    sys.exit(run(main))
