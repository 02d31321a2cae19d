"""API keys never leave the process: one redaction function for every message built from a request or a reply.

Why redaction happens at the source and not only on the final exception: hosted endpoints echo what they were sent
("Incorrect API key provided: Bearer sk-..."), and that text flows into retry warnings, exception messages, error
logs and cache files long before any top-level handler sees it. So the HTTP layer passes every message it builds
through ``redact`` — which removes the key values the clients were given (``register_secret``) and anything that
looks like a credential whatever its origin (the token after ``Bearer``, an ``x-api-key`` / ``api-key`` value, an
``sk-...`` key) — and a ``logging.Filter`` on the ``rrr`` loggers (``install_log_redaction``) redacts whatever
reaches a log line anyway, belt and braces.

``redact`` runs on server replies (hostile input): its one pattern uses possessive quantifiers only, so it is linear
in the length of the text (fuzzed in ``tests/test_linear_time.py``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping

REDACTED = "[REDACTED]"

#: Credential shapes redacted even when the value was never registered: ``Bearer <token>``, an ``x-api-key`` or
#: ``api-key`` header/JSON field and its value (6+ characters, so "the bearer of" survives), and OpenAI/Anthropic
#: style ``sk-...`` keys. Possessive quantifiers only: no backtracking, linear on any input.
_CREDENTIAL = re.compile(
    r"(?i)(\bbearer\s++|\b(?:x-)?api[-_]key[\"']?+\s*+[:=]\s*+[\"']?+)[^\s\"',;}]{6,}+|\bsk-[A-Za-z0-9_-]{8,}+"
)
#: Registered values shorter than this are not redacted by value (redacting "ab" everywhere would mangle text);
#: such a value is still caught by the shapes above when it follows ``Bearer`` or an api-key field.
MIN_SECRET_CHARS = 6
#: Header names whose values are credentials.
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization"})

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember ``value`` (an API key read from the environment) so ``redact`` removes it wherever it appears."""
    if not isinstance(value, str):
        return
    value = value.strip()
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    if len(value) >= MIN_SECRET_CHARS:
        with _lock:
            _secrets.add(value)


def secrets_in_headers(headers: Mapping[str, str] | None) -> list[str]:
    """The credential values among ``headers`` (each registered as a side effect), for ``redact(..., extra=)``."""
    found = []
    for name, value in (headers or {}).items():
        if name.lower() in SECRET_HEADERS and isinstance(value, str):
            token = value[7:].strip() if value.lower().startswith("bearer ") else value.strip()
            if token:
                found.append(token)
                register_secret(token)
    return found


def redact(text: object, extra: Iterable[str | None] = (), patterns: bool = True) -> str:
    """``text`` (made a string) with every registered secret, every value in ``extra`` and (``patterns``) every
    credential-shaped token replaced by ``[REDACTED]``. Cheap when there is nothing to redact; never raises.

    ``patterns=False`` is for model replies, which are data: "Bearer <token>" in a reply about HTTP is content,
    but the very key this process holds is never kept."""
    try:
        out = text if isinstance(text, str) else str(text)
    except Exception:  # a hostile __str__: say so rather than fail while reporting another failure
        return "<unprintable>"
    with _lock:
        values = set(_secrets)
    values.update(v for v in extra if isinstance(v, str) and v)
    # Longest first, so a key that contains another registered value is removed whole.
    for value in sorted(values, key=len, reverse=True):
        if value in out:
            out = out.replace(value, REDACTED)
    return _CREDENTIAL.sub(_mask, out) if patterns else out


def snippet(value: object, extra: Iterable[str | None] = (), limit: int = 300) -> str:
    """The first ``limit`` characters of ``value`` as text, redacted *before* the cut: a key that straddles the cut
    would otherwise survive as a fragment the patterns no longer recognise."""
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:
        return "<unprintable>"
    return redact(text[: limit + 512], extra)[:limit]


def _mask(match: re.Match) -> str:
    prefix = match.group(1)
    return f"{prefix}{REDACTED}" if prefix is not None else REDACTED


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and its formatted traceback) through ``redact`` before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed %-format: leave it for logging's own error reporting
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()


def install_log_redaction(names: Iterable[str] = ()) -> None:
    """Put the redacting filter on the ``rrr`` logger, every ``rrr.*`` logger created so far, and ``names``.

    A logger's filters see only the records logged on that very logger (not those propagated from its children), so
    each module that logs about endpoints calls this after creating its logger; calling it again is harmless.
    """
    existing = [n for n in logging.Logger.manager.loggerDict if n == "rrr" or n.startswith("rrr.")]
    for name in {"rrr", *existing, *names}:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


__all__ = [
    "MIN_SECRET_CHARS",
    "REDACTED",
    "RedactingFilter",
    "install_log_redaction",
    "redact",
    "register_secret",
    "secrets_in_headers",
    "snippet",
]
