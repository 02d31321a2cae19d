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
    """Exactly how to sample one phase; every engine receives every field explicitly.

    ``temperature == 0`` means greedy decoding, and greedy means greedy: no top-k/top-p/min-p filter and no
    repetition penalty, whatever the fields say. The defaults are *neutral* (``top_k=0`` and ``min_p=0`` disable
    those filters, ``repetition_penalty=1`` disables the penalty). They are never "unset": a checkpoint's
    ``generation_config`` (Qwen2.5-Instruct ships top-k 20, top-p 0.8, repetition penalty 1.05) must not leak into a
    phase, or the reflections are not sampled from the distribution the GRPO loss scores.
    """

    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    min_p: float = 0.0
    repetition_penalty: float = 1.0

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 disables it), got {self.top_k}")
        if not 0 <= self.min_p < 1:
            raise ValueError(f"min_p must be in [0, 1), got {self.min_p}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0 (1 disables it), got {self.repetition_penalty}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def filters(self) -> dict:
        """``top_p``, ``top_k``, ``min_p``, ``repetition_penalty`` as an engine must apply them: the stated values
        when sampling, neutral ones when greedy (greedy means greedy: no filter, no penalty). Every engine adapter
        passes all four, so nothing is left for a checkpoint's ``generation_config`` to fill."""
        if self.greedy:
            return {"top_p": 1.0, "top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0}
        return {
            "top_p": self.top_p,
            "top_k": self.top_k,
            "min_p": self.min_p,
            "repetition_penalty": self.repetition_penalty,
        }

    def effective(self) -> dict:
        """What an engine actually applies (greedy drops every filter and the penalty): for start-up logs."""
        if self.greedy:
            return {"max_new_tokens": self.max_new_tokens, "greedy": True}
        return {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "min_p": self.min_p,
            "repetition_penalty": self.repetition_penalty,
            "seed": self.seed,
        }


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
    """Anything that turns conversations into completions.

    A generator shared by several processes (the trainer's policy under DDP, vLLM server mode, ZeRO-3) must see the
    same sequence of calls on every rank; it says so by also implementing ``any_rank(flag) -> bool`` (``flag`` on
    any process), and accepts calls with zero local conversations. See :func:`any_rank`.
    """

    def generate(self, conversations: list[Messages], params: SamplingParams) -> list[Generation]:
        """Return one ``Generation`` per conversation, in order."""
        ...


def any_rank(generator: Generator, flag: bool) -> bool:
    """``flag`` agreed across processes for collective generators, ``flag`` itself for everything else.

    The episode asks this before each phase, so whether a phase runs never depends on one rank's data alone.
    """
    agree = getattr(generator, "any_rank", None)
    return bool(agree(flag)) if agree is not None else bool(flag)
