"""Benchmark what RRR's three-phase rollout costs next to plain GRPO generation, and what each optimisation buys.

    python scripts/bench_rollout.py                          # 2x4 and 16x8, HF and vLLM, 3 steps: ~12 min on 2 CPUs
    python scripts/bench_rollout.py --batches 2x4 --engines hf --json runs/bench_rollout.json
    python scripts/bench_rollout.py --model DIR              # vLLM rows need head_dim >= 32

The same as ``rrr bench rollout``; what is measured and how: ``rrr/bench/rollout.py``.
"""

import sys

from rrr.bench.rollout import main

if __name__ == "__main__":
    from rrr.utils.cli import run

    sys.exit(run(main))
