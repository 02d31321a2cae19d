"""Hosted endpoints through the official SDKs, under the guarantees rrr adds on top of them (``docs/faults.md``).

The ``openai`` and ``anthropic`` SDKs speak the protocols, retry 408/409/429/5xx and transport failures up to
``max_retries`` times, and raise typed errors; rrr uses them for every hosted endpoint (``rrr.generation.openai``,
``rrr.generation.anthropic``). This module is the thin layer that keeps what they do not promise — it is not a
second HTTP client: the SDK builds, sends, retries and parses; rrr only watches each attempt.

* **An overall deadline per attempt.** The SDKs' ``timeout`` is httpx's, per phase and per read: a server sending
  one byte every half second never trips it. ``GuardedTransport`` (the transport of the SDK's httpx client) arms a
  watchdog per attempt that shuts the attempt's socket down at the deadline — inside the headers or the body — and
  reports it as a timeout, which the SDK retries like any other.
* **A size cap.** Bodies are read by the transport, counted as they come (after decompression), and refused past
  ``max_response_bytes`` (or at once by ``Content-Length``) — never buffered whole, never retried.
* **Every transport failure is a bounded retry, then one error**: a 200 whose body is not JSON is a torn response
  (retried), not a crash in the SDK's parser; a JSON body that is not an object is refused; a refused connection
  is given up after the second attempt (nothing listens there).
* **rrr's retry timing and a warning per retry.** ``RetryHook`` (mixed into the SDK client classes) waits
  ``Retry-After`` when the server sends one — 0 included, which the SDKs treat as unset — else rrr's jittered
  exponential ``backoff``, and logs ``<url>: <problem>; retrying in 0.5s (1/5)`` on ``rrr.http``.
* **One readable line.** ``call_endpoint`` turns every SDK error into one ``EndpointError`` (no chained traceback)
  whose text went through ``rrr.utils.secrets.redact``: the SDKs' own messages quote response bodies, and servers
  echo keys. The SDKs' loggers and their HTTP stack's carry the redacting filter too (they log at DEBUG).

Keys are read by the callers from the environment at each call and passed to the SDK as a header only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

import httpx2

from rrr.utils.secrets import install_log_redaction, redact, snippet

logger = logging.getLogger("rrr.http")
install_log_redaction(["rrr.http"])

#: The largest response body accepted by default: a chat completion of a few thousand tokens is tens of kB, so a
#: body this big is a misbehaving server, and buffering (then caching) it would only spread the damage.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
#: Loggers of the SDKs and of their HTTP stack; each of their loggers gets the redacting filter.
SDK_LOGGERS = ("openai", "anthropic", "httpx2", "httpcore2", "httpx", "httpcore")
#: The longest ``Retry-After`` honoured (seconds); a longer one waits this long.
MAX_RETRY_AFTER = 60.0

T = TypeVar("T")


class EndpointError(RuntimeError):
    """An endpoint could not be reached or kept failing; the message says which and why (never the key)."""


@dataclass(frozen=True)
class EndpointPolicy:
    """How hard to try one request. ``timeout`` is a wall-clock deadline for each attempt as a whole (connect,
    headers, body); ``max_retries`` retries follow a failed attempt, ``backoff * 2**n`` seconds apart (jittered,
    at most ``max_backoff``) unless the server sends ``Retry-After``."""

    timeout: float = 120.0
    max_retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 30.0
    max_response_bytes: int = MAX_RESPONSE_BYTES


def check_url(url: str) -> None:
    """``EndpointError`` unless ``url`` is an http(s) URL with a host: a configuration error, not worth a retry."""
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise EndpointError(redact(f"{url!r} is not an http:// or https:// URL (e.g. http://localhost:8000/v1)"))


def redact_sdk_logs() -> None:
    """Put the redacting filter on every logger of the SDKs created so far (call after importing one)."""
    names = [n for n in logging.Logger.manager.loggerDict if n.split(".", 1)[0] in SDK_LOGGERS]
    install_log_redaction([*SDK_LOGGERS, *names])


# ----------------------------------------------------------------------------------------------------------------
# One call: what the transport and the retry hook of this thread see
# ----------------------------------------------------------------------------------------------------------------
class _Call:
    """One logical request and all its attempts; ``problem`` is the last attempt's failure, already redacted."""

    def __init__(self, url: str, policy: EndpointPolicy, secrets: list[str]):
        self.url, self.policy, self.secrets = url, policy, secrets
        self.attempts = 0
        self.problem = "no attempt made"

    def note(self, problem: object) -> str:
        self.problem = " ".join(snippet(problem, self.secrets, 400).split())  # one line, whatever the server sent
        return self.problem

    @property
    def deadline_text(self) -> str:
        return f"timed out: no complete response within the {self.policy.timeout:g}s deadline"


