"""Teachers: anything that can solve, journal, distill and reflect — a hosted LLM, a local model, or an offline oracle.

The curriculum pipeline needs five operations from a teacher, all in text:

* ``solve(task, example, strategy)`` — a completion for the task's own first-attempt prompt, using the strategy;
* ``journal(task, strategy, batch_results)`` — a journal entry about a verified batch (Linguistic RL's reflection);
* ``distill(task, journal_text, strategy)`` — a new strategy from the recent journal;
* ``reflect(task, example, attempt, verdict)`` — the self-reflection a student should write after a failed attempt;
* ``retry(task, example, attempt, reflection)`` — a second attempt with that reflection in context.

``LLMTeacher`` implements them with prompts (``rrr.curriculum.prompts``) over one method, ``complete(messages,
temperature, max_tokens) -> str``; ``OpenAICompatibleTeacher``, ``AnthropicTeacher`` and ``HFTeacher`` implement
``complete`` for an HTTP endpoint or a local model — a new backend is ~10 lines. ``OracleTeacher`` needs no model and
no network: it solves with ``task.worked_solution`` and writes lessons from the task's own solver, so the whole
pipeline runs offline (tests, CI, the smoke demo).

Why every request goes through a **disk cache**: a curriculum run makes hundreds of teacher calls that cost money and
minutes, and a crash at stage 3, or a change to the SFT settings, must not pay for stage 1 again. Each request is keyed
by the sha256 of (teacher kind, endpoint, model, messages, sampling parameters) — the endpoint because two servers
can serve different weights under one model name — and its reply is written atomically to
``<cache_dir>/<key[:2]>/<key>.json``; a re-run with the same inputs makes zero calls (``usage.calls`` counts the
requests actually sent). (Caches written before the endpoint joined the key are not read: one re-run pays again.)

What is **not** cached, because caching it would make one bad moment permanent: a refusal (``finish_reason:
"content_filter"``, Anthropic's ``"refusal"``), a ``null`` or missing content, a model's empty reply (the oracle's
is deterministic, so it is cached), and a reply over ``TeacherCache.max_entry_chars``. A refusal or an empty reply is not an error — one filtered prompt must not stop a
run of hundreds — it is used as ``""`` for this run (a failed solution, a dropped reflection, a kept strategy), counted
in ``usage.empty_replies`` (shown by ``usage_report``) with a warning, and asked again by the next run.

Replies are cached, API keys never are: keys are read from the environment at call time, sent only in request
headers, and redacted at the source (``rrr.utils.secrets``) from every warning, exception and file, even when a
server echoes them back.

Token usage comes from each response's ``usage`` field (a malformed one — not an object, strings, negative numbers —
counts as unknown, in ``usage.unknown_usage``, rather than failing the call) and is tallied with an *estimated* cost from
``PRICES_PER_MTOK`` (USD per million tokens, list prices as of 2025; a model missing from the table reports None).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

from rrr.curriculum import prompts
from rrr.tasks.base import Example, Messages, Task, Verdict
from rrr.utils.http import MAX_RESPONSE_BYTES, EndpointError, EndpointPolicy
from rrr.utils.io import atomic_write_json
from rrr.utils.secrets import install_log_redaction, redact, snippet

logger = logging.getLogger("rrr.curriculum")
install_log_redaction(["rrr.curriculum"])

#: Estimated list prices in USD per million (input, output) tokens, matched by the longest prefix of the model name
#: (a provider prefix such as ``openai/`` is ignored). Estimates only: check your provider's current prices.
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-opus-4": (15.00, 75.00),
}

#: Bumped when the oracle's texts change, so cached oracle replies from an older version are not reused.
ORACLE_VERSION = 1
#: A journal prompt shows each example's problem and answer cut to this many characters.
_JOURNAL_TEXT_CHARS = 1_500

TEACHER_SPECS = ("oracle", "openai:<model>@<base_url>", "anthropic:<model>", "hf:<model name or path>")


class TeacherError(ValueError):
    """A teacher cannot be built or used (bad spec, missing base URL or API key, malformed reply)."""


def price_for(model: str) -> tuple[float, float] | None:
    """``(input, output)`` USD per million tokens for ``model`` from ``PRICES_PER_MTOK``, or None if unknown."""
    name = model.lower().rsplit("/", 1)[-1]
    matches = [prefix for prefix in PRICES_PER_MTOK if name.startswith(prefix)]
    return PRICES_PER_MTOK[max(matches, key=len)] if matches else None


@dataclass
class TeacherUsage:
    """What a teacher cost this run. ``calls`` are requests actually made; cache hits cost nothing."""

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Refusals, null and empty replies: used as "" this run, never cached.
    empty_replies: int = 0
    #: Responses whose ``usage`` was missing or malformed (their tokens are not in the totals or the cost).
    unknown_usage: int = 0


class UncachedReply(str):
    """A reply to use once but never cache: a refusal or a missing/empty content. ``reason`` says which.

    ``complete`` implementations return one (``UncachedReply("", "content_filter")``) so the caching layer needs no
    knowledge of each API's finish reasons; an empty plain string is treated the same way.
    """

    reason: str

    def __new__(cls, text: str = "", reason: str = "empty reply") -> UncachedReply:
        reply = super().__new__(cls, text)
        reply.reason = reason
        return reply


@dataclass
class SolveResult:
    """One verified teacher solution (a row of the self-improvement log and a candidate SFT completion)."""

    example: Example
    completion: str
    verdict: Verdict
    strategy_version: int = 0

    @property
    def passed(self) -> bool:
        return self.verdict.passed


# ----------------------------------------------------------------------------------------------------------------
# Cache
# ----------------------------------------------------------------------------------------------------------------
class TeacherCache:
    """Replies on disk, one JSON file per request key, each written atomically (complete or absent).

    A file that cannot be read (hand-edited, disk trouble) is a cache miss with a warning, never a crash. A reply
    longer than ``max_entry_chars`` is not written (and a file too big to hold an entry is not read): no real
    teacher reply is that long, and a runaway one must not be replayed into every later run.
    """

    #: The longest reply that is cached (about 250k tokens; ``max_tokens`` makes real replies far shorter).
    DEFAULT_MAX_ENTRY_CHARS = 1_000_000

    def __init__(self, directory: str, max_entry_chars: int = DEFAULT_MAX_ENTRY_CHARS):
        self.directory = os.path.abspath(os.path.expanduser(directory))
        self.max_entry_chars = max_entry_chars

    @staticmethod
    def key(request: dict[str, Any]) -> str:
        payload = json.dumps(request, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def path(self, key: str) -> str:
        return os.path.join(self.directory, key[:2], f"{key}.json")

    def get(self, key: str) -> str | None:
        path = self.path(key)
        if not os.path.exists(path):
            return None
        try:
            # the request (messages) is stored beside the text, hence the allowance; 4 bytes per char at most
            if os.path.getsize(path) > 4 * self.max_entry_chars + 16 * 1024 * 1024:
                raise ValueError(f"file over the size cap of {self.max_entry_chars:,} characters")
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
            text = record["text"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
            return text
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring unreadable teacher cache file %s (%s)", path, exc)
            return None

    def put(self, key: str, request: dict[str, Any], text: str) -> bool:
        """Write one entry; False (nothing written) when ``text`` is over ``max_entry_chars``."""
        if len(text) > self.max_entry_chars:
            logger.warning(
                "not caching a %s-character teacher reply (over the %s-character cap)",
                f"{len(text):,}",
                f"{self.max_entry_chars:,}",
            )
            return False
        atomic_write_json(self.path(key), {"request": request, "text": str(text)})
        return True


# ----------------------------------------------------------------------------------------------------------------
# Base class
# ----------------------------------------------------------------------------------------------------------------
class Teacher(ABC):
    """The five operations the curriculum needs, plus caching and usage accounting shared by every teacher.

    Subclasses set ``kind`` and ``model`` and implement the operations; batched variants (``solve_many``, ...) loop
    by default and are overridden where a backend can batch or run requests concurrently.
    """

    kind: ClassVar[str] = "teacher"
    #: Local teachers cost nothing per token; hosted ones look their model up in ``PRICES_PER_MTOK``.
    local: ClassVar[bool] = False
    #: Whether an empty reply is cached like any other. Not for models (an empty reply is a glitch, a filter or a
    #: server fault that the next run should retry); yes for the oracle, whose "" is a deterministic function of the
    #: task (no worked solution), so a re-run still makes zero calls.
    cache_empty_replies: ClassVar[bool] = True

    def __init__(self, *, cache_dir: str | None = None, price_per_mtok: tuple[float, float] | None = None):
        self.model: str = ""
        self.cache = TeacherCache(cache_dir) if cache_dir else None
        self.price_per_mtok = price_per_mtok
        self.usage = TeacherUsage()
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()
        self._warned_empty = False

    # ------------------------------------------------------------------------------------------------ identity
    @property
    def spec(self) -> str:
        """The teacher as a ``make_teacher`` spec (safe to log and save: never contains a key)."""
        return f"{self.kind}:{self.model}"

    def cache_identity(self) -> dict[str, Any]:
        """What, besides messages and sampling, decides a reply: part of every cache key.

        HTTP teachers add their endpoint (two servers may serve different weights under one model name); a local
        model adds its adapter. Fields are only ever added when set, so keys of teachers without them stay stable.
        """
        return {"kind": self.kind, "model": self.model}

    def set_cache_dir(self, directory: str | None) -> None:
        """Use ``directory`` for the disk cache (the pipeline sets ``<output_dir>/teacher_cache`` when none is set)."""
        self.cache = TeacherCache(directory) if directory else None

    def estimated_cost_usd(self) -> float | None:
        """Estimated cost of the calls made so far: 0 for local teachers, None when the price is unknown."""
        if self.local:
            return 0.0
        price = self.price_per_mtok or price_for(self.model)
        if price is None:
            return None
        return (self.usage.prompt_tokens * price[0] + self.usage.completion_tokens * price[1]) / 1e6

    def usage_report(self) -> dict[str, Any]:
        cost = self.estimated_cost_usd()
        return {
            "teacher": self.spec,
            "calls": self.usage.calls,
            "cache_hits": self.usage.cache_hits,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "empty_replies": self.usage.empty_replies,
            "unknown_usage": self.usage.unknown_usage,
            "estimated_cost_usd": None if cost is None else round(cost, 4),
        }

    def record_usage(self, prompt_tokens: Any, completion_tokens: Any) -> None:
        """Add one response's token counts to the tally (thread-safe).

        Counts come from servers, so anything but a non-negative int (None, a string, a negative number, a bool)
        is unknown: it adds 0 and is counted in ``usage.unknown_usage``.
        """
        prompt, completion = _token_count(prompt_tokens), _token_count(completion_tokens)
        with self._lock:
            self.usage.prompt_tokens += prompt or 0
            self.usage.completion_tokens += completion or 0
            if prompt is None or completion is None:
                self.usage.unknown_usage += 1

    def record_usage_block(self, usage: Any, prompt_field: str, completion_field: str) -> None:
        """``record_usage`` from a response's ``usage`` object, whatever shape the server sent."""
        if not isinstance(usage, dict):
            usage = {}
        self.record_usage(usage.get(prompt_field), usage.get(completion_field))

    # ------------------------------------------------------------------------------------------------- caching
    def _cached(
        self,
        requests: Sequence[tuple[Messages, dict[str, Any]]],
        compute: Callable[[list[tuple[Messages, dict[str, Any]]]], Sequence[str | BaseException]],
    ) -> list[str]:
        """Replies to ``requests`` (``(messages, params)`` pairs): from memory, the disk cache, or ``compute``.

        ``compute`` receives only the misses (duplicates within the batch once) and returns one text per miss, or the
        exception of a miss that failed (the other replies are cached, then the first failure is raised).
        """
        keyed = []
        identity = self.cache_identity()
        for messages, params in requests:
            request = {**identity, "messages": messages, "params": params}
            keyed.append((TeacherCache.key(request), request))
        replies: dict[str, str] = {}
        missing: dict[str, dict[str, Any]] = {}
        for key, request in keyed:
            if key in replies or key in missing:
                continue
            text = self._memory.get(key)
            if text is None and self.cache is not None:
                text = self.cache.get(key)
            if text is None:
                missing[key] = request
            else:
                replies[key] = text
        with self._lock:
            self.usage.cache_hits += len(requests) - len(missing)
        if missing:
            order = list(missing)
            texts = compute([(missing[k]["messages"], missing[k]["params"]) for k in order])
            if len(texts) != len(order):
                raise TeacherError(f"{self.spec} returned {len(texts)} replies for {len(order)} requests")
            with self._lock:
                self.usage.calls += len(order)
            # Cache every reply that came back before raising the first failure: a re-run then pays only for the
            # requests that failed, not for the whole batch again.
            failure: BaseException | None = None
            for key, text in zip(order, texts):
                if isinstance(text, BaseException):
                    failure = failure or text
                    continue
                if not isinstance(text, str):
                    raise TeacherError(f"{self.spec} returned a {type(text).__name__}, not text")
                if isinstance(text, UncachedReply) or (not self.cache_empty_replies and not text.strip()):
                    self._empty_reply(getattr(text, "reason", "empty reply"))
                    replies[key] = str(text)  # used this run; the next run asks again
                    continue
                text = redact(text, patterns=False)  # a server that echoes the key into a reply: not into a file
                replies[key] = text
                if self.cache is None or self.cache.put(key, missing[key], text):
                    self._memory[key] = text
            if failure is not None:
                raise failure
        return [replies[key] for key, _ in keyed]

    def _empty_reply(self, reason: str) -> None:
        with self._lock:
            self.usage.empty_replies += 1
            first = not self._warned_empty
            self._warned_empty = True
        if first:
            logger.warning(
                "%s gave a reply with no usable text (%s): used as an empty reply, not cached; further ones are "
                "counted in the teacher usage (empty_replies)",
                self.spec,
                reason,
            )

    # ---------------------------------------------------------------------------------------------- operations
    def initial_strategy(self, task: Task) -> str:
        return prompts.initial_strategy(task)

    @abstractmethod
    def solve(self, task: Task, example: Example, strategy: str) -> str:
        """A completion for ``task.attempt_messages(example)`` that follows ``strategy``."""

    @abstractmethod
    def journal(self, task: Task, strategy: str, batch_results: Sequence[SolveResult]) -> str:
        """A journal entry about one verified batch: what worked, what failed, edge cases, improvements."""

    @abstractmethod
    def distill(self, task: Task, journal_text: str, strategy: str) -> str:
        """A new strategy (replacing ``strategy``) distilled from the recent journal."""

    @abstractmethod
    def reflect(self, task: Task, example: Example, attempt: str, verdict: Verdict) -> str:
        """The self-reflection a student should write after the failed ``attempt`` (a lesson, not the answer)."""

    @abstractmethod
    def retry(self, task: Task, example: Example, attempt: str, reflection: str) -> str:
        """A second attempt with ``reflection`` in context (``task.retry_messages``)."""

    def solve_many(self, task: Task, examples: Sequence[Example], strategy: str) -> list[str]:
        return [self.solve(task, ex, strategy) for ex in examples]

    def reflect_many(self, task: Task, items: Sequence[tuple[Example, str, Verdict]]) -> list[str]:
        return [self.reflect(task, ex, attempt, verdict) for ex, attempt, verdict in items]

    def retry_many(self, task: Task, items: Sequence[tuple[Example, str, str]]) -> list[str]:
        return [self.retry(task, ex, attempt, reflection) for ex, attempt, reflection in items]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


