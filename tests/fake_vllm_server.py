"""A loopback HTTP server that answers like ``vllm serve`` on the endpoints TRL's ``VLLMClient`` uses for generation.

``GET /health``, ``GET /v1/models``, ``POST /v1/completions`` (token-id prompts, ``n`` completions per prompt,
prompt-major order, ``prompt_token_ids`` / ``token_ids`` / completion-style logprobs with ``token_id:<id>`` tokens)
and ``POST /reset_prefix_cache``. The weight transfer (NCCL, GPU-only) is the one part it does not serve.

Completions are a **pure function of the prompt** (:func:`completion_for`), so a test can check that every completion
a rank trained on was generated for that rank's own prompt — the property TRL's gather-and-slice server mode breaks
when ranks send different numbers of prompts.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def completion_for(prompt_ids: list[int], vocab: list[int], eos_id: int, max_tokens: int) -> list[int]:
    """The deterministic completion of ``prompt_ids``: up to 3 tokens drawn from ``vocab`` by a hash, then EOS."""
    digest = hashlib.sha256(json.dumps(list(prompt_ids)).encode()).digest()
    body = [vocab[b % len(vocab)] for b in digest[:3]]
    return [*body, eos_id][:max_tokens]


class FakeVLLMServer:
    def __init__(self, vocab: list[int], eos_id: int, logprob: float = -0.5):
        self.vocab = list(vocab)
        self.eos_id = eos_id
        self.logprob = logprob
        #: prompts per ``/v1/completions`` request (after TRL gathered every rank's prompts)
        self.request_sizes: list[int] = []
        self.resets = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeVLLMServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):
                pass

            def do_GET(self):
                if self.path.rstrip("/") == "/health":
                    self._send({})
                elif self.path.rstrip("/") == "/v1/models":
                    self._send({"data": [{"id": "fake-model"}]})
                else:
                    self._send({"error": self.path}, 404)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") == "/v1/completions":
                    self._send(fake._completions(body))
                elif self.path.rstrip("/") == "/reset_prefix_cache":
                    with fake._lock:
                        fake.resets += 1
                    self._send({"success": True})
                else:
                    self._send({"error": self.path}, 404)

            def _send(self, payload: dict, status: int = 200):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _completions(self, body: dict) -> dict:
        prompts, n, max_tokens = body["prompt"], int(body.get("n", 1)), int(body["max_tokens"])
        with self._lock:
            self.request_sizes.append(len(prompts))
        choices = []
        for prompt in prompts:  # prompt-major: the n completions of a prompt come before the next prompt's
            for _ in range(n):
                ids = completion_for(prompt, self.vocab, self.eos_id, max_tokens)
                choices.append(
                    {
                        "index": len(choices),
                        "text": "",
                        "prompt_token_ids": list(prompt),
                        "token_ids": ids,
                        "finish_reason": "stop" if ids[-1] == self.eos_id else "length",
                        "logprobs": {
                            "tokens": [f"token_id:{t}" for t in ids],
                            "token_logprobs": [self.logprob] * len(ids),
                            "top_logprobs": [None] * len(ids),
                        },
                    }
                )
        return {"id": "cmpl-fake", "object": "text_completion", "model": "fake-model", "choices": choices}