_local = threading.local()


def _current() -> _Call | None:
    return getattr(_local, "call", None)


def call_endpoint(
    url: str, request: Callable[[], T], *, sdk: ModuleType, policy: EndpointPolicy, secrets: Iterable[str | None] = ()
) -> T:
    """``request()`` — one SDK call whose client uses ``http_client(policy)`` and ``RetryHook`` — under the
    guarantees above; every failure it can meet becomes one ``EndpointError`` naming ``url``, with no key in it.

    ``sdk`` is the SDK's module (``openai`` or ``anthropic``), whose error classes share their names.
    """
    call = _Call(url, policy, [s for s in secrets if isinstance(s, str) and s])
    outer, _local.call = _current(), call
    try:
        return request()
    except EndpointError as exc:  # raised by the transport: the size cap, a refused connection, a non-object body
        raise EndpointError(redact(exc, call.secrets)) from None
    except sdk.APIStatusError as exc:
        hint = " (check the API key environment variable)" if exc.status_code in (401, 403) else ""
        failure = f"HTTP {exc.status_code}: {_error_detail(exc.response.content, call.secrets)}"
        if call.attempts > 1:
            raise EndpointError(f"{url} kept failing after {call.attempts} attempts ({failure}){hint}") from None
        raise EndpointError(f"{url} returned {failure}{hint}") from None
    except sdk.APITimeoutError:
        raise EndpointError(
            f"{url} is unreachable or kept failing ({call.deadline_text}); is the server running?"
        ) from None
    except sdk.APIConnectionError:
        raise EndpointError(f"{url} is unreachable or kept failing ({call.problem}); is the server running?") from None
    except sdk.APIError as exc:  # e.g. a body the SDK could not read
        raise EndpointError(f"{url} returned an unusable response: {snippet(exc, call.secrets)}") from None
    finally:
        _local.call = outer


