"""A small JSON-over-HTTP client for OpenAI-compatible endpoints and hosted teachers (stdlib only).

Hosted APIs fail in the ordinary ways — rate limits (429), overloaded servers (5xx), slow responses — and a long
curriculum or evaluation run must ride those out without a stack trace: ``post_json`` retries them with exponential
backoff (honouring ``Retry-After``), and turns everything else into one ``EndpointError`` with a readable message.

What a hostile or broken server cannot do to a caller:

* **hang it**: ``timeout`` is a wall-clock deadline for the whole request — connect, headers and body — not a
  per-read socket timeout (which a server sending one byte every half second never trips). The socket timeout
  shrinks to the time left before every read, and a watchdog shuts the socket down at the deadline in case a read
  is stuck in the headers. A deadline hit is retried like any timeout.
* **crash it with a raw traceback**: every transport failure — refused or reset connections, ``IncompleteRead``,
  ``BadStatusLine`` and every other ``http.client.HTTPException``, truncated or invalid JSON — is retried (bounded)
  and then reported as one ``EndpointError``.
* **flood its memory or its cache**: a body over ``max_response_bytes`` is refused (by ``Content-Length`` before
  reading, or as soon as the count passes it), never buffered whole.
* **leak its key**: API keys travel only in headers; every message built here (warnings, errors) goes through
  ``rrr.utils.secrets.redact`` with the request's own credential values, so a server that echoes the
  ``Authorization`` header cannot put the key in a log line or an exception.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import random
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from rrr.utils.secrets import install_log_redaction, redact, secrets_in_headers, snippet

logger = logging.getLogger("rrr.http")
install_log_redaction(["rrr.http"])

RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504, 529}
#: The largest response body accepted by default: a chat completion of a few thousand tokens is tens of kB, so a
#: body this big is a misbehaving server, and buffering (then caching) it would only spread the damage.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
_CHUNK = 64 * 1024


class EndpointError(RuntimeError):
    """An endpoint could not be reached or kept failing; the message says which and why (never the key)."""


class _Retryable(Exception):
    """An attempt failed in a way another attempt may not (a timeout, a torn connection, a garbled body)."""


class _Deadline:
    """The wall-clock end of one request, shared by the connection (connect timeout), the reads and a watchdog."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            self.expired = True
            raise TimeoutError(f"no complete response within the {self.seconds:g}s deadline")
        return left

    def watch(self, sock: socket.socket | None) -> None:
        if sock is not None:
            with self._lock:
                self._sockets.append(sock)

    def _fire(self) -> None:
        # Unblocks a read that the socket timeout cannot bound (bytes trickling into the headers). Only the plain
        # socket's shutdown is called — on a TLS socket too — so no TLS state is touched from this thread.
        with self._lock:
            if self._done:
                return
            self.expired = True
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def set_socket_timeout(self, seconds: float) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.settimeout(seconds)

    def finish(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


def _opener(deadline: _Deadline) -> urllib.request.OpenerDirector:
    """An opener whose connections take their connect timeout from ``deadline`` and register their socket with it."""

    def bind(base: type[http.client.HTTPConnection]) -> type[http.client.HTTPConnection]:
        class Connection(base):  # type: ignore[misc, valid-type]
            def connect(self) -> None:
                self.timeout = deadline.remaining()
                super().connect()
                deadline.watch(self.sock)

        return Connection

    http_conn, https_conn = bind(http.client.HTTPConnection), bind(http.client.HTTPSConnection)

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(http_conn, req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(https_conn, req, context=self._context)

    return urllib.request.build_opener(HTTPHandler, HTTPSHandler)


def _read_body(response: Any, deadline: _Deadline, limit: int, url: str) -> bytes:
    """The body, read in chunks against the deadline and the size limit (``EndpointError`` past the limit).

    ``read1`` returns what one socket read brings, so the deadline is checked between reads and the socket timeout
    shrinks to the time left; a plain ``read(n)`` would loop inside the buffered reader until ``n`` bytes came.
    """
    declared = response.headers.get("Content-Length") if response.headers else None
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise EndpointError(f"{url} sent a {int(declared):,}-byte response, over the {limit:,}-byte limit; refused")
    chunks, size = [], 0
    while True:
        left = deadline.remaining()
        deadline.set_socket_timeout(left)
        chunk = response.read1(_CHUNK)
        if not chunk:
            if deadline.expired:
                raise TimeoutError(f"no complete response within the {deadline.seconds:g}s deadline")
            missing = getattr(response, "length", None)
            if missing:  # the connection closed before Content-Length bytes came (read1 does not raise for it)
                raise _Retryable(f"truncated response: {size} bytes received, {missing} missing")
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise EndpointError(f"{url} sent a response over the {limit:,}-byte limit; refused")
        chunks.append(chunk)


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # ValueError covers JSONDecodeError and invalid UTF-8
        raise _Retryable(f"invalid or truncated JSON ({len(body)} bytes): {body[:1000]!r}") from None


class _Status(Exception):
    """An HTTP error status, with the server's message read (against the deadline) while the socket was open."""

    def __init__(self, code: int, detail: str, retry_after: float | None):
        super().__init__(code, detail)
        self.code, self.detail, self.retry_after = code, detail, retry_after


def _attempt(request: urllib.request.Request, deadline: _Deadline, limit: int, url: str) -> Any:
    try:
        with _opener(deadline).open(request, timeout=deadline.remaining()) as response:
            return _decode(_read_body(response, deadline, limit, url))
    except urllib.error.HTTPError as exc:
        with exc:
            raise _Status(exc.code, _error_detail(exc, deadline, limit), _retry_after(exc)) from None


def post_json(
    url: str,
    payload: dict[str, Any],
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
    max_retries: int = 5,
    backoff: float = 1.0,
    max_backoff: float = 30.0,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
) -> dict[str, Any]:
    """POST ``payload`` as JSON and return the decoded JSON object.

    ``timeout`` bounds each attempt as a whole (connect + headers + body). Retries connection errors, timeouts,
    torn responses, invalid JSON and ``RETRY_STATUSES`` up to ``max_retries`` times with jittered exponential
    backoff; other HTTP errors (400, 401, 404, ...), a body over ``max_response_bytes`` and a reply that is JSON but
    not an object fail at once. Every failure is one ``EndpointError`` whose message holds no credential.
    """
    secrets = secrets_in_headers(headers)

    def clean(text: object) -> str:
        return redact(text, secrets)

    data = json.dumps(payload).encode()
    all_headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
    last_problem = "no attempt made"
    if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https") or not urllib.parse.urlsplit(url).netloc:
        # a configuration error, not worth a retry (and urllib would happily try ftp:// or file://)
        raise EndpointError(clean(f"{url!r} is not an http:// or https:// URL (e.g. http://localhost:8000/v1)"))
    for attempt in range(max_retries + 1):
        request = urllib.request.Request(url, data=data, headers=all_headers, method="POST")
        retry_after: float | None = None
        deadline = _Deadline(timeout)
        try:
            decoded = _attempt(request, deadline, max_response_bytes, url)
            if not isinstance(decoded, dict):
                raise EndpointError(f"{url} answered with JSON that is not an object: {snippet(decoded, secrets)}")
            return decoded
        except EndpointError as exc:
            raise EndpointError(clean(exc)) from None
        except _Status as exc:
            detail = snippet(exc.detail, secrets)
            if exc.code not in RETRY_STATUSES:
                hint = " (check the API key environment variable)" if exc.code in (401, 403) else ""
                raise EndpointError(f"{url} returned HTTP {exc.code}: {detail}{hint}") from None
            last_problem, retry_after = f"HTTP {exc.code}: {detail}", exc.retry_after
        except _Retryable as exc:
            last_problem = snippet(exc, secrets, 400)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if deadline.expired or isinstance(reason, TimeoutError):
                last_problem = f"timed out: no complete response within the {timeout:g}s deadline"
            elif isinstance(reason, str):
                last_problem = clean(reason)
            else:
                last_problem = clean(f"{type(reason).__name__}: {reason}".rstrip(": "))
            if isinstance(reason, ConnectionRefusedError | socket.gaierror) and attempt >= 1:
                break  # nothing listens there: retrying a refused connection for minutes helps nobody
        finally:
            deadline.finish()
        last_problem = " ".join(last_problem.split())  # one line, whatever the server put in its status line
        if attempt == max_retries:
            break
        delay = retry_after if retry_after is not None else min(max_backoff, backoff * 2**attempt)
        delay *= 1 + 0.1 * random.random()
        logger.warning("%s: %s; retrying in %.1fs (%d/%d)", url, last_problem, delay, attempt + 1, max_retries)
        time.sleep(delay)
    raise EndpointError(f"{url} is unreachable or kept failing ({last_problem}); is the server running?")


def _error_detail(exc: urllib.error.HTTPError, deadline: _Deadline, limit: int) -> str:
    """The server's error message (``error.message`` of an OpenAI-style body), read against the same deadline.

    Returned whole (at most the 64 kB read): the caller redacts, then cuts it short.
    """
    try:
        body = _read_body(exc, deadline, min(limit, 64 * 1024), "").decode("utf-8", "replace")
    except Exception as read_error:  # a torn or dripping error body: the status line is still worth reporting
        return f"{exc.reason} (body unreadable: {type(read_error).__name__})"
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return body
    if isinstance(parsed, dict):
        err = parsed.get("error", parsed)
        if isinstance(err, dict):
            return str(err.get("message", err))
        return str(err)
    return body


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    value = exc.headers.get("Retry-After") if exc.headers else None
    try:
        return min(60.0, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None
