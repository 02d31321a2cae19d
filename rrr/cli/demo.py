"""``rrr demo`` / ``scripts/demo.py``: a YAML recipe plus ``--seed``, ``--output-dir`` and ``--set``, then the pipeline.

rrr demo                                               # recipes/demo/config.yaml, runs/demo
rrr demo --seed 1 --output-dir runs/demo-seed1
rrr demo --set rrr.max_steps=100 --set control.enabled=true
"""

from __future__ import annotations

import argparse
import os

# Tiny models gain nothing from intra-op threads, and two threads fighting over a shared 2-core machine run ~10x
# slower: set before torch is imported (this module is imported before anything that imports torch).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

DEFAULT_CONFIG = "recipes/demo/config.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from rrr.utils.config import add_set_argument

    p = argparse.ArgumentParser(description="RRR demo: tiny student, SFT, evaluate, mine failures, RRR, evaluate.")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="YAML recipe (default: %(default)s)")
    p.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    p.add_argument("--output-dir", default=None, help="override the recipe's output_dir")
    add_set_argument(p)
    p.add_argument(
        "--until",
        choices=("base", "sft"),
        default=None,
        help="stop once this stage's model is built (e.g. the ablation's tiny base student) and print its directory",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from rrr.demo.config import DemoConfig
    from rrr.demo.pipeline import DemoError, DemoPipeline
    from rrr.utils.cli import UsageError
    from rrr.utils.config import parse_set

    a = parse_args(argv)
    overrides = parse_set(a.set)
    if a.seed is not None:
        overrides["seed"] = a.seed
    if a.output_dir is not None:
        overrides["output_dir"] = a.output_dir
    config = DemoConfig.from_yaml(a.config, overrides)  # a bad recipe or override: ConfigError, one line
    try:
        results = DemoPipeline(config).run(until=a.until)
    except DemoError as exc:  # an output dir built with other settings: the user's to resolve
        raise UsageError(str(exc)) from None
    print(results["model_dir"] if a.until else results["verdict"])
    return 0
