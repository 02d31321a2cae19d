"""``make demo``: build a tiny student, SFT it on the oracle curriculum, evaluate, mine failures, train RRR, evaluate.

Offline, on a CPU, from nothing, in ~10 minutes; prints the before/after table. See ``rrr/demo/pipeline.py``; the
command line is ``rrr.cli.demo`` (also ``rrr demo``).

    python scripts/demo.py                                  # recipes/demo/config.yaml, runs/demo
    python scripts/demo.py --seed 1 --output-dir runs/demo-seed1
    python scripts/demo.py --set rrr.max_steps=100 --set control.enabled=true
"""

import sys

from rrr.cli.demo import main  # sets OMP_NUM_THREADS & co. before torch is imported

if __name__ == "__main__":
    from rrr.utils.cli import run

    sys.exit(run(main))
