"""What the command line's parts share: names, exit codes, the usage error, one-line output."""

from __future__ import annotations

import sys

PROG = "engine-ui-events"
"""The program's name, unless it was started under another (``python -m openapi_client``)."""
TOKEN_ENV_VAR = "BEARER_TOKEN"
HOST_ENV_VAR = "ENGINE_API_HOST"
EXAMPLE_UUID = "f914eb07-a64f-51d8-b882-ff508a8c5c81"
DEMO_OFFER = {
    "leadUuid": "f914eb07-a64f-51d8-b882-ff508a8c5c81",
    "rateTableUuid": "952a1184-d369-5958-9a0f-bec903e11c48",
    "offerUuid": "3426f971-1aa5-5cb0-91a9-cf2edcfa5dfa",
}
COMMANDS = ("demo", "serve", "session-init", "offer-display", "pixel-url", "spool")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A mistake in how the command was called (exit 2)."""


def one_line(error: Exception) -> str:
    """An error's message on one line (messages may hold the API's multi-line text)."""
    return " ".join(str(error).split())


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def fail(code: int, message: str) -> int:
    """Print ``error: message`` on stderr; return ``code`` for the caller to exit with."""
    print(f"error: {message}", file=sys.stderr)
    return code
