"""Evaluate students: first-try accuracy, accuracy after one reflection + retry, the gain, with 95% CIs.

    python scripts/evaluate.py --model Qwen/Qwen2.5-1.5B-Instruct --task countdown --n 500 --output-dir runs/eval/base
    python scripts/evaluate.py --model runs/base-model runs/rrr-run --task countdown --n 200 --output-dir runs/eval
    python scripts/evaluate.py --model Qwen/Qwen2.5-7B-Instruct --base-url http://localhost:8000/v1 --task apigen
    python scripts/evaluate.py --compare runs/eval/base runs/eval/rrr-run        # one side-by-side table

Several --model values are evaluated one after the other into <output-dir>/<name>, then shown side by side.
Re-running the same command resumes: finished samples are skipped.

The code is ``rrr.cli.eval`` (also ``rrr eval``).
"""

import sys

from rrr.cli.eval import main

if __name__ == "__main__":
    from rrr.utils.cli import run

    sys.exit(run(main))
