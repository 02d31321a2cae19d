"""Mine the student's failures (the paper's offline failure set) for `train_grpo.py --first_attempt_source column`.

    python scripts/mine_failures.py --model Qwen/Qwen2.5-1.5B-Instruct --task countdown --n 20000 --k 64 \
        --output-dir data/countdown-failures [--push-to-hub me/countdown-failures]

Samples k first attempts per task, keeps the tasks failed under --rule (any: failed at least once; majority;
all), and saves them with the failed attempts. Prints the failure rate per difficulty.

Re-running the same command resumes an interrupted run (finished tasks are not sampled again) or rebuilds a
finished one; a --output-dir that holds anything else is refused (--overwrite replaces it).

The code is ``rrr.cli.mine`` (also ``rrr mine``).
"""

import sys

from rrr.cli.mine import main

if __name__ == "__main__":
    from rrr.utils.cli import run

    sys.exit(run(main))
