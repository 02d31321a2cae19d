"""Any OpenAI-compatible chat endpoint as a ``Generator`` (``vllm serve``, hosted providers).

Requests go out concurrently (a thread pool: the server batches them), each retried on 429/5xx/timeouts by
``rrr.utils.http.post_json``. The API key comes from an environment variable and is only ever put in a header.
Token ids are not available over this API, so generations carry text only — enough for evaluation and mining.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

from rrr.generation.base import Generation, SamplingParams
from rrr.tasks.base import Messages
from rrr.utils.http import EndpointError, post_json


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

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env)
        return {"Authorization": f"Bearer {key}"} if key else {}

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
        response = post_json(self.url, payload, self._headers(), timeout=self.timeout, max_retries=self.max_retries)
        try:
            choice = response["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise EndpointError(f"{self.url} returned an unexpected response: {str(response)[:200]}") from None
        return Generation(text=text, truncated=choice.get("finish_reason") == "length")

    def generate(self, conversations: list[Messages], params: SamplingParams) -> list[Generation]:
        if not conversations:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(conversations))) as pool:
            return list(pool.map(lambda c: self._one(c, params), conversations))
