"""Measure SmolLM2-135M-Instruct (``make real-model``) on a CPU: what a real instruct model does with RRR here.

    python scripts/real_model_report.py --model runs/smollm2-135m-instruct          # baseline, phases, best
    python scripts/real_model_report.py --parts best --rrr-steps 15 --control        # reuses finished stages

``make real-model-report`` runs it; the three parts and what each measures: ``rrr/bench/real_model.py``.
"""

import sys

from rrr.bench.real_model import main

if __name__ == "__main__":
    from rrr.utils.cli import run

    sys.exit(run(main))
