"""Fine-tune a student on a teacher's curriculum (stage 3 of the Linguistic RL pipeline) with TRL's SFTTrainer.

    accelerate launch scripts/train_sft.py --config recipes/Qwen2.5-1.5B-Instruct/sft/config_scheduling.yaml
    python scripts/train_sft.py --config recipes/smoke/sft/config_scheduling.yaml            # offline, CPU
    python scripts/train_sft.py --config recipes/smoke/sft/config_scheduling.yaml --merge true

The curriculum comes from scripts/run_curriculum.py. Loss is on the completions only. The output dir holds a LoRA
adapter (or, with --merge true / --use_peft false, a full model) plus the tokenizer: evaluate it with
`make eval MODEL=<output_dir>`, or pass a merged one to scripts/train_grpo.py as model_name_or_path. Every
CurriculumSFTConfig / SFTConfig / ModelConfig field is a flag (`--help`) and a `--set key=value`; the YAML recipe
gives defaults. The code is ``rrr.cli.sft`` (also ``rrr sft``).
"""

import sys

from rrr.cli.sft import main

if __name__ == "__main__":
    from rrr.utils.cli import run

    sys.exit(run(main))
