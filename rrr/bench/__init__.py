"""Benchmarks, as library code: ``rrr bench rollout`` (:mod:`rrr.bench.rollout`, what RRR's three-phase rollout
costs next to plain GRPO) and ``rrr bench verifiers`` (:mod:`rrr.bench.verifiers`, verifications per second).

Each module exposes ``main(argv) -> int``; ``scripts/bench_*.py`` and ``rrr bench <name>`` both run it."""
