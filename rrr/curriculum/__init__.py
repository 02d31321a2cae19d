"""Teacher curriculum and SFT warm-start: the Linguistic RL pipeline, reproducible and measured on balanced data.

A strong teacher improves itself by reflection (no gradients), its learned strategy and verified worked solutions
become a natural-language curriculum, and a small student is fine-tuned on it (LoRA or full) before — or instead of —
RRR training. One function runs it all::

    from rrr.curriculum import run_knowledge_transfer
    summary = run_knowledge_transfer("scheduling", teacher="oracle", student="runs/tiny-model",
                                     output_dir="runs/curriculum-scheduling")

Modules: ``teachers`` (oracle / OpenAI-compatible / Anthropic / local HF, cached), ``self_improve`` (stage 1),
``dataset`` (stage 2), ``sft`` (stage 3, imports TRL), ``pipeline`` (``run_knowledge_transfer``). Names are imported
lazily, so ``import rrr.curriculum`` stays cheap (TRL is only imported for SFT).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Teacher": "teachers",
    "LLMTeacher": "teachers",
    "OpenAICompatibleTeacher": "teachers",
    "AnthropicTeacher": "teachers",
    "HFTeacher": "teachers",
    "OracleTeacher": "teachers",
    "TeacherCache": "teachers",
    "TeacherError": "teachers",
    "SolveResult": "teachers",
    "make_teacher": "teachers",
    "SelfImproveConfig": "self_improve",
    "SelfImproveResult": "self_improve",
    "CurriculumConfig": "dataset",
    "CurriculumError": "dataset",
    "CurriculumResult": "dataset",
    "build_curriculum": "dataset",
    "load_curriculum": "dataset",
    "CurriculumSFTConfig": "sft",
    "train_sft": "sft",
    "parse_sft_args": "sft",
    "SFTOptions": "pipeline",
    "StrategyPromptTask": "pipeline",
    "run_knowledge_transfer": "pipeline",
    "wilson_interval": "pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rrr.curriculum' has no attribute {name!r}")
    return getattr(importlib.import_module(f"rrr.curriculum.{module}"), name)
