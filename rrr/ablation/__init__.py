"""Ablations: which recipe should a user run? One base model, one task, shared splits, the same evaluation.

Arms (each trained from a recipe in ``recipes/ablation/<preset>/``):

* ``base`` — no training;
* ``sft`` — SFT warm-start on the teacher curriculum (``rrr.curriculum``);
* ``rrr`` — Reflect-Retry-Reward GRPO from the base model;
* ``sft_rrr`` — RRR from the SFT model;
* ``outcome`` — standard GRPO on single attempts, stopped at the **same generated-token budget** as ``rrr``;
* ``reflection_sft`` — SFT on the student's own reflections that led to a passing retry (ReflectEvo D+);
* ``reflection_dpo`` — DPO on pairs of the student's reflections on the same failure: passing vs failing retry.
"""

from rrr.ablation.runner import ARMS, AblationConfig, run_ablation

__all__ = ["ARMS", "AblationConfig", "run_ablation"]