# ----------------------------------------------------------------------------------------------------------------
# LLM teachers
# ----------------------------------------------------------------------------------------------------------------
class LLMTeacher(Teacher):
    """A teacher whose operations are prompts to a chat model; subclasses implement ``complete``.

    ``temperature`` (default 0: the Linguistic RL teacher is greedy, and greedy replies are what make caching
    faithful) and ``max_tokens`` apply to every request. ``concurrency`` requests run at once in ``*_many`` calls
    (HTTP teachers; ``HFTeacher`` batches instead).
    """

    #: Examples shown in a journal prompt (failures first); Linguistic RL shows 5.
    journal_examples: int = 5
    cache_empty_replies = False

    def __init__(
        self,
        *,
        temperature: float = 0.0,
        max_tokens: int = 1024,
        concurrency: int = 1,
        cache_dir: str | None = None,
        price_per_mtok: tuple[float, float] | None = None,
    ):
        super().__init__(cache_dir=cache_dir, price_per_mtok=price_per_mtok)
        if temperature < 0:
            raise TeacherError(f"temperature must be >= 0, got {temperature}")
        if max_tokens < 1:
            raise TeacherError(f"max_tokens must be >= 1, got {max_tokens}")
        if concurrency < 1:
            raise TeacherError(f"concurrency must be >= 1, got {concurrency}")
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.concurrency = int(concurrency)

    @abstractmethod
    def complete(self, messages: Messages, temperature: float, max_tokens: int) -> str:
        """One uncached chat completion. Implementations report token counts with ``record_usage``."""

    def complete_batch(
        self, conversations: list[Messages], temperature: float, max_tokens: int
    ) -> list[str | Exception]:
        """Uncached completions of several conversations (concurrently when ``concurrency > 1``).

        With concurrency, a failed request is returned as its exception (the caller caches the others, then raises).
        """
        if self.concurrency == 1 or len(conversations) == 1:
            return [self.complete(m, temperature, max_tokens) for m in conversations]

        def one(messages: Messages) -> str | Exception:
            try:
                return self.complete(messages, temperature, max_tokens)
            except Exception as exc:  # returned, so the replies that did succeed are still cached
                return exc

        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(conversations))) as pool:
            return list(pool.map(one, conversations))

    def ask(self, conversations: Sequence[Messages]) -> list[str]:
        """Cached completions of ``conversations`` with this teacher's sampling parameters."""
        params = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        return self._cached(
            [(list(m), params) for m in conversations],
            lambda missing: self.complete_batch([m for m, _ in missing], self.temperature, self.max_tokens),
        )

    # ---------------------------------------------------------------------------------------------- operations
    def solve(self, task: Task, example: Example, strategy: str) -> str:
        return self.solve_many(task, [example], strategy)[0]

    def solve_many(self, task: Task, examples: Sequence[Example], strategy: str) -> list[str]:
        return self.ask([prompts.solve_messages(task, ex, strategy) for ex in examples])

    def journal(self, task: Task, strategy: str, batch_results: Sequence[SolveResult]) -> str:
        correct = sum(r.passed for r in batch_results)
        shown = _journal_examples(batch_results, self.journal_examples)
        examples = "\n\n".join(
            prompts.JOURNAL_EXAMPLE.format(
                i=i,
                status="CORRECT" if r.passed else "WRONG",
                reason=r.verdict.reason,
                problem=_clip(task.attempt_prompt(r.example)),
                answer=_clip(r.completion),
            )
            for i, r in enumerate(shown, 1)
        )
        prompt = prompts.JOURNAL_PROMPT.format(
            task=task.name,
            strategy=strategy,
            n=len(batch_results),
            correct=correct,
            accuracy=correct / max(1, len(batch_results)),
            examples=examples,
        )
        return self.ask([[{"role": "user", "content": prompt}]])[0].strip()

    def distill(self, task: Task, journal_text: str, strategy: str) -> str:
        prompt = prompts.DISTILL_PROMPT.format(task=task.name, journal=journal_text, strategy=strategy)
        text = self.ask([[{"role": "user", "content": prompt}]])[0].strip()
        if not text:
            logger.warning("%s distilled an empty strategy; keeping the current one", self.spec)
            return strategy
        return text

    def reflect(self, task: Task, example: Example, attempt: str, verdict: Verdict) -> str:
        return self.reflect_many(task, [(example, attempt, verdict)])[0]

    def reflect_many(self, task: Task, items: Sequence[tuple[Example, str, Verdict]]) -> list[str]:
        conversations = []
        for example, attempt, verdict in items:
            # The verifier's note helps the tutor name the mistake, unless it would hand over the answer.
            leaky = not verdict.reason or task.leaks_answer(example, verdict.reason)
            note = "" if leaky else f" (verifier's note: {verdict.reason})"
            conversations.append(
                prompts.with_system(
                    prompts.REFLECT_SYSTEM.format(note=note), task.reflection_messages(example, attempt)
                )
            )
        return [text.strip() for text in self.ask(conversations)]

    def retry(self, task: Task, example: Example, attempt: str, reflection: str) -> str:
        return self.retry_many(task, [(example, attempt, reflection)])[0]

    def retry_many(self, task: Task, items: Sequence[tuple[Example, str, str]]) -> list[str]:
        return self.ask([task.retry_messages(ex, attempt, reflection) for ex, attempt, reflection in items])


