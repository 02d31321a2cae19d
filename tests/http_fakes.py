"""A scriptable OpenAI-compatible (and Anthropic Messages) HTTP server on loopback, for tests of HTTP clients.

A real ``http.server.ThreadingHTTPServer`` on ``127.0.0.1`` (port 0: the OS picks a free one) in a daemon thread, so
clients are exercised over real sockets — timeouts, refused connections, status codes and headers behave as they do
against ``vllm serve`` or a hosted API. Usage::

    with FakeChatServer() as server:
        server.script(429, 500, "hang", "ok")       # then "ok" forever (the default)
        client = OpenAICompatibleTeacher(server.base_url, "fake-model", timeout=0.5)
        ...
        server.requests                              # every request: path, headers (lower-case names), JSON body

Actions (consumed one per request, in order; ``default`` when the script is empty):

* ``"ok"`` — a chat completion whose content is ``reply(body)`` (default: ``"echo: <last user message>"``), with a
  ``usage`` block (``prompt_tokens`` = characters of all messages, ``completion_tokens`` = characters of the reply);
* an ``int`` status (``429``, ``500``, ``401`` ...) — that status with an OpenAI-style error body; 429 and 503 carry
  ``Retry-After: 0`` so clients retry without sleeping;
* ``"hang"`` — sleep ``hang_seconds`` before answering (past the client's timeout), then answer ``"ok"``;
* ``("status", code, body_dict)`` — an arbitrary status and JSON body.

Hostile actions, for fault tests (a client must turn each into a bounded retry or one clear error, never a hang or a
raw traceback):

* ``"drip"`` — a 200 with a ``Content-Length`` for a full reply, then one byte every ``drip_interval`` seconds (a
  per-read socket timeout never fires: only an overall deadline ends it);
* ``"drip_headers"`` — the same trickle inside the headers (the status line, then one header byte at a time);
* ``"truncate"`` — a ``Content-Length`` larger than the body, then the connection closes (``IncompleteRead``);
* ``"invalid_json"`` — a complete 200 whose body is not JSON;
* ``"bad_status_line"`` — a status line that is not HTTP, then close (``BadStatusLine``);
* ``"disconnect"`` — the connection closes before any reply (``RemoteDisconnected``);
* ``"reset"`` — the connection is reset (RST, ``SO_LINGER`` 0) before any reply;
* ``"echo_auth"`` / ``("echo_auth", code)`` — an error (401 by default; 429 and 503 carry ``Retry-After: 0``) whose
  message echoes the request's ``Authorization`` (or ``x-api-key``) header, as some providers do;
* ``"huge"`` — a 200 whose reply text is ``huge_bytes`` long (default 20 MB);
* ``"content_filter"`` — a refusal: empty content, ``finish_reason: "content_filter"``;
* ``"null_content"`` — ``content: null`` with ``finish_reason: "stop"``; ``"empty"`` — ``content: ""``;
* ``"bad_usage"`` / ``("bad_usage", value)`` — a normal reply whose ``usage`` is ``value`` (default a string).

``/v1/messages`` answers in the Anthropic Messages format (``content`` blocks, ``input_tokens``/``output_tokens``).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _default_reply(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    users = [m.get("content", "") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return f"echo: {users[-1] if users else ''}"


class FakeChatServer:
    """See the module docstring."""

    def __init__(
        self,
        reply: Callable[[dict[str, Any]], str] | None = None,
        hang_seconds: float = 2.0,
        drip_interval: float = 0.5,
        huge_bytes: int = 20_000_000,
    ):
        self.reply = reply or _default_reply
        self.hang_seconds = hang_seconds
        self.drip_interval = drip_interval
        self.huge_bytes = huge_bytes
        self.default: Any = "ok"
        self.requests: list[dict[str, Any]] = []
        self._script: deque = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --------------------------------------------------------------------------------------------------- control
    def script(self, *actions: Any) -> FakeChatServer:
        with self._lock:
            self._script.extend(actions)
        return self

    def _next_action(self) -> Any:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """The OpenAI-style API root, ``http://127.0.0.1:<port>/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeChatServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_unparsed": raw.decode("utf-8", "replace")}
                with server._lock:
                    server.requests.append(
                        {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "json": body}
                    )
                server._respond(self, body, server._next_action())

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-chat-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes hanging handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeChatServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------------- responses
    def _respond(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], action: Any) -> None:
        if action == "hang":
            self._stop.wait(self.hang_seconds)
            action = "ok"
        name = action[0] if isinstance(action, tuple) and action else action
        try:
            if action == "ok":
                self._send(handler, 200, self._success(handler.path, body))
            elif isinstance(action, int):
                headers = {"Retry-After": "0"} if action in (429, 503) else {}
                error = {"error": {"message": f"fake error {action}", "type": "fake", "code": action}}
                self._send(handler, action, error, headers)
            elif name == "status":
                self._send(handler, int(action[1]), action[2])
            elif name in ("drip", "drip_headers", "truncate", "invalid_json", "bad_status_line", "disconnect", "reset"):
                self._hostile(handler, body, name)
            elif name == "echo_auth":
                code = int(action[1]) if isinstance(action, tuple) and len(action) > 1 else 401
                sent = handler.headers.get("Authorization") or handler.headers.get("x-api-key") or "(none)"
                error = {"error": {"message": f"Incorrect API key provided: {sent}", "type": "invalid_request_error"}}
                headers = {"Retry-After": "0"} if code in (429, 503) else {}
                self._send(handler, code, error, headers)
            elif name == "huge":
                self._send(handler, 200, self._success(handler.path, body, text="x" * self.huge_bytes))
            elif name in ("content_filter", "null_content", "empty"):
                text = None if name == "null_content" else ""
                finish = "content_filter" if name == "content_filter" else "stop"
                self._send(handler, 200, self._success(handler.path, body, text=text, finish_reason=finish))
            elif name == "bad_usage":
                usage = action[1] if isinstance(action, tuple) and len(action) > 1 else "lots"
                reply = self._success(handler.path, body)
                reply["usage"] = usage
                self._send(handler, 200, reply)
            else:
                raise ValueError(f"unknown fake server action {action!r}")
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): nothing to answer
            pass

    def _hostile(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], name: str) -> None:
        """Replies that break HTTP or JSON; each closes the connection so the client cannot reuse it."""
        handler.close_connection = True
        data = json.dumps(self._success(handler.path, body)).encode()
        if name == "drip":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.flush()
            for i in range(len(data)):
                if self._stop.wait(self.drip_interval):
                    return
                handler.wfile.write(data[i : i + 1])
                handler.wfile.flush()
        elif name == "drip_headers":
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"x" * 1000
            for i in range(len(head)):
                if self._stop.wait(self.drip_interval):
                    return
                handler.wfile.write(head[i : i + 1])
                handler.wfile.flush()
        elif name == "truncate":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data) + 1000))
            handler.end_headers()
            handler.wfile.write(data[: len(data) // 2])
            handler.wfile.flush()
        elif name == "invalid_json":
            self._send_raw(handler, 200, data[: len(data) // 2])
        elif name == "bad_status_line":
            handler.wfile.write(b"GARBAGE 200 what\r\n\r\n")
            handler.wfile.flush()
        elif name == "reset":
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.connection.close()
        # "disconnect": nothing is sent; the handler returns and the server closes the connection

    def _success(self, path: str, body: dict[str, Any], text: Any = ..., finish_reason: str = "stop") -> dict[str, Any]:
        text = self.reply(body) if text is ... else text
        completion_chars = len(text or "")
        prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages") or [] if isinstance(m, dict))
        prompt_chars += len(str(body.get("system", "")))
        if path.rstrip("/").endswith("/messages"):  # Anthropic Messages API
            return {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": body.get("model"),
                "content": [{"type": "text", "text": text or ""}],
                "stop_reason": "refusal" if finish_reason == "content_filter" else "end_turn",
                "usage": {"input_tokens": prompt_chars, "output_tokens": completion_chars},
            }
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}
            ],
            "usage": {
                "prompt_tokens": prompt_chars,
                "completion_tokens": completion_chars,
                "total_tokens": prompt_chars + completion_chars,
            },
        }

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()

    @staticmethod
    def _send_raw(handler: BaseHTTPRequestHandler, status: int, data: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()


def dead_port() -> int:
    """A loopback port nothing listens on (bound, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
