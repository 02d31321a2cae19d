"""Any OpenAI-compatible chat endpoint (``vllm serve``, hosted providers), through the official ``openai`` SDK.

``OpenAIChatClient`` is the one client for such endpoints: ``OpenAIGenerator`` (evaluation and mining of a served
student) and ``rrr.curriculum.teachers.OpenAICompatibleTeacher`` both send their requests through it. The SDK builds
and retries them; ``rrr.utils.http`` adds an overall deadline per attempt, a response size cap, rrr's retry timing
with a warning per retry, and one ``EndpointError`` line per failure. The API key comes from an environment
variable read at each request, is only ever put in the ``Authorization`` header (none at all when the variable is
unset: a local ``vllm serve`` needs none), and is redacted from every message built from a reply (servers echo it).

``parse_chat_completion`` reads a reply. One with no text — ``content: null``, or a refusal (``finish_reason:
"content_filter"``) — is not an error: for evaluation it is a wrong answer like any other, and one filtered prompt
must not abort a run. A reply that is not a chat completion at all (no ``choices[0].message``, content that is not
text) is one ``EndpointError`` quoting it (redacted). Token ids are not available over this API, so generations carry
text only — enough for evaluation and mining.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import openai

from rrr.generation.base import Generation, SamplingParams
from rrr.tasks.base import Messages
from rrr.utils.http import (
    MAX_RESPONSE_BYTES,
    EndpointError,
    EndpointPolicy,
    RetryHook,
    call_endpoint,
    check_url,
    http_client,
    redact_sdk_logs,
)
from rrr.utils.secrets import install_log_redaction, redact, register_secret, snippet

install_log_redaction(["rrr.generation"])
redact_sdk_logs()


class _OpenAI(RetryHook, openai.OpenAI):
    """The SDK client with rrr's retry timing and warnings (``rrr.utils.http.RetryHook``)."""


def api_key_from_env(env: str | None) -> str | None:
    """The key in ``env`` (registered for redaction the moment it is read), or None when unset or blank."""
    key = os.environ.get(env) if env else None
    if not key or not key.strip():
        return None
    register_secret(key)
    return key.strip()


@dataclass
class ChatReply:
    """The useful part of a chat completion: ``text`` is None for a ``null`` content."""

    text: str | None
    finish_reason: Any
    usage: Any


class OpenAIChatClient:
    """One OpenAI-compatible ``/chat/completions`` endpoint: the SDK under rrr's guarantees (see the module docstring).

    ``base_url`` is the API root (``http://localhost:8000/v1``; a trailing ``/chat/completions`` is accepted). The
    SDK client is built once and shared by the threads that send requests through it.
    """

    def __init__(
        self,
        base_url: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        *,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ):
        check_url(base_url)
        self.base_url = base_url.rstrip("/").removesuffix("/chat/completions")
        self.url = f"{self.base_url}/chat/completions"
        self.api_key_env = api_key_env
        self.policy = EndpointPolicy(
            timeout=timeout, max_retries=max_retries, backoff=backoff, max_response_bytes=max_response_bytes
        )
        self._sdk: openai.OpenAI | None = None
        self._lock = threading.Lock()

    def _client(self) -> openai.OpenAI:
        with self._lock:
            if self._sdk is None:
                self._sdk = _OpenAI(
                    # The key goes per request (read at each call); "unused" only satisfies the SDK's check, and
                    # keeps it from reading OPENAI_API_KEY for an endpoint configured with another variable.
                    api_key="unused",
                    base_url=self.base_url,
                    timeout=self.policy.timeout,
                    max_retries=self.policy.max_retries,
                    http_client=http_client(),
                )
                redact_sdk_logs()
            return self._sdk

    def chat(self, messages: Messages, **params: Any) -> tuple[dict[str, Any], str | None]:
        """POST one chat completion (``params``: ``model``, ``max_tokens``, ``temperature``, ... — fields the SDK
        does not know go in ``extra_body``) and return ``(the reply as JSON, the key used)``."""
        key = api_key_from_env(self.api_key_env)
        auth = {"Authorization": f"Bearer {key}"} if key else {"Authorization": openai.Omit()}
        client = self._client()

        def send() -> dict[str, Any]:
            raw = client.chat.completions.with_raw_response.create(messages=messages, extra_headers=auth, **params)
            return raw.http_response.json()  # an object: checked by the transport

        return call_endpoint(self.url, send, sdk=openai, policy=self.policy, secrets=[key]), key


def parse_chat_completion(response: dict[str, Any], url: str, key: str | None) -> ChatReply:
    """``choices[0]`` of a chat completion; shape errors are one ``EndpointError`` quoting the reply (redacted).

    The text has this process's key removed (``patterns=False``: "Bearer <token>" in a reply about HTTP is content,
    but the key itself never reaches a cache file or ``samples.jsonl``, even from a server that echoes it).
    """
    choices = response.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise EndpointError(f"{url} returned an unexpected response, no choices[0].message: {snippet(response, [key])}")
    content = message.get("content")
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if not all(isinstance(p, str) for p in parts):
            raise EndpointError(
                f"{url} returned an unexpected response, content parts without text: {snippet(content, [key])}"
            )
        content = "".join(parts)
    if content is not None and not isinstance(content, str):
        raise EndpointError(
            f"{url} returned an unexpected response, a {type(content).__name__} as choices[0].message.content: "
            f"{snippet(response, [key])}"
        )
    text = None if content is None else redact(content, [key], patterns=False)
    return ChatReply(text=text, finish_reason=choice.get("finish_reason"), usage=response.get("usage"))


class OpenAIGenerator:
    """A served model as a ``Generator``: requests go out concurrently (a thread pool: the server batches them)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        max_concurrency: int = 16,
        timeout: float = 120.0,
        max_retries: int = 5,
        explicit_sampling: bool | None = None,
        backoff: float = 1.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ):
        if not base_url:
            raise ValueError("the openai backend needs --base-url (e.g. http://localhost:8000/v1)")
        self.client = OpenAIChatClient(
            base_url,
            api_key_env,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_response_bytes=max_response_bytes,
        )
        self.url = self.client.url
        # vLLM (and most OpenAI-compatible servers) fill every sampling field a request leaves out from the
        # checkpoint's generation_config (top-k 20, repetition penalty 1.05 ...), so top_k / min_p /
        # repetition_penalty are always sent, neutral or not; only OpenAI's own API rejects those fields.
        if explicit_sampling is None:
            explicit_sampling = urlparse(base_url).hostname != "api.openai.com"
        self.explicit_sampling = explicit_sampling
        self.model = model
        self.max_concurrency = max_concurrency

    def _one(self, conversation: Messages, params: SamplingParams) -> Generation:
        request: dict[str, Any] = {
            "model": self.model,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.seed is not None:
            request["seed"] = params.seed
        if self.explicit_sampling:
            request["extra_body"] = params.filters()
        response, key = self.client.chat(conversation, **request)
        reply = parse_chat_completion(response, self.url, key)
        return Generation(text=reply.text or "", truncated=reply.finish_reason == "length")

    def generate(self, conversations: list[Messages], params: SamplingParams) -> list[Generation]:
        if not conversations:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(conversations))) as pool:
            return list(pool.map(lambda c: self._one(c, params), conversations))
