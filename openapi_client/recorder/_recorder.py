"""``EventRecorder``: record UI events in microseconds from a web request, deliver them in the
background through outages, exits, crashes and forks. See docs/EventRecorder.md."""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

from openapi_client._fork import after_fork_in_child
from openapi_client.api_client import ApiClient
from openapi_client.exceptions import (
    ApiTypeError,
    ApiValueError,
    RecorderClosedError,
    RecorderFullError,
)
from openapi_client.models.offer_display import OfferDisplay
from openapi_client.models.offer_display_create_data import OfferDisplayCreateData
from openapi_client.models.session_init import SessionInit
from openapi_client.models.session_init_create_data import SessionInitCreateData
from openapi_client.recorder._dispatcher import Dispatcher, OnError, refuse_in_sender
from openapi_client.recorder._event import OFFER_DISPLAY, SESSION_INIT, EventKind, RecordedEvent
from openapi_client.recorder._notices import Notices
from openapi_client.recorder._process import register_for_exit
from openapi_client.recorder._spool import (
    SETUP_SECONDS,
    NotASpool,
    Spool,
    SpoolSummary,
    check_spool_file,
    check_spool_path,
)
from openapi_client.recorder._spool_store import CLAIM_SIZE, PARK_SECONDS, SpoolStore
from openapi_client.recorder._store import CLOSED, FULL, LATE, QUEUED, MemoryStore, Outcome
from openapi_client.retries import RetryPolicy

MAX_IN_FLIGHT = 100
"""The default ``workers``: requests in flight at most (the limit adapts below it). At 300 ms a
request, 100 in flight carry 330 events a second."""


@dataclass(frozen=True)
class RecorderStats:
    """What a recorder did, as numbers an application can export."""

    enqueued: int
    """Events this recorder took: accepted by ``record_*``, or adopted from the spool."""
    sent: int
    """Events the API acknowledged."""
    failed: int
    """Events that failed for good (their future holds the error)."""
    dropped: int
    """Events lost: the memory queue was full without a spool, or the recorder was closed."""
    retried: int
    """Attempts made again after a failure that was safe (or allowed) to retry."""
    pending: int
    """Events taken and not yet sent, failed or dropped: in memory, being sent, or waiting in
    the spool. Always ``enqueued == sent + failed + dropped + pending``."""
    spooled: int
    """Events in the spool file now, whoever holds them (0 without a spool, -1 when the file
    cannot be read)."""
    adopted: int = 0
    """Of ``enqueued``, events taken over from the spool (another recorder or process recorded
    them)."""
    dropped_by_reason: dict[str, int] = field(default_factory=dict)
    """``dropped`` by reason: ``queue_full``, ``closed``."""
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    """``failed`` by reason: ``rejected`` (the API said no), ``credential`` (it refused the
    token: 401 or 403), ``ambiguous`` (no answer, not retried), ``expired``
    (``delivery_timeout`` passed), ``not_sent``, ``unexpected``."""
    oldest_pending_age: float | None = None
    """Seconds since the oldest event waiting in memory was recorded (``None``: none waits)."""
    last_failure: str | None = None
    """The last failure that kept events back (an outage, a refused credential), if any."""
    spool_error: str | None = None
    """Why the spool file cannot be used now (locked by another process, read-only, damaged),
    or ``None``."""
    concurrency_limit: int = 0
    """Requests allowed in flight now: it adapts between 1 and ``workers`` (see "Sizing")."""
    in_flight: int = 0
    """Requests in flight now."""
    latency: float | None = None
    """The API's smoothed answer time in seconds, as the recorder measured it (``None``: no
    answer yet)."""


