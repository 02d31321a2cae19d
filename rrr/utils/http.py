"""A small JSON-over-HTTP client for OpenAI-compatible endpoints and hosted teachers (stdlib only).

Hosted APIs fail in the ordinary ways — rate limits (429), overloaded servers (5xx), slow responses — and a long
curriculum or evaluation run must ride those out without a stack trace: ``post_json`` retries them with exponential
backoff (honouring ``Retry-After``), and turns everything else into one ``EndpointError`` with a readable message.
API keys travel only in headers and never appear in an error message or a log line.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import time
import urllib.error
import urllib.request
from typing import Any

logger = logging.getLogger("rrr.http")

RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504, 529}


class EndpointError(RuntimeError):
    """An endpoint could not be reached or kept failing; the message says which and why (never the key)."""


def post_json(
    url: str,
    payload: dict[str, Any],
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
    max_retries: int = 5,
    backoff: float = 1.0,
    max_backoff: float = 30.0,
) -> dict[str, Any]:
    """POST ``payload`` as JSON and return the decoded JSON response.

    Retries connection errors, timeouts and ``RETRY_STATUSES`` up to ``max_retries`` times with jittered
    exponential backoff; other HTTP errors (400, 401, 404, ...) fail at once with the server's message.
    """
    data = json.dumps(payload).encode()
    all_headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
    last_problem = "no attempt made"
    for attempt in range(max_retries + 1):
        request = urllib.request.Request(url, data=data, headers=all_headers, method="POST")
        retry_after: float | None = None
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read()
            try:
                return json.loads(body)
            except json.JSONDecodeError:
                raise EndpointError(f"{url} answered with invalid JSON: {body[:200]!r}") from None
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            if exc.code not in RETRY_STATUSES:
                hint = " (check the API key environment variable)" if exc.code in (401, 403) else ""
                raise EndpointError(f"{url} returned HTTP {exc.code}: {detail}{hint}") from None
            last_problem = f"HTTP {exc.code}: {detail}"
            retry_after = _retry_after(exc)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            last_problem = f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason
            if isinstance(reason, ConnectionRefusedError | socket.gaierror) and attempt >= 1:
                break  # nothing listens there: retrying a refused connection for minutes helps nobody
        if attempt == max_retries:
            break
        delay = retry_after if retry_after is not None else min(max_backoff, backoff * 2**attempt)
        delay *= 1 + 0.1 * random.random()
        logger.warning("%s: %s; retrying in %.1fs (%d/%d)", url, last_problem, delay, attempt + 1, max_retries)
        time.sleep(delay)
    raise EndpointError(f"{url} is unreachable or kept failing ({last_problem}); is the server running?")


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = exc.read().decode("utf-8", "replace")
        parsed = json.loads(body)
        if isinstance(parsed, dict):
            err = parsed.get("error", parsed)
            if isinstance(err, dict):
                return str(err.get("message", err))[:300]
            return str(err)[:300]
        return body[:300]
    except Exception:
        return str(exc.reason)[:300]


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    value = exc.headers.get("Retry-After") if exc.headers else None
    try:
        return min(60.0, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None
