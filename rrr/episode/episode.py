"""Attempt -> reflection -> retry -> verify, batched by phase.

Each phase is **one** batched generation call over every episode in the batch (first attempts of all tasks, then all
reflections, then all retries), because engines are fast on big batches and slow on many small ones. Whether a phase
runs is decided with :func:`rrr.generation.base.any_rank`, so a generator shared by several processes sees the same
calls on every rank (a rank with nothing to generate still takes part with zero rows). Within an
episode the G reflections share the *same* failed attempt — that is what makes them a GRPO group: the only thing
that differs between them is the reflection, so the group-relative advantage credits the reflection alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from rrr.generation.base import Generation, Generator, SamplingParams, any_rank
from rrr.tasks.base import Example, Task, TaskDataError, Verdict, safe_leaks_answer, safe_verify
from rrr.utils.cli import one_line

logger = logging.getLogger("rrr.episode")


@dataclass(frozen=True)
class EpisodeConfig:
    """What one episode samples.

    ``reflections_per_failure`` is the GRPO group size G in training and 1 in the usual evaluation; retries are
    scored as the fraction of ``retries_per_reflection`` samples that pass (one greedy retry is the paper's setup).
    """

    attempt: SamplingParams = SamplingParams(max_new_tokens=256, temperature=1.0)
    reflection: SamplingParams = SamplingParams(max_new_tokens=128, temperature=1.0)
    retry: SamplingParams = SamplingParams(max_new_tokens=256, temperature=0.0)
    reflections_per_failure: int = 1
    retries_per_reflection: int = 1
    #: Online first attempts: sample up to this many and keep the first that fails (1 = the plain first attempt).
    first_attempt_tries: int = 1
    #: Reward subtracted from a reflection that leaks the answer (0 = detect and count only).
    leak_penalty: float = 0.0

    def __post_init__(self):
        for name in ("reflections_per_failure", "retries_per_reflection", "first_attempt_tries"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.retries_per_reflection > 1 and self.retry.greedy:
            raise ValueError("retries_per_reflection > 1 needs a retry temperature > 0 (greedy retries are identical)")
        if self.leak_penalty < 0:
            raise ValueError(f"leak_penalty must be >= 0, got {self.leak_penalty}")

    def check_fits(self, task: Task, generator: Generator, examples: Sequence[Example]) -> None:
        """Raise ``TaskDataError`` naming the row when an episode on some example could outgrow the generator's
        model context (see ``check_context_lengths``); a no-op for generators without a local tokenizer."""
        check_generator_context(task, generator, examples, self)


@dataclass
class Attempt:
    """A first attempt and its verdict (``generation`` is None when it came from a dataset column)."""

    text: str
    verdict: Verdict
    generation: Generation | None = None


@dataclass
class ReflectionOutcome:
    """One reflection on the failed attempt, its retries and their verdicts."""

    reflection: Generation
    retries: list[Generation]
    verdicts: list[Verdict]
    leaked: bool
    leak_penalty: float = 0.0

    @property
    def text(self) -> str:
        return self.reflection.text

    @property
    def success_rate(self) -> float:
        return sum(v.passed for v in self.verdicts) / len(self.verdicts)

    @property
    def reward(self) -> float:
        """Fraction of retries that pass, minus the leak penalty when the reflection gave the answer away."""
        return self.success_rate - (self.leak_penalty if self.leaked else 0.0)


@dataclass
class Episode:
    """Everything that happened to one task instance."""

    example: Example
    example_id: str
    #: Every first attempt sampled (online mining may sample several); the last one is the one reflected upon.
    attempts: list[Attempt] = field(default_factory=list)
    reflections: list[ReflectionOutcome] = field(default_factory=list)

    @property
    def attempt(self) -> Attempt:
        return self.attempts[-1]

    @property
    def first_try_passed(self) -> bool:
        """Whether the *first* sampled attempt passed (the paper's "1st try")."""
        return bool(self.attempts) and self.attempts[0].verdict.passed

    @property
    def solved_without_reflection(self) -> bool:
        """No failed attempt was found: nothing to reflect on, no gradient (counted, not trained)."""
        return not self.attempts or self.attempt.verdict.passed

    @property
    def retry_passed(self) -> bool:
        """Whether the first reflection's first retry passed (the paper's "2nd try" on a failed item)."""
        return bool(self.reflections) and self.reflections[0].verdicts[0].passed

    @property
    def passed_within_two(self) -> bool:
        """Solved at the first try, or after one reflection + retry."""
        return self.first_try_passed or self.retry_passed

    @property
    def no_signal(self) -> bool:
        """All reflections earned the same reward: a GRPO group with zero advantage everywhere."""
        rewards = {r.reward for r in self.reflections}
        return len(self.reflections) > 0 and len(rewards) == 1

    @property
    def phase_tokens(self) -> dict[str, int]:
        """Tokens the engine generated for this episode, per phase: every sampled first attempt (stored ones cost
        nothing), every reflection and every retry. The compute an episode cost, counted where it was produced, so
        a trainer's log and a benchmark agree without intercepting the engine."""
        return {
            "attempt": sum(a.generation.num_tokens for a in self.attempts if a.generation is not None),
            "reflection": sum(o.reflection.num_tokens for o in self.reflections),
            "retry": sum(g.num_tokens for o in self.reflections for g in o.retries),
        }

    @property
    def generated_tokens(self) -> int:
        """All tokens generated for this episode (the sum of :attr:`phase_tokens`)."""
        return sum(self.phase_tokens.values())


def run_episodes(
    task: Task,
    generator: Generator,
    examples: list[Example],
    config: EpisodeConfig,
    first_attempts: list[str | None] | None = None,
) -> list[Episode]:
    """Run one RRR episode per example, with one batched generation per phase.

    ``first_attempts`` (one per example) replaces sampling with stored attempts — the paper's offline failure set;
    ``None`` entries are sampled. A stored attempt that passes the verifier counts as solved.
    """
    if first_attempts is not None and len(first_attempts) != len(examples):
        raise ValueError(f"got {len(first_attempts)} first attempts for {len(examples)} examples")
    episodes = [Episode(example=ex, example_id=task.example_id(ex)) for ex in examples]

    # 1) first attempts ------------------------------------------------------------------------------------------
    to_sample = []
    for i, ep in enumerate(episodes):
        stored = first_attempts[i] if first_attempts is not None else None
        if stored is not None:
            ep.attempts.append(Attempt(stored, safe_verify(task, ep.example, stored)))
        else:
            to_sample.append(i)
    tries = config.first_attempt_tries
    pending = to_sample
    for _ in range(tries):  # each round samples only for episodes that have not failed yet
        if not any_rank(generator, bool(pending)):
            break
        gens = generator.generate([task.attempt_messages(episodes[i].example) for i in pending], config.attempt)
        still = []
        for i, gen in zip(pending, gens):
            verdict = safe_verify(task, episodes[i].example, gen.text)
            episodes[i].attempts.append(Attempt(gen.text, verdict, gen))
            if verdict.passed:
                still.append(i)
        pending = still

    # 2) reflections: G per failed episode, all on the same failed attempt ----------------------------------------
    failed = [ep for ep in episodes if not ep.solved_without_reflection]
    group = config.reflections_per_failure
    reflect_convs = [task.reflection_messages(ep.example, ep.attempt.text) for ep in failed for _ in range(group)]
    reflections = (
        generator.generate(reflect_convs, config.reflection) if any_rank(generator, bool(reflect_convs)) else []
    )

    # 3) retries: k per reflection, with the reflection in context ------------------------------------------------
    k = config.retries_per_reflection
    retry_convs = []
    for j, refl in enumerate(reflections):
        ep = failed[j // group]
        retry_convs.extend([task.retry_messages(ep.example, ep.attempt.text, refl.text)] * k)
    retries = generator.generate(retry_convs, config.retry) if any_rank(generator, bool(retry_convs)) else []

    # 4) verify ----------------------------------------------------------------------------------------------------
    for j, refl in enumerate(reflections):
        ep = failed[j // group]
        mine = retries[j * k : (j + 1) * k]
        ep.reflections.append(
            ReflectionOutcome(
                reflection=refl,
                retries=mine,
                verdicts=[safe_verify(task, ep.example, g.text) for g in mine],
                leaked=safe_leaks_answer(task, ep.example, refl.text),
                leak_penalty=config.leak_penalty,
            )
        )
    return episodes


# ------------------------------------------------------------------------------------------------------------------
# Context lengths: does the longest sequence an episode builds fit the model? (training and evaluation)
# ------------------------------------------------------------------------------------------------------------------
#: ``tokenizer.model_max_length`` above this is transformers' "no limit recorded" sentinel (``int(1e30)``), not a
#: context length.
_NO_TOKENIZER_LIMIT = 10**9
#: Config attributes that hold a causal LM's context length, by architecture family, most common first.
_CONTEXT_ATTRIBUTES = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
#: Rows quoted in an error or warning (the count covers the rest).
_QUOTED = 3
#: Tokens a tokenizer may add beyond one per byte (a BOS, sentencepiece's dummy prefix): generous on purpose, the
#: bound only decides which rows are tokenized exactly.
_BYTE_BOUND_SLACK = 16
#: Conversations rendered and tokenized per call: a batch keeps the fast tokenizer busy without holding every
#: rendered prompt of a large dataset in memory at once.
_BATCH = 512


def context_limit(config, tokenizer, name: str = "the model") -> tuple[int | None, str]:
    """The context length a model config (or, failing that, a tokenizer) records, and which attribute it is.

    The config's position limit is what the model can attend over; the tokenizer's ``model_max_length`` is used
    only when the config records none (tokenizers often record a smaller, advisory value).
    """
    for attr in _CONTEXT_ATTRIBUTES:
        value = getattr(config, attr, None) if config is not None else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value, f"{attr} of {name}"
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < _NO_TOKENIZER_LIMIT:
        return value, f"model_max_length of {name}'s tokenizer"
    return None, ""


def check_context_lengths(
    task: Task,
    tokenizer,
    examples,
    config: EpisodeConfig,
    limit: int,
    where: str,
    stored_attempts: str | None = None,
    chat_template_kwargs: dict | None = None,
    on_bad_row: str | None = None,
):
    """Every row's worst-case retry context fits in ``limit`` tokens; returns ``examples`` (a ``Dataset`` or a list)
    without the rows that do not when ``on_bad_row`` (default: the task's) is ``"skip"``, else raises.

    The longest sequence an episode builds is the retry: first-attempt prompt + failed attempt (at most
    ``config.attempt.max_new_tokens``, or the stored attempt's own length when ``stored_attempts`` names its column)
    + reflection request + reflection (at most ``config.reflection.max_new_tokens``) + retry request, plus
    ``config.retry.max_new_tokens`` generated. A prompt past the model's context otherwise fails deep inside
    generation (a 1 MB prompt asked HF ``generate`` for a 1 TB attention mask) instead of naming the row. The template's fixed cost of the
    two extra turns is measured once, on the first row with an empty attempt and reflection (the instructions are
    the same for every row).

    Cheap on large datasets: each row's attempt prompt is rendered once, and tokenized only when its UTF-8 length
    could exceed the limit — no tokenizer makes more tokens than bytes (byte-level BPE and byte fallback emit at
    most one token per byte) beyond a few added at the start (``_BYTE_BOUND_SLACK``), so a row within the limit by
    bytes is within it by tokens. Real datasets against real contexts then cost one template rendering per row.
    """
    on_bad_row = on_bad_row or task.on_bad_row
    kwargs = chat_template_kwargs or {}
    attempt_tokens = config.attempt.max_new_tokens
    reflection_tokens = config.reflection.max_new_tokens
    retry_tokens = config.retry.max_new_tokens
    n = len(examples)
    if n == 0:
        return examples
    first = dict(examples[0])
    attempt_len, retry_len = _token_lengths(
        tokenizer, [task.attempt_messages(first), task.retry_messages(first, "", "")], kwargs
    )
    turns = max(0, retry_len - attempt_len)
    budget = reflection_tokens + retry_tokens + turns
    stored = None
    if stored_attempts is not None:
        column = [ex.get(stored_attempts) for ex in examples] if isinstance(examples, list) else None
        stored = [s if isinstance(s, str) else "" for s in (column or examples[stored_attempts])]
    # pass 1: an upper bound from byte lengths; rows that may not fit are tokenized in pass 2
    maybe: list[tuple[int, str]] = []
    for start in range(0, n, _BATCH):
        rows = _rows(examples, start, min(n, start + _BATCH))
        texts = _render(tokenizer, [_attempt_messages(task, row) for row in rows], kwargs)
        for offset, text in enumerate(texts):
            i = start + offset
            attempt = _byte_bound(stored[i]) if stored is not None else attempt_tokens
            if _byte_bound(text) + attempt + budget > limit:
                maybe.append((i, text))
    bad: list[tuple[int, int, int]] = []
    for start in range(0, len(maybe), _BATCH):
        chunk = maybe[start : start + _BATCH]
        prompt_lens = _text_lengths(tokenizer, [text for _, text in chunk])
        attempt_lens = _text_lengths(tokenizer, [stored[i] for i, _ in chunk]) if stored is not None else None
        for k, (i, _) in enumerate(chunk):
            attempt = attempt_lens[k] if attempt_lens is not None else attempt_tokens
            # the first attempt itself (prompt + its budget) is always shorter than this retry total
            total = prompt_lens[k] + attempt + budget
            if total > limit:
                bad.append((i, prompt_lens[k], total))
    if not bad:
        return examples
    i, prompt_len, total = bad[0]
    attempt_part = "its stored attempt" if stored is not None else f"attempt_max_tokens {attempt_tokens}"
    others = ", ".join(f"row {j} ({t})" for j, _, t in bad[1:_QUOTED]) + (" and more" if len(bad) > _QUOTED else "")
    summary = (
        f"{len(bad)} of {n} rows can exceed the model's context of {limit} tokens ({where}): row {i}'s retry reaches "
        f"{total} tokens (first-attempt prompt {prompt_len} + {attempt_part} + reflection budget {reflection_tokens} "
        f"+ {turns} template tokens + retry budget {retry_tokens})" + (f"; also {others}" if others else "")
    )
    fix = (
        "Shorten or remove those rows, lower the token budgets, or use a model with a longer context. Rows count from "
        "0 in the loaded dataset"
    )
    return drop_or_raise(examples, [j for j, _, _ in bad], summary, on_bad_row, fix)


def check_generator_context(task: Task, generator, examples: Sequence[dict], config: EpisodeConfig) -> None:
    """Evaluation and mining: every example's worst-case episode fits the generator's model
    (``EpisodeConfig.check_fits``).

    Endpoints (no local tokenizer) are not checked: the server enforces its own limit and says so. Rows are never
    skipped here (that would change what an accuracy is over), so a row that cannot fit is an error.
    """
    tokenizer = getattr(generator, "tokenizer", None)
    if tokenizer is None or not examples:
        return
    limit, where = _generator_limit(generator, tokenizer)
    if limit is None:
        return
    check_context_lengths(
        task,
        tokenizer,
        list(examples),
        config,
        limit,
        where,
        chat_template_kwargs=getattr(generator, "chat_template_kwargs", None) or {},
        on_bad_row="error",
    )


def _generator_limit(generator, tokenizer) -> tuple[int | None, str]:
    llm = getattr(generator, "llm", None)
    if llm is not None:  # vLLM: the engine's own max_model_len is what it enforces
        try:
            return int(llm.llm_engine.model_config.max_model_len), "vLLM max_model_len"
        except Exception:  # an engine without that attribute path: fall back to the config below
            pass
    model = getattr(generator, "model", None)
    config = getattr(model, "config", None)
    name = getattr(config, "_name_or_path", None) or "the model"
    return context_limit(config, tokenizer, name)


# ------------------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------------------
def _attempt_messages(task: Task, row: dict):
    """The row's first-attempt messages: the rendered ``prompt`` column when training data has one, else the task's."""
    prompt = row.get("prompt")
    return prompt if isinstance(prompt, list) and prompt else task.attempt_messages(row)


def _rows(examples, start: int, stop: int) -> list[dict]:
    if isinstance(examples, list):
        return [dict(ex) for ex in examples[start:stop]]
    batch = examples[start:stop]  # a Dataset slice: one columnar read, not one __getitem__ per row
    columns = list(batch)
    return [dict(zip(columns, values)) for values in zip(*(batch[c] for c in columns))]


def _render(tokenizer, conversations: list, chat_template_kwargs: dict) -> list[str]:
    """Conversations as the text ``render_chat`` tokenizes (with the generation prompt)."""
    if not conversations:
        return []
    return tokenizer.apply_chat_template(
        conversations, tokenize=False, add_generation_prompt=True, **chat_template_kwargs
    )


def _token_lengths(tokenizer, conversations: list, chat_template_kwargs: dict) -> list[int]:
    return _text_lengths(tokenizer, _render(tokenizer, conversations, chat_template_kwargs))


def _byte_bound(text: str) -> int:
    """An upper bound on the tokens of ``text`` under any tokenizer (see ``check_prompt_lengths``)."""
    return len(text.encode("utf-8", errors="replace")) + _BYTE_BOUND_SLACK


def _text_lengths(tokenizer, texts: list[str]) -> list[int]:
    if not texts:
        return []
    encoded = tokenizer(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]
    return [len(ids) for ids in encoded]


def drop_or_raise(dataset, bad: list[int], summary: str, on_bad_row: str, fix: str):
    """Raise ``TaskDataError`` (summary + fix) unless ``on_bad_row`` is ``"skip"``; then drop ``bad`` (from a
    ``Dataset`` or a list) and warn with the count."""
    if on_bad_row != "skip":
        raise TaskDataError(one_line(f"{summary}. {fix}"))
    if len(bad) == len(dataset):
        raise TaskDataError(one_line(f"{summary}: every row. {fix}"))
    logger.warning("on_bad_row=skip: skipped %s", summary)
    drop = set(bad)
    keep = [i for i in range(len(dataset)) if i not in drop]
    return [dataset[i] for i in keep] if isinstance(dataset, list) else dataset.select(keep)
