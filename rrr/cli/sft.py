"""``rrr sft`` / ``scripts/train_sft.py``: curriculum SFT from a recipe (``CurriculumSFTConfig`` + ``ModelConfig``).

    rrr sft --config recipes/smoke/sft/config_scheduling.yaml --merge true
    rrr sft --config recipes/smoke/sft/config_scheduling.yaml --set max_steps=2

TRL flags and ``--set`` both override the recipe (``rrr.utils.config.parse_trl_args``).
"""

from __future__ import annotations

from rrr.curriculum.sft import parse_sft_args, train_sft


def main(argv: list[str] | None = None) -> int:
    args, model_args = parse_sft_args(argv)
    summary = train_sft(args, model_args)
    if summary.get("already_finished"):
        print(f"already finished: {summary['global_step']} steps -> {summary['output_dir']} (nothing trained)")
        return 0
    loss = summary.get("train_loss")
    loss = f"{loss:.3f}" if isinstance(loss, (int, float)) and loss == loss else "n/a"
    print(
        f"done: {summary['kind']} after {summary['global_step']} steps on {summary['train_rows']} rows in "
        f"{summary['train_seconds']} s (mean loss {loss}) -> {summary['output_dir']}"
    )
    return 0
