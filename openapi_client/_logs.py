"""The package logger and the filter that keeps bearer tokens out of every log record."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

LOGGER_NAME = "openapi_client"
logger = logging.getLogger(LOGGER_NAME)

REDACTED = "[REDACTED]"
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization"})
_SECRET_HEADERS = _CREDENTIAL_HEADERS | {"cookie", "set-cookie"}
_BEARER_RE = re.compile(r"(?i)\b(bearer)\s+[^\s'\",;]+")


def redact_text(text: str) -> str:
    """Replace anything shaped like ``Bearer <token>`` with ``Bearer [REDACTED]``."""
    return _BEARER_RE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with secrets replaced, for logs and test recordings.

    Credentials keep their scheme (``Bearer [REDACTED]``), so a reader still sees which kind
    of auth was sent.
    """
    return {name: _redact_value(name, value) for name, value in headers.items()}


def _redact_value(name: str, value: str) -> str:
    lowered = name.lower()
    if lowered not in _SECRET_HEADERS:
        return value
    parts = value.split(None, 1)
    if lowered in _CREDENTIAL_HEADERS and len(parts) == 2:
        return f"{parts[0]} {REDACTED}"
    return REDACTED


class RedactingFilter(logging.Filter):
    """Rewrites a record's message so that no bearer token survives into any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()
logger.addFilter(_FILTER)


def attach_redaction(handler: logging.Handler) -> None:
    """Give a handler the redacting filter (records from other loggers pass handlers too)."""
    if _FILTER not in handler.filters:
        handler.addFilter(_FILTER)
