"""Start-up checks shared by every rrr config that extends a TRL config (RRR GRPO, curriculum SFT)."""

from __future__ import annotations

import json


def bf16_supported() -> bool:
    """A CUDA GPU with bf16 (Ampere or newer) is present."""
    try:
        import torch

        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    except Exception:
        return False


def resolve_bf16(config) -> None:
    """bf16 defaults to "on if this machine can" (TRL's default, True, crashes every CPU run at start-up);
    an explicit ``bf16: true`` without a bf16 GPU is rejected with the fix."""
    if config.bf16 is None and not config.fp16:
        config.bf16 = bf16_supported() and not config.use_cpu
    elif config.bf16 and (config.use_cpu or not bf16_supported()):
        raise ValueError(
            "bf16=True needs a GPU with bf16 support (Ampere or newer), and this run has none "
            f"({'use_cpu is set' if config.use_cpu else 'no such GPU found'}). "
            "For a CPU run set `bf16: false` in the recipe (or pass --bf16 false)."
        )


def parse_task_kwargs(value) -> dict | None:
    """``task_kwargs`` from YAML (a mapping) or the CLI (a JSON string)."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else None
        except json.JSONDecodeError as exc:
            raise ValueError(f"task_kwargs must be a JSON object, got {value!r}: {exc}") from None
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"task_kwargs must be a mapping, got {type(value).__name__}")
    return value
