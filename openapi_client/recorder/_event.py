"""One recorded event: a ``concurrent.futures.Future`` of the API's response, with its request."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from concurrent.futures._base import PENDING
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from openapi_client.api.ui_events_api import CREATE_OFFER_DISPLAY, CREATE_SESSION_INIT
from openapi_client.endpoint import Endpoint

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")


@dataclass(frozen=True, eq=False)
class EventKind:
    """A kind of event the recorder sends: its name (in the spool) and its operation."""

    name: str
    endpoint: Endpoint[Any, Any]


OFFER_DISPLAY = EventKind("offer_display", CREATE_OFFER_DISPLAY)
SESSION_INIT = EventKind("session_init", CREATE_SESSION_INIT)
KINDS: dict[str, EventKind] = {kind.name: kind for kind in (OFFER_DISPLAY, SESSION_INIT)}


_WALL_CLOCK_OFFSET = time.time() - time.monotonic()
"""Turns the monotonic time an event was recorded at into seconds since the epoch."""


def monotonic_from_wall(seconds_since_epoch: float) -> float:
    """The inverse: for events read back from the spool, which keeps wall-clock times."""
    return seconds_since_epoch - _WALL_CLOCK_OFFSET


class RecordedEvent(Future[ResponseT], Generic[RequestT, ResponseT]):
    """What ``record_*`` returns: a future of the response model, and the validated ``request``.

    ``result(timeout)`` waits for the API's response (``OfferDisplay`` or ``SessionInit``);
    ``exception()`` is the SDK error if the event failed or was dropped. An event holds three
    attributes of its own; the future's lock and lists are made on first use, since most
    events are never waited on (recording one stays a few microseconds).
    """

    # Future's state, as class defaults: an event sets its own only when they change.
    _state = PENDING
    _result: Any = None
    _exception: BaseException | None = None
    # The recorder's bookkeeping, likewise.
    _deadline = 0.0
    _spool_id: int | None = None
    _queued = False  # in the memory queue (or being sent), not only on disk
    _ended = False
    _gone = False  # settled for good: a row written for it from now on is deleted at once

    def __init__(self, kind: EventKind, request: RequestT, recorded_at: float) -> None:
        self._kind = kind
        self.request = request
        """The validated request model (``session_uuid`` is known at once for session inits)."""
        self._recorded_at = recorded_at  # time.monotonic()

    @property
    def kind(self) -> str:
        """``"offer_display"`` or ``"session_init"``."""
        return self._kind.name

    @property
    def recorded_at(self) -> float:
        """When ``record_*`` took it, in seconds since the epoch."""
        return self._recorded_at + _WALL_CLOCK_OFFSET

    def cancel(self) -> bool:
        """Always ``False``: a recorded event is a commitment. To stop waiting, wait with a
        timeout; an ``asyncio`` waiter that is cancelled or times out leaves the event recorded."""
        return False

    @property
    def _condition(self) -> threading.Condition:  # type: ignore[override]
        condition: threading.Condition = self._lazily("_lazy_condition", threading.Condition)
        return condition

    @property
    def _waiters(self) -> list[Any]:  # type: ignore[override]
        waiters: list[Any] = self._lazily("_lazy_waiters", list)
        return waiters

    @property
    def _done_callbacks(self) -> list[Any]:
        callbacks: list[Any] = self._lazily("_lazy_callbacks", list)
        return callbacks

    def _lazily(self, name: str, make: Any) -> Any:
        value = self.__dict__.get(name)
        if value is None:  # setdefault is atomic: racing threads get the same object
            value = self.__dict__.setdefault(name, make())
        return value

    def __repr__(self) -> str:
        return f"<RecordedEvent {self.kind} state={self._state}>"