def _journal_examples(results: Sequence[SolveResult], k: int) -> list[SolveResult]:
    """Failures first (they carry the lessons), then successes, at most ``k``."""
    failed = [r for r in results if not r.passed]
    passed = [r for r in results if r.passed]
    return (failed + passed)[:k]


def _clip(text: str, limit: int = _JOURNAL_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _token_count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class OpenAICompatibleTeacher(LLMTeacher):
    """Any OpenAI-compatible chat endpoint: ``vllm serve``, SGLang, llama.cpp server, OpenAI, Together, OpenRouter ...

    ``base_url`` is the API root (``http://localhost:8000/v1``; a trailing ``/chat/completions`` is accepted). Requests
    go through ``rrr.generation.openai.OpenAIChatClient`` — the client evaluation uses for a served student: the
    official ``openai`` SDK, retrying 429, 5xx, connection errors and timeouts (honouring ``Retry-After``), under
    rrr's per-attempt deadline and size cap. The key is read from the environment variable ``api_key_env`` at each
    call; when it is unset no ``Authorization`` header is sent (a local ``vllm serve`` needs none).
    """

    kind = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        *,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        concurrency: int = 4,
        temperature: float = 0.0,
        max_tokens: int = 1024,
        cache_dir: str | None = None,
        price_per_mtok: tuple[float, float] | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ):
        super().__init__(
            temperature=temperature,
            max_tokens=max_tokens,
            concurrency=concurrency,
            cache_dir=cache_dir,
            price_per_mtok=price_per_mtok,
        )
        if not base_url or not isinstance(base_url, str):
            raise TeacherError(
                "OpenAICompatibleTeacher needs a base_url, e.g. http://localhost:8000/v1 for `vllm serve` or "
                "https://api.openai.com/v1 (spec: openai:<model>@<base_url>)"
            )
        if not re.match(r"^https?://", base_url):
            raise TeacherError(f"base_url must start with http:// or https://, got {base_url!r}")
        if not model:
            raise TeacherError("OpenAICompatibleTeacher needs a model name (spec: openai:<model>@<base_url>)")
        from rrr.generation.openai import OpenAIChatClient

        self.client = OpenAIChatClient(
            base_url,
            api_key_env,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_response_bytes=max_response_bytes,
        )
        self.base_url = self.client.base_url
        self.model = model
        self.api_key_env = api_key_env

    @property
    def spec(self) -> str:
        return f"openai:{self.model}@{self.base_url}"

    def cache_identity(self) -> dict[str, Any]:
        return {**super().cache_identity(), "endpoint": self.base_url}

    def complete(self, messages: Messages, temperature: float, max_tokens: int) -> str:
        from rrr.generation.openai import parse_chat_completion

        response, key = self.client.chat(messages, model=self.model, temperature=temperature, max_tokens=max_tokens)
        reply = parse_chat_completion(response, self.client.url, key)
        self.record_usage_block(reply.usage, "prompt_tokens", "completion_tokens")
        if reply.finish_reason == "content_filter":
            return UncachedReply(reply.text or "", "refused: finish_reason content_filter")
        if reply.text is None:
            return UncachedReply("", "null content")
        return reply.text


