"""The package logger and the filter that keeps bearer tokens out of every log record."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

LOGGER_NAME = "openapi_client"
logger = logging.getLogger(LOGGER_NAME)

REDACTED = "[REDACTED]"
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_BEARER_RE = re.compile(r"(?i)\b(bearer)\s+[^\s'\",;]+")


def redact_text(text: str) -> str:
    """Replace anything shaped like ``Bearer <token>`` with ``Bearer [REDACTED]``."""
    return _BEARER_RE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with credentials replaced, for logs and test recordings."""
    return {
        name: (REDACTED if name.lower() in _SECRET_HEADERS else value)
        for name, value in headers.items()
    }


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
