"""Benchmark the task verifiers: verifications per second on one core, with a realistic completion mix.

The benchmark lives in ``rrr.bench.verifiers`` (its docstring says what is measured and what is not); each task's
completion mix comes from the task itself (``Task.bench_*``).

    python scripts/bench_verifiers.py                    # defaults: 500 examples, 2 s per measurement
    python scripts/bench_verifiers.py --no-repeat --json runs/bench_verifiers.json
"""

from __future__ import annotations

import sys

from rrr.bench.verifiers import main

if __name__ == "__main__":
    from rrr.utils.cli import run

    sys.exit(run(main))
