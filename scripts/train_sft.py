"""Fine-tune a student on a teacher's curriculum (stage 3 of the Linguistic RL pipeline) with TRL's SFTTrainer.

    accelerate launch scripts/train_sft.py --config recipes/Qwen2.5-1.5B-Instruct/sft/config_scheduling.yaml
    python scripts/train_sft.py --config recipes/smoke/sft/config_scheduling.yaml            # offline, CPU
    python scripts/train_sft.py --config recipes/smoke/sft/config_scheduling.yaml --merge true

The curriculum comes from scripts/run_curriculum.py. Loss is on the completions only. The output dir holds a LoRA
adapter (or, with --merge true / --use_peft false, a full model) plus the tokenizer: evaluate it with
`make eval MODEL=<output_dir>`, or pass a merged one to scripts/train_grpo.py as model_name_or_path. Every
CurriculumSFTConfig / SFTConfig / ModelConfig field is a flag (`--help`); the YAML recipe gives defaults.
"""

import sys

from rrr.curriculum.sft import parse_sft_args, train_sft


def main(argv=None) -> int:
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


if __name__ == "__main__":
    from rrr.utils.cli import run

    sys.exit(run(main))
