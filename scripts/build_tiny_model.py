"""Build the tiny offline model + tokenizer that smoke recipes, tests and the demo use (nothing is downloaded)."""

import argparse
import sys

from rrr.models.tiny import save_tiny_model
from rrr.utils.outputs import OutputDirError


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--output-dir", default="runs/tiny-model")
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--num-layers", type=int, default=2)
    p.add_argument("--num-heads", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace --output-dir even if rrr did not write it")
    a = p.parse_args()
    try:
        path = save_tiny_model(a.output_dir, a.hidden_size, a.num_layers, a.num_heads, a.seed, overwrite=a.overwrite)
    except OutputDirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"tiny model saved to {path}")


if __name__ == "__main__":
    from rrr.utils.cli import run

    raise SystemExit(run(main))
