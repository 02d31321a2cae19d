"""Command line of the demo (``scripts/demo.py``): a YAML recipe plus ``--seed``, ``--output-dir`` and ``--set``."""

from __future__ import annotations

import argparse
import sys

import yaml

DEFAULT_CONFIG = "recipes/demo/config.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="RRR demo: tiny student, SFT, evaluate, mine failures, RRR, evaluate.")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="YAML recipe (default: %(default)s)")
    p.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    p.add_argument("--output-dir", default=None, help="override the recipe's output_dir")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any field, e.g. --set rrr.max_steps=100 --set control.enabled=true (YAML values)",
    )
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

    a = parse_args(argv)
    overrides = {}
    for item in a.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    if a.seed is not None:
        overrides["seed"] = a.seed
    if a.output_dir is not None:
        overrides["output_dir"] = a.output_dir
    # a bad recipe or override, or an output dir built with other settings: one line, not a traceback
    try:
        config = DemoConfig.from_yaml(a.config, overrides)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        results = DemoPipeline(config).run(until=a.until)
    except DemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(results["model_dir"] if a.until else results["verdict"])
    return 0
