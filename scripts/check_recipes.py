"""Check every YAML under ``recipes/`` (training, SFT, demo, ablation, accelerate configs) without training anything.

    python scripts/check_recipes.py                      # everything under recipes/ (make check-recipes)
    python scripts/check_recipes.py recipes/smoke/rrr/config_countdown.yaml   # just these files

Prints one line per file and exits 1 if any check fails. The checks are ``rrr.utils.recipes`` (the test suite runs
the same ones, over the same files: tests/test_recipes.py).
"""

import sys

from rrr.utils.recipes import main

if __name__ == "__main__":
    from rrr.utils.cli import run

    sys.exit(run(main))