class AnthropicTeacher(LLMTeacher):
    """Claude through the Anthropic Messages API, with the official ``anthropic`` SDK (``rrr.generation.anthropic``).

    The same guarantees as the OpenAI-compatible teacher (retries, per-attempt deadline, size cap, key hygiene,
    loopback tests). The key is read from ``api_key_env`` at the first uncached call, so a fully cached re-run needs
    no key (and no SDK).
    """

    kind = "anthropic"

    def __init__(
        self,
        model: str,
        api_key_env: str = "ANTHROPIC_API_KEY",
        *,
        base_url: str = "https://api.anthropic.com",
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        concurrency: int = 4,
        temperature: float = 0.0,
        max_tokens: int = 1024,
        cache_dir: str | None = None,
        price_per_mtok: tuple[float, float] | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ):
        super().__init__(
            temperature=temperature,
            max_tokens=max_tokens,
            concurrency=concurrency,
            cache_dir=cache_dir,
            price_per_mtok=price_per_mtok,
        )
        if not model:
            raise TeacherError("AnthropicTeacher needs a model name, e.g. anthropic:claude-3-5-haiku-20241022")
        from rrr.generation.anthropic import AnthropicClient

        policy = EndpointPolicy(
            timeout=timeout, max_retries=max_retries, backoff=backoff, max_response_bytes=max_response_bytes
        )
        self.client = AnthropicClient(base_url, policy)
        self.base_url = self.client.base_url
        self.model = model
        self.api_key_env = api_key_env

    def cache_identity(self) -> dict[str, Any]:
        return {**super().cache_identity(), "endpoint": self.base_url}

    def complete(self, messages: Messages, temperature: float, max_tokens: int) -> str:
        from rrr.generation.openai import api_key_from_env

        key = api_key_from_env(self.api_key_env)
        if not key:
            raise TeacherError(f"AnthropicTeacher needs an API key in the environment variable {self.api_key_env}")
        try:
            response = self.client.chat(messages, key, model=self.model, max_tokens=max_tokens, temperature=temperature)
        except ImportError as exc:
            raise TeacherError(str(exc)) from None
        url = self.client.url
        blocks = response.get("content")
        if not isinstance(blocks, list):
            raise EndpointError(f"{url} returned no content blocks: {snippet(response, [key])}")
        texts = [b.get("text") for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
        if not all(isinstance(t, str) for t in texts):
            raise EndpointError(f"{url} returned text blocks without text: {snippet(blocks, [key])}")
        self.record_usage_block(response.get("usage"), "input_tokens", "output_tokens")
        text = redact("".join(texts), [key], patterns=False)
        if response.get("stop_reason") == "refusal":
            return UncachedReply(text, "refused: stop_reason refusal")
        return text


class HFTeacher(LLMTeacher):
    """A local ``transformers`` model as the teacher (through ``rrr.generation.HFGenerator``).

    The model is loaded at the first uncached request, so a cached re-run never loads it. Conversations of one
    operation are generated as one batch (``batch_size`` at a time).
    """

    kind = "hf"
    local = True

    def __init__(
        self,
        model_name_or_path: str,
        *,
        adapter: str | None = None,
        batch_size: int = 16,
        device: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 1024,
        cache_dir: str | None = None,
    ):
        super().__init__(temperature=temperature, max_tokens=max_tokens, cache_dir=cache_dir)
        if not model_name_or_path:
            raise TeacherError("HFTeacher needs a model name or path (spec: hf:<model>)")
        self.model = model_name_or_path
        self.adapter = adapter
        self.batch_size = batch_size
        self.device = device
        self._generator = None

    def cache_identity(self) -> dict[str, Any]:
        identity = super().cache_identity()
        return {**identity, "adapter": self.adapter} if self.adapter else identity

    def _load(self):
        if self._generator is None:
            from rrr.generation import HFGenerator
            from rrr.models import load_model_and_tokenizer

            model, tokenizer = load_model_and_tokenizer(self.model, adapter=self.adapter, device=self.device)
            self._generator = HFGenerator(model, tokenizer, batch_size=self.batch_size)
        return self._generator

    def complete(self, messages: Messages, temperature: float, max_tokens: int) -> str:
        return self.complete_batch([messages], temperature, max_tokens)[0]

    def complete_batch(self, conversations: list[Messages], temperature: float, max_tokens: int) -> list[str]:
        from rrr.generation import SamplingParams

        generations = self._load().generate(
            conversations, SamplingParams(max_new_tokens=max_tokens, temperature=temperature)
        )
        for g in generations:
            self.record_usage(len(g.prompt_ids), len(g.token_ids))
        return [g.text for g in generations]


# ----------------------------------------------------------------------------------------------------------------
# Oracle
# ----------------------------------------------------------------------------------------------------------------
class OracleTeacher(Teacher):
    """An offline teacher that knows the answers: the task's solver writes the solutions and the lessons.

    * ``solve`` = ``task.worked_solution(example)`` (reasoning + an answer that passes ``verify``);
    * ``reflect`` = a lesson derived from the verdict and the solver that names the mistake without stating the answer
      (``rrr.curriculum.oracle.oracle_reflection``); ``retry`` = the worked solution;
    * ``journal`` / ``distill`` = deterministic summaries of the batch and the task's procedure
      (``Task.oracle_procedure``), so stage 1 produces real artifacts offline.

    Its operations go through the same cache as an LLM's (``usage.calls`` counts computed operations), so the
    "a re-run makes no new teacher calls" property is tested on the path every teacher takes.
    """

    kind = "oracle"
    local = True

    def __init__(self, task: Task | None = None, *, cache_dir: str | None = None):
        super().__init__(cache_dir=cache_dir)
        self.task = task
        self.model = task.name if task is not None else "any"
        self._warned_unsolvable = False

    @property
    def spec(self) -> str:
        return "oracle"

    def _op(self, task: Task, op: str, content: Any, compute: Callable[[], str]) -> str:
        messages = [{"role": "user", "content": json.dumps(content, sort_keys=True, default=str)}]
        params = {"op": op, "task": repr(task), "version": ORACLE_VERSION}
        return self._cached([(messages, params)], lambda missing: [compute()])[0]

    def solve(self, task: Task, example: Example, strategy: str) -> str:
        def compute() -> str:
            worked = task.worked_solution(example)
            if worked is None:
                if not self._warned_unsolvable:
                    logger.warning(
                        "oracle: task %r has no worked_solution/reference_answer for example %s (and maybe others); "
                        "such examples fail verification and are left out of the curriculum",
                        task.name,
                        task.example_id(example),
                    )
                    self._warned_unsolvable = True
                return "I could not find a solution."
            return worked

        return self._op(task, "solve", {"example": example}, compute)

    def journal(self, task: Task, strategy: str, batch_results: Sequence[SolveResult]) -> str:
        def compute() -> str:
            n = len(batch_results)
            correct = sum(r.passed for r in batch_results)
            lines = [f"Solved {correct}/{n} correctly ({correct / max(1, n):.0%}) with the current strategy."]
            column = task.difficulty_column
            if column:
                by: dict[str, list[bool]] = {}
                for r in batch_results:
                    by.setdefault(str(r.example.get(column)), []).append(r.passed)
                parts = [f"{d} {sum(v)}/{len(v)}" for d, v in sorted(by.items())]
                lines.append("By difficulty: " + ", ".join(parts) + ".")
            from rrr.tasks.parsing import last_answer

            answers = Counter((last_answer(r.completion) or "none")[:40] for r in batch_results)
            if len(answers) <= 6:
                lines.append("Answers given: " + ", ".join(f"{a} x{c}" for a, c in sorted(answers.items())) + ".")
            failures = [r for r in batch_results if not r.passed]
            if failures:
                reasons = Counter(r.verdict.reason for r in failures)
                lines.append("Mistakes: " + "; ".join(f"{reason} (x{c})" for reason, c in reasons.most_common(5)))
            else:
                lines.append("No mistakes: following the procedure step by step worked on every problem.")
            return "\n".join(lines)

        content = {
            "strategy": strategy,
            "results": [(r.example, r.completion, r.verdict.passed) for r in batch_results],
        }
        return self._op(task, "journal", content, compute)

    def distill(self, task: Task, journal_text: str, strategy: str) -> str:
        def compute() -> str:
            procedure = prompts.oracle_procedure(task, strategy)
            pairs = re.findall(r"Solved (\d+)/(\d+)", journal_text)
            if not pairs:
                return procedure
            correct, total = sum(int(a) for a, _ in pairs), sum(int(b) for _, b in pairs)
            return f"{procedure}\n\n(Checked on {total} training problems in the journal: {correct} solved.)"

        return self._op(task, "distill", {"journal": journal_text, "strategy": strategy}, compute)

    def reflect(self, task: Task, example: Example, attempt: str, verdict: Verdict) -> str:
        from rrr.curriculum.oracle import oracle_reflection

        content = {"example": example, "attempt": attempt, "verdict": [verdict.passed, verdict.reason]}
        return self._op(task, "reflect", content, lambda: oracle_reflection(task, example, attempt, verdict))

    def retry(self, task: Task, example: Example, attempt: str, reflection: str) -> str:
        content = {"example": example, "attempt": attempt, "reflection": reflection}
        return self._op(task, "retry", content, lambda: task.worked_solution(example) or "")


# ----------------------------------------------------------------------------------------------------------------
# Specs
# ----------------------------------------------------------------------------------------------------------------
def make_teacher(spec: str | Teacher, *, task: Task | None = None, cache_dir: str | None = None, **options) -> Teacher:
    """Build a teacher from a spec string (a ``Teacher`` is returned as is, with ``cache_dir`` set if given).

    * ``oracle`` — offline, from the task's solver (needs ``task``);
    * ``openai:<model>@<base_url>`` — e.g. ``openai:Qwen/Qwen2.5-72B-Instruct@http://localhost:8000/v1``; without
      ``@<base_url>`` the ``OPENAI_BASE_URL`` environment variable is used; key from ``OPENAI_API_KEY``;
    * ``anthropic:<model>`` — e.g. ``anthropic:claude-3-5-haiku-20241022``; key from ``ANTHROPIC_API_KEY``;
    * ``hf:<model name or path>`` — a local ``transformers`` model.

    ``options`` go to the teacher's constructor (``temperature``, ``max_tokens``, ``concurrency``, ``api_key_env``).
    """
    if isinstance(spec, Teacher):
        if cache_dir:
            spec.set_cache_dir(cache_dir)
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise TeacherError(f"teacher spec must be a non-empty string, one of: {', '.join(TEACHER_SPECS)}")
    spec = spec.strip()
    kind, sep, rest = spec.partition(":")
    if spec == "oracle":
        if task is None:
            raise TeacherError("the oracle teacher needs the task (make_teacher('oracle', task=...))")
        if options:
            raise TeacherError(f"the oracle teacher takes no options, got {sorted(options)}")
        return OracleTeacher(task, cache_dir=cache_dir)
    if kind == "openai" and sep:
        at = rest.rfind("@http")
        model, base_url = (rest[:at], rest[at + 1 :]) if at >= 0 else (rest, os.environ.get("OPENAI_BASE_URL", ""))
        if not base_url:
            raise TeacherError(
                f"teacher spec {spec!r} has no base URL: write openai:<model>@<base_url>, e.g. "
                "openai:gpt-4o-mini@https://api.openai.com/v1 or openai:my-model@http://localhost:8000/v1 (or set "
                "OPENAI_BASE_URL)"
            )
        return OpenAICompatibleTeacher(base_url, model, cache_dir=cache_dir, **options)
    if kind == "anthropic" and sep:
        return AnthropicTeacher(rest, cache_dir=cache_dir, **options)
    if kind == "hf" and sep:
        options.pop("concurrency", None)  # a local model batches instead
        return HFTeacher(rest, cache_dir=cache_dir, **options)
    raise TeacherError(f"unknown teacher spec {spec!r}; use one of: {', '.join(TEACHER_SPECS)}")


__all__ = [
    "PRICES_PER_MTOK",
    "AnthropicTeacher",
    "HFTeacher",
    "LLMTeacher",
    "OpenAICompatibleTeacher",
    "OracleTeacher",
    "SolveResult",
    "Teacher",
    "TeacherCache",
    "TeacherError",
    "TeacherUsage",
    "UncachedReply",
    "make_teacher",
    "price_for",
]
