"""One recorded event: a ``concurrent.futures.Future`` of the API's response, with its request."""

from __future__ import annotations

import threading
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


class RecordedEvent(Future[ResponseT], Generic[RequestT, ResponseT]):
    """What ``record_*`` returns: a future of the response model, and the validated ``request``.

    ``result(timeout)`` waits for the API's response (``OfferDisplay`` or ``SessionInit``);
    ``exception()`` is the SDK error if the event failed or was dropped. The future's lock is
    made on first use, not per event: most events are never waited on.
    """

    def __init__(self, kind: EventKind, request: RequestT, recorded_at: float) -> None:
        # Future.__init__ would build a Condition per event; the property below makes it lazily.
        self._state = PENDING
        self._result = None
        self._exception = None
        self._waiters: list[Any] = []
        self._done_callbacks: list[Any] = []
        self.kind = kind.name
        """``"offer_display"`` or ``"session_init"``."""
        self.request = request
        """The validated request model (``session_uuid`` is known at once for session inits)."""
        self.recorded_at = recorded_at
        """When ``record_*`` took it (seconds since the epoch)."""
        self._kind = kind
        self._deadline = 0.0
        self._spool_id: int | None = None
        self._started = False

    @property
    def _condition(self) -> threading.Condition:  # type: ignore[override]
        condition: threading.Condition | None = self.__dict__.get("_lazy_condition")
        if condition is None:  # setdefault is atomic: racing threads get the same Condition
            condition = self.__dict__.setdefault("_lazy_condition", threading.Condition())
        return condition

    def __repr__(self) -> str:
        return f"<RecordedEvent {self.kind} state={self._state}>"
