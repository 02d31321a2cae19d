"""Benchmarks, as library code: ``rrr bench rollout`` (:mod:`rrr.bench.rollout`, what RRR's three-phase rollout
costs next to plain GRPO), ``rrr bench verifiers`` (:mod:`rrr.bench.verifiers`, verifications per second) and
``rrr bench vllm_prefix`` (:mod:`rrr.bench.vllm_prefix`, vLLM prefix caching on vs off in RRR's phases).

Each module exposes ``main(argv) -> int``; ``scripts/bench_*.py`` and ``rrr bench <name>`` both run it."""
