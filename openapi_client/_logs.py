"""The package's logging: its logger, the filter that keeps secrets out of every record, and the
process-wide handlers that ``Configuration.debug`` and ``logger_file`` switch on and off."""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from openapi_client._redaction import (
    NO_SECRETS,
    REDACTED,
    Redactor,
    mask_credential_headers,
    redactor_for,
)

if TYPE_CHECKING:
    from openapi_client.transport import HttpRequest, RESTResponse, Transport

LOGGER_NAME = "openapi_client"
logger = logging.getLogger(LOGGER_NAME)

_URLLIB3_LOGGERS = (
    "urllib3", "urllib3.connectionpool", "urllib3.connection", "urllib3.poolmanager",
    "urllib3.response", "urllib3.util.retry",
)  # fmt: skip
"""urllib3 logs request lines (with their query strings) on these; a logger's filter applies
only to records made on that very logger, so each one gets the filter."""

_BEARER_RE = re.compile(r"(?i)\b(bearer)\s+[^\s'\"]+")

_live_lock = threading.Lock()
_live_counts: dict[str, int] = {}
_live = NO_SECRETS
"""Secrets of the calls in flight while logging is on: urllib3's own records are scrubbed of them."""


@contextmanager
def secrets_in_flight(secrets: Iterable[str]) -> Iterator[None]:
    """Make the filter scrub ``secrets`` from every record while the block runs."""
    global _live
    added = tuple(secrets)
    with _live_lock:
        for secret in added:
            _live_counts[secret] = _live_counts.get(secret, 0) + 1
        _live = redactor_for(tuple(sorted(_live_counts)))
    try:
        yield
    finally:
        with _live_lock:
            for secret in added:
                left = _live_counts.pop(secret) - 1
                if left:
                    _live_counts[secret] = left
            _live = redactor_for(tuple(sorted(_live_counts))) if _live_counts else NO_SECRETS


def scrub(text: str, redactor: Redactor = NO_SECRETS) -> str:
    """``text`` without the given secrets, the secrets of calls in flight, or ``Bearer <token>``."""
    text = redactor.text(text)
    live = _live
    if live:
        text = live.text(text)
    return _BEARER_RE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message so that no secret survives into any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()
for _name in (LOGGER_NAME, *_URLLIB3_LOGGERS):
    logging.getLogger(_name).addFilter(_FILTER)


def attach_redaction(handler: logging.Handler) -> None:
    """Give a handler the redacting filter (records from other loggers pass handlers too)."""
    if _FILTER not in handler.filters:
        handler.addFilter(_FILTER)


# -- debug logging, shared by every Configuration that turns it on ---------------------------

_DEBUG_LOGGERS = (LOGGER_NAME, "urllib3")
_debug_lock = threading.RLock()
"""Reentrant: a Configuration's finaliser (which turns its debug off) may run during any
allocation, including one made while this lock is held."""
_debug_users = 0
_saved_levels: dict[str, int] = {}
_stream_handler: logging.Handler | None = None


def enable_debug(log_format: str) -> None:
    """One more user of debug logging: the first sets the levels to DEBUG and, if no handler
    would show the records, adds one on stderr."""
    global _debug_users, _stream_handler
    with _debug_lock:
        _debug_users += 1
        if _debug_users > 1:
            return
        for name in _DEBUG_LOGGERS:
            _saved_levels[name] = logging.getLogger(name).level
            logging.getLogger(name).setLevel(logging.DEBUG)
        if not _has_handler(logger):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter(log_format))
            attach_redaction(handler)
            logger.addHandler(handler)
            _stream_handler = handler


def disable_debug() -> None:
    """One user fewer: the last gives the application its logger levels back."""
    global _debug_users, _stream_handler
    with _debug_lock:
        _debug_users -= 1
        if _debug_users > 0:
            return
        _debug_users = 0
        for name, level in _saved_levels.items():
            logging.getLogger(name).setLevel(level)
        _saved_levels.clear()
        if _stream_handler is not None:
            logger.removeHandler(_stream_handler)
            _stream_handler = None


def _has_handler(log: logging.Logger) -> bool:
    current: logging.Logger | None = log
    while current is not None:
        if current.handlers:
            return True
        current = current.parent if current.propagate else None
    return False


# -- log files, one handler per file however many configurations name it ---------------------

_file_handlers: dict[str, tuple[logging.Handler, int]] = {}
_files_lock = threading.RLock()  # reentrant, as _debug_lock


def open_log_file(path: str, log_format: str) -> None:
    """Write the package's records to ``path`` too (one handler per file, counted)."""
    key = os.path.abspath(path)
    with _files_lock:
        handler, users = _file_handlers.get(key, (None, 0))
        if handler is None:
            handler = logging.FileHandler(key)
            handler.setFormatter(logging.Formatter(log_format))
            attach_redaction(handler)
            logger.addHandler(handler)
        _file_handlers[key] = (handler, users + 1)


def close_log_file(path: str) -> None:
    """One user fewer of ``path``: the last closes its handler."""
    key = os.path.abspath(path)
    with _files_lock:
        handler, users = _file_handlers.pop(key, (None, 0))
        if handler is None:
            return
        if users > 1:
            _file_handlers[key] = (handler, users - 1)
            return
        logger.removeHandler(handler)
        handler.close()


# -- one exchange, logged --------------------------------------------------------------------


def send_logged(
    transport: Transport, request: HttpRequest, deadline: float, retries: int, started: float
) -> RESTResponse:
    """``transport.send`` with the request and response logged, every secret removed."""
    redactor = request.redactor  # applied before any repr(), which would escape what it seeks
    logger.debug(
        "HTTP request (attempt %d): %s %s headers=%s body=%s",
        retries + 1, request.method, request.safe_url,
        mask_credential_headers(redactor.headers(request.headers)),
        redactor.text((request.body or b"").decode("utf-8", "replace")),
    )  # fmt: skip
    with secrets_in_flight(request.secrets):  # urllib3 logs the URL itself
        response = transport.send(request, deadline)
    body = redactor.text((response.data or b"").decode("utf-8", "replace"))
    logger.debug(
        "HTTP response: %d %s after %.1f ms headers=%s body=%s",
        response.status, redactor.text(response.reason or ""), (time.monotonic() - started) * 1000,
        mask_credential_headers(redactor.headers(response.headers)), body[:2048],
    )  # fmt: skip
    return response
