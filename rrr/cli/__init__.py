"""The ``rrr`` command: one entry point whose subcommands are the drivers under ``scripts/``.

    rrr --help                                     # the subcommands, one line each
    rrr train --config recipes/smoke/rrr/config_countdown.yaml --max_steps 2
    accelerate launch --num_processes 8 -m rrr.cli train --config ...     # or: accelerate launch $(which rrr) train
    rrr eval --model runs/tiny-model --task countdown --n 32 --output-dir runs/eval
    rrr bench rollout --json runs/bench_rollout.json

Each subcommand is a module ``rrr.cli.<name>`` exposing ``main(argv) -> int`` (parse → call the library → report),
and ``python scripts/<script>.py ...`` runs that very ``main``: the two spellings cannot drift apart. Subcommand
modules are imported only when chosen, so ``rrr --help`` never pays for torch, and the demo's module can still set
thread counts before torch is first imported. Usage errors (a bad flag, a bad recipe, a dataset too small) are one
``error:`` line and exit status 2, as every script's are (:func:`rrr.utils.cli.run`).
"""

from __future__ import annotations

import importlib
import sys

from rrr.utils.cli import USAGE_EXIT, run

#: Subcommand -> its one-line description (the order of ``rrr --help``).
SUBCOMMANDS: dict[str, str] = {
    "train": "train a student with RRR (GRPO on reflection tokens only); scripts/train_grpo.py",
    "sft": "fine-tune a student on a teacher's curriculum with TRL's SFTTrainer; scripts/train_sft.py",
    "eval": "first try, after one reflection + retry, and the gain, with 95% CIs; scripts/evaluate.py",
    "mine": "mine a student's failed first attempts for column-mode training; scripts/mine_failures.py",
    "curriculum": "teacher -> curriculum -> student for one task, measured side by side; scripts/run_curriculum.py",
    "ablate": "base vs SFT vs RRR vs outcome GRPO vs reflection SFT/DPO: one table, one plot; scripts/ablate.py",
    "demo": "the whole idea offline on a CPU: tiny student, SFT, mine failures, RRR, paired headline; scripts/demo.py",
    "bench": "throughput benchmarks: `rrr bench rollout` (episode engines), `rrr bench verifiers`",
}

USAGE = "usage: rrr <subcommand> [options]   (rrr <subcommand> --help for its options)"


def _help() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = [
        USAGE,
        "",
        "Reflect, Retry, Reward: GRPO that teaches small language models to learn from their mistakes.",
        "",
    ]
    lines += ["subcommands:"] + [f"  {name:<{width}}  {about}" for name, about in SUBCOMMANDS.items()]
    return "\n".join(lines)


def load(name: str):
    """The ``main`` of subcommand ``name`` (``rrr.cli.<name>.main``), imported now.

    A subcommand whose module is missing is reported as such (a usage error naming the module), not as a bare
    ``ModuleNotFoundError`` from deep inside; a module that exists but fails to import is a bug and keeps its traceback.
    """
    module_name = f"{__name__}.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        from rrr.utils.cli import UsageError

        raise UsageError(f"`rrr {name}` is not available in this install: module {module_name} is missing") from None
    return module.main


def main(argv: list[str] | None = None) -> int:
    """``rrr <subcommand> [options]``: run the subcommand's ``main`` and return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_help())
        return 0 if argv else USAGE_EXIT
    if argv[0] == "--version":
        from rrr import __version__

        print(f"rrr {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(
            f"error: unknown subcommand {name!r}: choose one of {', '.join(SUBCOMMANDS)} (rrr --help)", file=sys.stderr
        )
        return USAGE_EXIT
    # the subcommand's argparse ``prog`` reads sys.argv[0]: make its usage line say `rrr <name>`
    sys.argv = [f"rrr {name}", *rest]
    return run(lambda: load(name)(rest))
