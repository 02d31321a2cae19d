"""``make demo``: build a tiny student, SFT it on the oracle curriculum, evaluate, mine failures, train RRR, evaluate.

Offline, on a CPU, from nothing, in ~10 minutes; prints the before/after table. See ``rrr/demo/pipeline.py``.

    python scripts/demo.py                                  # recipes/demo/config.yaml, runs/demo
    python scripts/demo.py --seed 1 --output-dir runs/demo-seed1
    python scripts/demo.py --set rrr.max_steps=100 --set control.enabled=true
"""

import os

# Tiny models gain nothing from intra-op threads, and two threads fighting over a shared 2-core machine run ~10x
# slower: set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

from rrr.demo.cli import main

if __name__ == "__main__":
    from rrr.utils.cli import run

    raise SystemExit(run(main))
