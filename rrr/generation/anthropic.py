"""Claude through the Anthropic Messages API, with the official ``anthropic`` SDK (the ``anthropic`` extra).

The same layering as ``rrr.generation.openai``: the SDK speaks the protocol (its auth header, its API version) and
retries; ``rrr.utils.http`` adds the per-attempt deadline, the size cap, rrr's retry timing and warnings, and one
redacted ``EndpointError`` line per failure. The SDK is imported when the first client is built, so rrr installs
and runs without it until an ``anthropic:`` teacher is used.
"""

from __future__ import annotations

import threading
from typing import Any

from rrr.tasks.base import Messages
from rrr.utils.http import EndpointPolicy, RetryHook, call_endpoint, check_url, http_client, redact_sdk_logs

#: What to install when the SDK is missing.
INSTALL_HINT = "the anthropic teacher needs the anthropic SDK: pip install 'rrr[anthropic]'"


class AnthropicClient:
    """One Messages endpoint (``base_url`` is the API root, ``https://api.anthropic.com``). System messages are sent
    as the ``system`` field. ``chat`` takes the key (read from the environment by the caller at each request)."""

    def __init__(self, base_url: str, policy: EndpointPolicy):
        check_url(base_url)
        self.base_url = base_url.rstrip("/").removesuffix("/v1/messages").removesuffix("/v1")
        self.url = f"{self.base_url}/v1/messages"
        self.policy = policy
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, key: str) -> Any:
        with self._lock:
            if key not in self._clients:
                try:
                    import anthropic
                except ImportError as exc:
                    raise ImportError(INSTALL_HINT) from exc

                class _Anthropic(RetryHook, anthropic.Anthropic):
                    """The SDK client with rrr's retry timing and warnings (``rrr.utils.http.RetryHook``)."""

                # An explicit api_key: the SDK then reads no credential from the environment or from disk.
                self._clients[key] = _Anthropic(
                    api_key=key,
                    base_url=self.base_url,
                    timeout=self.policy.timeout,
                    max_retries=self.policy.max_retries,
                    http_client=http_client(),
                )
                redact_sdk_logs()
            return self._clients[key]

    def chat(self, messages: Messages, key: str, *, model: str, max_tokens: int, temperature: float) -> dict[str, Any]:
        """One Messages request; the reply as JSON (an object: checked by the transport)."""
        client = self._client(key)
        import anthropic  # present: _client imported it

        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        # temperature is not a parameter of this SDK's create(): sent as an extra field, as rrr always has (greedy
        # replies are what make the teacher cache faithful)
        params: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "extra_body": {"temperature": temperature}}
        if system:
            params["system"] = system

        def send() -> dict[str, Any]:
            turns = [m for m in messages if m["role"] != "system"]
            return client.messages.with_raw_response.create(messages=turns, **params).http_response.json()

        return call_endpoint(self.url, send, sdk=anthropic, policy=self.policy, secrets=[key])
