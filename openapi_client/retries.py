"""When a failed call is tried again, and how long to wait first.

Defaults (see README, "Reliability"): two retries, exponential backoff from 0.5 s capped at 8 s
with up to 25 % jitter, ``Retry-After`` honoured up to 60 s. Retried: failures where the
server cannot have recorded the event (``connect``: no byte of the request written, be it a
refused or stalled connect, TLS handshake or proxy tunnel; ``stale``: a stale keep-alive
connection) and the statuses that say "try again" (408, 429, 502, 503, 504). Never retried: a
rejected certificate (``tls``). Not retried unless
``retry_ambiguous=True``: a read timeout, a 500, a new connection closed without a response,
or a response broken off midway, after which the server may already have stored the event.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from openapi_client.exceptions import ApiTypeError, ApiValueError, FailureKind

if TYPE_CHECKING:
    import urllib3

SAFE_FAILURES: frozenset[FailureKind] = frozenset({"connect", "stale"})
"""The server cannot have seen the request: nothing of it was written (``connect``), or it
went out on a keep-alive connection the server had already closed unread (``stale``)."""
AMBIGUOUS_FAILURES: frozenset[FailureKind] = frozenset({"dropped", "timeout", "broken"})
"""The server may have recorded the event."""
SAFE_STATUSES: frozenset[int] = frozenset({408, 429, 502, 503, 504})
AMBIGUOUS_STATUSES: frozenset[int] = frozenset({500})
_DELAY_SECONDS = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """An immutable retry policy; ``Configuration.retries`` accepts one (or an int, or a urllib3 Retry)."""

    max_retries: int = 2
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    jitter: float = 0.25
    """Each wait is shortened by a random fraction up to this, so clients do not retry in step."""
    respect_retry_after: bool = True
    max_retry_after: float = 60.0
    """A ``Retry-After`` longer than this ends the call instead of waiting."""
    retry_statuses: frozenset[int] = field(default_factory=lambda: SAFE_STATUSES)
    retry_ambiguous: bool = False
    """Also retry read timeouts, 500s and cut-off responses: no lost events, but possible duplicates."""

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise ApiTypeError("retries: max_retries must be an int")
        if self.max_retries < 0:
            raise ApiValueError("retries: max_retries must be >= 0")
        for name in ("initial_backoff", "max_backoff", "jitter", "max_retry_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ApiValueError(f"retries: {name} must be a number >= 0")
        if self.jitter > 1:
            raise ApiValueError("retries: jitter must be within [0, 1]")

    def should_retry_status(self, status: int) -> bool:
        """Whether a response with this status is worth another attempt."""
        return status in self.retry_statuses or (
            self.retry_ambiguous and status in AMBIGUOUS_STATUSES
        )

    def should_retry_failure(self, kind: FailureKind) -> bool:
        """Whether a failure without a response is worth another attempt."""
        return kind in SAFE_FAILURES or (self.retry_ambiguous and kind in AMBIGUOUS_FAILURES)

    def backoff(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based): exponential, capped, jittered."""
        exponent = min(retry_number - 1, 64)  # 2.0 ** 1024 would overflow
        base = min(self.max_backoff, self.initial_backoff * 2.0**exponent)
        return base * (1 - self.jitter * random.random())

    def wait_before_retry(
        self, retry_number: int, headers: Mapping[str, str] | None
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when the server asks too long a wait."""
        if self.respect_retry_after and headers is not None:
            asked = parse_retry_after(headers.get("Retry-After"))
            if asked is not None:
                return asked if asked <= self.max_retry_after else None
        return self.backoff(retry_number)

    @classmethod
    def from_setting(cls, value: object) -> RetryPolicy:
        """Normalise ``Configuration.retries``: None → defaults, int → count, Retry or policy."""
        if value is None:
            return DEFAULT_RETRY_POLICY
        if isinstance(value, RetryPolicy):
            return value
        if isinstance(value, bool):
            return DEFAULT_RETRY_POLICY if value else NO_RETRIES
        if isinstance(value, int):
            if value < 0:
                raise ApiValueError(f"retries must be >= 0, got {value}")
            return replace(DEFAULT_RETRY_POLICY, max_retries=value)
        import urllib3

        if isinstance(value, urllib3.Retry):
            return cls.from_urllib3(value)
        raise ApiTypeError(
            f"retries must be None, an int, a RetryPolicy or a urllib3.Retry, not {type(value).__name__}"
        )

    @classmethod
    def from_urllib3(cls, retry: urllib3.Retry) -> RetryPolicy:
        """Read the parts of a ``urllib3.Retry`` that apply to one API call."""
        counts = [c for c in (retry.total, retry.connect, retry.status) if isinstance(c, int)]
        max_retries = 0 if retry.total is False else (min(counts) if counts else 2)
        statuses = retry.status_forcelist
        return cls(
            max_retries=max(0, max_retries),
            initial_backoff=retry.backoff_factor,
            max_backoff=retry.backoff_max,
            jitter=0.0,
            respect_retry_after=retry.respect_retry_after_header,
            retry_statuses=frozenset(statuses) if statuses else SAFE_STATUSES,
        )


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delay-seconds or an HTTP date; ``None`` if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):  # ASCII digits only: "²".isdigit() is True
        return float(value)
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None
        return None
    try:
        return max(0.0, when.timestamp() - time.time())
    except (OverflowError, OSError, ValueError):
        return None


DEFAULT_RETRY_POLICY = RetryPolicy()
NO_RETRIES = RetryPolicy(max_retries=0)
