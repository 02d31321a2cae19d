"""``rrr ablate`` / ``scripts/ablate.py``: parse -> ``rrr.ablation.run_ablation`` -> the table.

Ablation: base vs SFT vs RRR vs SFT→RRR vs outcome GRPO vs reflection SFT/DPO — one table, one plot.

    python scripts/ablate.py                                          # the tiny offline default (~15 min)
    python scripts/ablate.py --config recipes/ablation/tiny.yaml --arms base rrr outcome
    python scripts/ablate.py --config my_ablation.yaml --model Qwen/Qwen2.5-1.5B-Instruct --task countdown
    python scripts/ablate.py --set eval.attempt_max_tokens=16 --set frozen.samples=0

Finished arms are skipped on re-run (delete <output_dir>/<arm> to redo one).
"""

from __future__ import annotations

import argparse
import logging
import sys

from rrr.ablation import ARMS, AblationConfig, run_ablation
from rrr.utils.config import add_set_argument, parse_set


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="recipes/ablation/tiny.yaml", help="ablation YAML (AblationConfig fields)")
    p.add_argument("--task")
    p.add_argument("--model")
    p.add_argument("--output-dir")
    p.add_argument("--arms", nargs="+", choices=ARMS)
    p.add_argument("--no-progress", action="store_true")
    add_set_argument(p)  # e.g. --set eval.batch_size=32 --set frozen.samples=0
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s", datefmt="%H:%M:%S")
    try:
        config = AblationConfig.from_yaml(
            a.config, parse_set(a.set), task=a.task, model=a.model, output_dir=a.output_dir, arms=a.arms
        )
        report = run_ablation(config, progress=not a.no_progress)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report["table"])
    print(f"table, JSON and plot in {config.output_dir}/ablation.{{md,json,png}}")
    return 0