class EventRecorder:
    """Records events in the caller's thread in microseconds; sender threads deliver them.

    The parts: a store (memory, or memory over a spool file) owns the events and their counts;
    a dispatcher sends them and ends each one; this class checks arguments and takes events.
    """

    def __init__(
        self,
        api_client: ApiClient,
        *,
        max_queue: int = 10_000,
        workers: int = MAX_IN_FLIGHT,
        spool: str | os.PathLike[str] | None = None,
        delivery_timeout: float = 60.0,
        retry_ambiguous: bool = False,
        on_error: OnError | None = None,
        exit_timeout: float = 2.0,
        sync: bool = False,
        handle_sigterm: bool = True,
    ) -> None:
        if not isinstance(api_client, ApiClient):
            raise ApiTypeError(f"api_client must be an ApiClient, not {type(api_client).__name__}")
        _check_count("max_queue", max_queue)
        _check_count("workers", workers)
        _check_seconds("delivery_timeout", delivery_timeout)
        _check_seconds("exit_timeout", exit_timeout)
        if on_error is not None and not callable(on_error):
            raise ApiTypeError("on_error must be a callable(event, error) or None")
        notices = Notices()
        store: MemoryStore
        if spool is not None:
            path = check_spool_path(spool)
            try:
                check_spool_file(path)
            except NotASpool:
                raise
            except sqlite3.Error:  # locked or unreadable now: checked again when it opens
                pass
            store = SpoolStore(max_queue, path, notices, claim_size=1 if sync else CLAIM_SIZE)
            store.park_seconds = min(float(delivery_timeout), PARK_SECONDS)
            opened = store.open(patience=SETUP_SECONDS)  # a locked file is tried again later
            if opened is not None:
                opened.close()  # reopened on first use: a --preload master keeps no file open
        else:
            store = MemoryStore(max_queue)
        api_client.reserve_connections(workers)
        self._sync = bool(sync)
        self._delivery_timeout = float(delivery_timeout)
        self._dispatcher = Dispatcher(
            api_client,
            store,
            workers=workers,
            delivery_timeout=float(delivery_timeout),
            rules=RetryPolicy(retry_ambiguous=bool(retry_ambiguous)),
            on_error=on_error,
            notices=notices,
            exit_timeout=float(exit_timeout),
        )
        after_fork_in_child(self._dispatcher, Dispatcher.after_fork_in_child)
        register_for_exit(self._dispatcher, handle_sigterm=bool(handle_sigterm))
        # Dropped without close(): the senders deliver what is held, then end.
        weakref.finalize(self, self._dispatcher.abandon)

    # -- recording (the caller's thread) ------------------------------------------------------

    def record_offer_display(
        self, body: OfferDisplayCreateData | dict[str, Any]
    ) -> RecordedEvent[OfferDisplayCreateData, OfferDisplay]:
        """Record that an offer was shown; returns at once (``sync=False``) with its future."""
        return self._accept(OFFER_DISPLAY, OFFER_DISPLAY.endpoint.validate(body))

    def record_session_init(
        self, body: SessionInitCreateData | dict[str, Any] | None = None
    ) -> RecordedEvent[SessionInitCreateData, SessionInit]:
        """Record that a session began; without a ``sessionUuid`` one is made here (uuid4), so
        ``event.request.session_uuid`` is known before the API answers."""
        model = SESSION_INIT.endpoint.validate(body)
        if model is None or model.session_uuid is None:
            model = SessionInitCreateData(session_uuid=str(uuid.uuid4()))
        return self._accept(SESSION_INIT, model)

    def _accept(self, kind: EventKind, model: Any) -> RecordedEvent[Any, Any]:
        dispatcher = self._dispatcher
        store = dispatcher.store
        if store.closed:
            raise RecorderClosedError(CLOSED)
        now = time.monotonic()
        event: RecordedEvent[Any, Any] = RecordedEvent(kind, model, now)
        event._deadline = now + self._delivery_timeout
        status = store.add(event, not self._sync)
        if status == QUEUED:  # the common case
            if self._sync:
                dispatcher.deliver(event)
        elif status == FULL:
            full = f"the memory queue is full ({store.max_queue} events) and the spool cannot take it"
            dispatcher.finish(event, Outcome.DROPPED, RecorderFullError(full), reason="queue_full")
        elif status == LATE:  # close() came during the spool write
            dispatcher.leave(event, quiet=False)
        elif not dispatcher.wake():  # WAKE, and no thread could start (interpreter shutdown,
            # a thread limit): send it here.
            dispatcher.send_here(time.monotonic() + dispatcher.exit_timeout)
        return event

    # -- flush, close, stats -----------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until nothing this recorder holds is pending, nor anything in the spool that it
        could take; ``True`` if so. Raises ``RecorderError`` from the recorder's own threads."""
        return self._dispatcher.flush(timeout, sync=self._sync)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what this recorder holds for up to ``timeout`` seconds, then stop: what is
        left stays in the spool, or is dropped (said in one warning). Idempotent; ``with``
        calls it too. Raises ``RecorderError`` from the recorder's own threads."""
        refuse_in_sender("close")
        self._dispatcher.close("closed", timeout)

    def __enter__(self) -> EventRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stats(self) -> RecorderStats:
        """Counts since this recorder started (in this process: a forked child starts at 0)."""
        store, limit = self._dispatcher.store, self._dispatcher.limit
        with store.lock:
            tally = store.tally
            counts = (tally.enqueued, tally.sent, tally.failed, tally.dropped, tally.retried)
            pending, adopted = tally.pending, tally.adopted
            dropped, failed = dict(tally.dropped_by_reason), dict(tally.failed_by_reason)
        return RecorderStats(
            *counts,
            pending=pending,
            spooled=store.on_disk(),
            adopted=adopted,
            dropped_by_reason=dropped,
            failed_by_reason=failed,
            oldest_pending_age=store.oldest_age(),
            last_failure=str(outage) if (outage := self._dispatcher.last_outage) else None,
            spool_error=store.file_error,
            concurrency_limit=limit.current,
            in_flight=limit.in_flight,
            latency=limit.smoothed,
        )


def read_spool_summary(path: str | os.PathLike[str]) -> SpoolSummary:
    """What a spool file holds, read without taking or changing anything (for operators).
    Refuses a file that is not a spool, or one this user should not trust (``ApiValueError``)."""
    checked = check_spool_path(path)
    check_spool_file(checked)
    spool = Spool(checked, register=False)
    try:
        return spool.summary()
    finally:
        spool.close()


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiTypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ApiValueError(f"{name} must be >= 1, got {value}")


def _check_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiTypeError(f"{name} must be seconds as a number, not {type(value).__name__}")
    if not 0 < value < 1e9:
        raise ApiValueError(f"{name} must be a positive number of seconds, got {value}")
