"""Ablation: base vs SFT vs RRR vs SFT→RRR vs outcome GRPO vs reflection SFT/DPO — one table, one plot.

    python scripts/ablate.py                                          # the tiny offline default (~15 min)
    python scripts/ablate.py --config recipes/ablation/tiny.yaml --arms base rrr outcome
    python scripts/ablate.py --config my_ablation.yaml --model Qwen/Qwen2.5-1.5B-Instruct --task countdown

Finished arms are skipped on re-run (delete <output_dir>/<arm> to redo one).

The code is ``rrr.cli.ablate`` (also ``rrr ablate``).
"""

import sys

from rrr.cli.ablate import main

if __name__ == "__main__":
    from rrr.utils.cli import run

    sys.exit(run(main))
