"""rrr — Reflect, Retry, Reward.

GRPO in which a student attempts a verifiable task, writes a short self-reflection when it fails, retries with the
reflection in context, and is rewarded — on the reflection tokens only — when the retry passes the verifier.

Modules mirror the concepts: ``rrr.tasks`` (data, prompts, verifiers), ``rrr.episode`` (attempt -> reflect -> retry
-> verify, written once), ``rrr.generation`` (HF generate, vLLM, OpenAI-compatible endpoints), ``rrr.training`` (the
TRL-based trainer), ``rrr.evaluation``, ``rrr.curriculum`` and ``rrr.models`` (the tiny offline model).
"""

__version__ = "0.1.0"
