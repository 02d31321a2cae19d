"""Benchmark what RRR's three-phase rollout costs next to plain GRPO generation, on the tiny offline model.

    python scripts/bench_rollout.py                          # hidden 128, 4 layers, 5 steps: ~40 s on 2 CPUs
    python scripts/bench_rollout.py --model runs/tiny --json runs/bench_rollout.json

The same as ``rrr bench rollout``; what is measured and how: ``rrr/bench/rollout.py``.
"""

import sys

from rrr.bench.rollout import main

if __name__ == "__main__":
    from rrr.utils.cli import run

    sys.exit(run(main))
