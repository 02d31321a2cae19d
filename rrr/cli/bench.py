"""``rrr bench <name> ...``: the benchmarks of :mod:`rrr.bench`, each its module's ``main``.

rrr bench rollout [--json runs/bench_rollout.json]   # 3-phase rollout vs plain GRPO; scripts/bench_rollout.py
rrr bench verifiers [--min-rate N]                    # verifications/s per task; scripts/bench_verifiers.py
rrr bench vllm_prefix [--model DIR]                   # vLLM prefix caching on vs off in RRR's phases
"""

from __future__ import annotations

import importlib
import sys

from rrr.utils.cli import USAGE_EXIT

#: Benchmark -> its one-line description; each is ``rrr.bench.<name>.main``.
BENCHES: dict[str, str] = {
    "rollout": "what RRR's three dependent generate calls cost next to plain GRPO, on the tiny model",
    "verifiers": "verifications per second per task, cold and warm, on one core",
    "vllm_prefix": "what vLLM's prefix caching saves in RRR's reflection and retry phases (vLLM CPU)",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        width = max(map(len, BENCHES))
        print("usage: rrr bench <benchmark> [options]   (rrr bench <benchmark> --help for its options)\n")
        print("benchmarks:\n" + "\n".join(f"  {name:<{width}}  {about}" for name, about in BENCHES.items()))
        return 0 if argv else USAGE_EXIT
    name, rest = argv[0], argv[1:]
    if name not in BENCHES:
        print(f"error: unknown benchmark {name!r}: choose one of {', '.join(BENCHES)}", file=sys.stderr)
        return USAGE_EXIT
    sys.argv = [f"rrr bench {name}", *rest]  # the benchmark's usage line says how it was called
    return importlib.import_module(f"rrr.bench.{name}").main(rest)
