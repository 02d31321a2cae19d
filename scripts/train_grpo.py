"""Train a student with Reflect, Retry, Reward (GRPO on reflection tokens only).

    accelerate launch scripts/train_grpo.py --config recipes/Qwen2.5-1.5B-Instruct/rrr/config_countdown.yaml
    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml scripts/train_grpo.py --config ...
    accelerate launch scripts/train_grpo.py --config recipes/.../config_apigen.yaml --learning_rate 1e-6
    python scripts/train_grpo.py --config recipes/smoke/rrr/config_countdown.yaml --max_steps 2
    python scripts/train_grpo.py --config recipes/smoke/rrr/config_countdown.yaml --set max_steps=2

Every RRRConfig / GRPOConfig / ModelConfig field is a flag (`--help`) and a `--set key=value`; the YAML recipe
gives defaults, flags override. The code is ``rrr.cli.train`` (also ``rrr train``).
"""

import sys

from rrr.cli.train import main

if __name__ == "__main__":
    from rrr.utils.cli import run

    sys.exit(run(main))