# ----------------------------------------------------------------------------------------------------------------
# The transport: the deadline, the size cap, JSON checked before the SDK parses it
# ----------------------------------------------------------------------------------------------------------------
class _Deadline:
    """The wall-clock end of one attempt: a watchdog shuts the attempt's sockets down when it passes."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's ``trace`` extension: registers the socket of each connection this attempt opens (the plain
        one, then the TLS one, which replaces it)."""
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                with self._lock:
                    self._sockets.append(sock)

    def check(self) -> None:
        if self.expired or time.monotonic() >= self.end:
            self.expired = True
            raise httpx2.ReadTimeout("deadline")

    def _fire(self) -> None:
        # Unblocks a read that no socket timeout bounds (bytes trickling in). The plain socket's shutdown is called
        # on a TLS socket too, so no TLS state is touched from this thread.
        with self._lock:
            if self._done:
                return
            self.expired = True
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def finish(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


class GuardedTransport(httpx2.BaseTransport):
    """httpx's own transport, each attempt under the call's deadline and size cap (see the module docstring).

    Keep-alive is off: every attempt opens its own connection, so the watchdog knows which socket is the attempt's
    (a chat completion takes seconds; one connect per request is what the stdlib client did before).
    """

    def __init__(self) -> None:
        self._inner = httpx2.HTTPTransport(limits=httpx2.Limits(max_connections=None, max_keepalive_connections=0))

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        call = _current()
        if call is None:
            raise RuntimeError("rrr's guarded SDK clients are used through rrr.utils.http.call_endpoint")
        call.attempts += 1
        deadline = _Deadline(call.policy.timeout)
        request.extensions["trace"] = deadline.trace
        try:
            return self._attempt(request, call, deadline)
        except (httpx2.TransportError, ssl.SSLError, OSError) as exc:
            if deadline.expired or isinstance(exc, httpx2.TimeoutException):
                raise httpx2.ReadTimeout(call.note(call.deadline_text), request=request) from None
            call.note(_describe(exc))
            if _refused(exc) and call.attempts >= 2:  # nothing listens there: retrying for minutes helps nobody
                raise EndpointError(f"{call.url} is unreachable ({call.problem}); is the server running?") from None
            if isinstance(exc, httpx2.TransportError):
                raise
            raise httpx2.ConnectError(call.problem, request=request) from None  # what the SDK retries
        finally:
            deadline.finish()

    def _attempt(self, request: httpx2.Request, call: _Call, deadline: _Deadline) -> httpx2.Response:
        limit, url = call.policy.max_response_bytes, call.url
        response = self._inner.handle_request(request)
        try:
            declared = response.headers.get("Content-Length", "").strip()
            if declared.isdigit() and int(declared) > limit:
                raise EndpointError(
                    f"{url} sent a {int(declared):,}-byte response, over the {limit:,}-byte limit; refused"
                )
            body = bytearray()
            for chunk in response.iter_bytes():  # decoded: the cap bounds what a compressed body expands to
                deadline.check()
                body += chunk
                if len(body) > limit:
                    raise EndpointError(f"{url} sent a response over the {limit:,}-byte limit; refused")
            deadline.check()
        finally:
            response.close()
        if response.status_code >= 400:
            call.note(f"HTTP {response.status_code}: {_error_detail(body, call.secrets)}")
        elif response.status_code < 300:
            try:
                decoded = json.loads(body)
            except (ValueError, RecursionError):  # ValueError covers JSONDecodeError and invalid UTF-8
                problem = call.note(f"invalid or truncated JSON ({len(body)} bytes): {bytes(body[:1000])!r}")
                raise httpx2.DecodingError(problem, request=request) from None
            if not isinstance(decoded, dict):
                raise EndpointError(f"{url} answered with JSON that is not an object: {snippet(decoded, call.secrets)}")
        # already decoded (and so no longer of the declared length or encoding)
        dropped = {b"content-encoding", b"content-length", b"transfer-encoding"}
        headers = [(k, v) for k, v in response.headers.raw if k.lower() not in dropped]
        return httpx2.Response(
            response.status_code, headers=headers, content=bytes(body), request=request, extensions=response.extensions
        )

    def close(self) -> None:
        self._inner.close()


def http_client() -> httpx2.Client:
    """The httpx client to hand an SDK client (``http_client=``): every request goes through ``GuardedTransport``."""
    return httpx2.Client(transport=GuardedTransport(), follow_redirects=True)


# ----------------------------------------------------------------------------------------------------------------
# Retries: the SDK decides whether; rrr decides how long, and says so
# ----------------------------------------------------------------------------------------------------------------
class RetryHook:
    """Mixed into an SDK client class (``class _Client(RetryHook, openai.OpenAI)``): rrr's retry delay, and one
    warning per retry naming the failure.

    ``_calculate_retry_timeout`` is the one SDK internal rrr overrides (both SDKs share it); the fault tests
    (``tests/test_endpoint_faults.py``) count the warnings and time the retries, so a change in the SDK shows.
    """

    def _calculate_retry_timeout(self, remaining_retries: int, options: Any, response_headers: Any = None) -> float:
        call = _current()
        if call is None:  # pragma: no cover - every rrr request runs under call_endpoint
            return super()._calculate_retry_timeout(remaining_retries, options, response_headers)  # type: ignore[misc]
        policy = call.policy
        delay = _retry_after(response_headers)
        if delay is None:
            delay = min(policy.max_backoff, policy.backoff * 2 ** (call.attempts - 1))
        delay *= 1 + 0.1 * random.random()
        logger.warning(
            "%s: %s; retrying in %.1fs (%d/%d)", call.url, call.problem, delay, call.attempts, policy.max_retries
        )
        return delay


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(value))) if value is not None else None
    except ValueError:  # an HTTP date: rrr's backoff instead
        return None


# ----------------------------------------------------------------------------------------------------------------
# Messages
# ----------------------------------------------------------------------------------------------------------------
def _error_detail(body: bytes, secrets: list[str]) -> str:
    """The server's error message (``error.message`` of an OpenAI- or Anthropic-style body), redacted, then cut."""
    text = body[: 64 * 1024].decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = text
    if isinstance(parsed, dict):
        err = parsed.get("error", parsed)
        parsed = err.get("message", err) if isinstance(err, dict) else err
    return " ".join(snippet(parsed, secrets).split())


def _causes(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _describe(exc: BaseException) -> str:
    """The innermost meaningful cause (``ConnectionRefusedError: [Errno 111] ...``, ``SSLError: ...``)."""
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLError | ConnectionError | socket.gaierror):
            return f"{type(cause).__name__}: {cause}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


def _refused(exc: BaseException) -> bool:
    return any(isinstance(c, ConnectionRefusedError | socket.gaierror) for c in _causes(exc)) or (
        isinstance(exc, httpx2.ConnectError) and "refused" in str(exc).lower()
    )


__all__ = [
    "MAX_RESPONSE_BYTES",
    "EndpointError",
    "EndpointPolicy",
    "GuardedTransport",
    "RetryHook",
    "call_endpoint",
    "check_url",
    "http_client",
    "redact_sdk_logs",
]
