"""Any OpenAI-compatible chat endpoint as a ``Generator`` (``vllm serve``, hosted providers).

Requests go out concurrently (a thread pool: the server batches them), each retried on 429/5xx/timeouts by
``rrr.utils.http.post_json``, which also bounds each request by an overall deadline (``timeout``), refuses bodies
over ``max_response_bytes`` and turns every transport failure into one ``EndpointError``. The API key comes from an
environment variable, is only ever put in a header, and is redacted from every message built from a reply (servers
echo it). Token ids are not available over this API, so generations carry text only — enough for evaluation and
mining.

A reply with no text — ``content: null``, or a refusal (``finish_reason: "content_filter"``) — is an empty
generation, not an error: for evaluation it is a wrong answer like any other, and one filtered prompt must not
abort a run. A reply that is not a chat completion at all (no ``choices[0].message``, content that is not text) is
one ``EndpointError`` quoting it (redacted).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

from rrr.generation.base import Generation, SamplingParams
from rrr.tasks.base import Messages
from rrr.utils.http import MAX_RESPONSE_BYTES, EndpointError, post_json
from rrr.utils.secrets import install_log_redaction, redact, register_secret, snippet

install_log_redaction(["rrr.generation"])


class OpenAIGenerator:
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
        self.url = base_url.rstrip("/") + "/chat/completions"
        # vLLM (and most OpenAI-compatible servers) fill every sampling field a request leaves out from the
        # checkpoint's generation_config (top-k 20, repetition penalty 1.05 ...), so top_k / min_p /
        # repetition_penalty are always sent, neutral or not; only OpenAI's own API rejects those fields.
        if explicit_sampling is None:
            explicit_sampling = urlparse(base_url).hostname != "api.openai.com"
        self.explicit_sampling = explicit_sampling
        self.model = model
        self.api_key_env = api_key_env
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_response_bytes = max_response_bytes

    def _key(self) -> str | None:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if not key or not key.strip():
            return None
        register_secret(key)  # before any request: whatever echoes it from now on is redacted
        return key.strip()

    def _one(self, conversation: Messages, params: SamplingParams) -> Generation:
        payload = {
            "model": self.model,
            "messages": conversation,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.seed is not None:
            payload["seed"] = params.seed
        if self.explicit_sampling:
            payload.update(params.filters())
        key = self._key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            response = post_json(
                self.url,
                payload,
                headers,
                timeout=self.timeout,
                max_retries=self.max_retries,
                backoff=self.backoff,
                max_response_bytes=self.max_response_bytes,
            )
        except EndpointError as exc:
            raise EndpointError(redact(exc, [key])) from None
        choices = response.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
            parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
            content = "".join(parts) if all(isinstance(p, str) for p in parts) else content
        if not isinstance(message, dict) or not (content is None or isinstance(content, str)):
            raise EndpointError(f"{self.url} returned an unexpected response: {snippet(response, [key])}") from None
        # the key this process holds never reaches samples.jsonl, even from a server that echoes it into a reply
        text = redact(content or "", [key], patterns=False)
        return Generation(text=text, truncated=choice.get("finish_reason") == "length")

    def generate(self, conversations: list[Messages], params: SamplingParams) -> list[Generation]:
        if not conversations:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(conversations))) as pool:
            return list(pool.map(lambda c: self._one(c, params), conversations))
