"""The generation interface: a batch of chat conversations in, one sampled completion per conversation out.

One row per wanted sample (no ``n``): the episode code repeats conversations itself, which behaves identically on HF
generate, vLLM colocate, vLLM server and HTTP endpoints (TRL's server mode de-duplicates prompts, so ``n`` would mean
different things on different engines).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from rrr.tasks.base import Messages


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one phase. ``temperature == 0`` means greedy decoding."""

    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Generation:
    """One sampled completion.

    ``prompt_ids`` are exactly the tokens the engine was given and ``token_ids`` exactly the sampled tokens (with
    the end-of-turn token when generation stopped on it), so a trainer can score them without re-tokenising.
    ``logprobs`` are the sampling log-probabilities, one per token, when the engine reports them.
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)
    logprobs: list[float] | None = None
    truncated: bool = False

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


@runtime_checkable
class Generator(Protocol):
    """Anything that turns conversations into completions."""

    def generate(self, conversations: list[Messages], params: SamplingParams) -> list[Generation]:
        """Return one ``Generation`` per conversation, in order."""
        ...
