"""``EventRecorder``: record UI events in microseconds from a web request, deliver them in the
background through outages, exits, crashes and forks. See docs/EventRecorder.md."""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openapi_client._logs import logger
from openapi_client.api_client import ApiClient
from openapi_client.exceptions import (
    ApiTypeError,
    ApiValueError,
    OpenApiException,
    RecorderClosedError,
    RecorderFullError,
)
from openapi_client.models.offer_display import OfferDisplay
from openapi_client.models.offer_display_create_data import OfferDisplayCreateData
from openapi_client.models.session_init import SessionInit
from openapi_client.models.session_init_create_data import SessionInitCreateData
from openapi_client.recorder._delivery import PUMP, WARNING_SECONDS
from openapi_client.recorder._event import (
    OFFER_DISPLAY,
    SESSION_INIT,
    EventKind,
    RecordedEvent,
)
from openapi_client.recorder._lifecycle import RECORDERS, Lifecycle, install_process_hooks
from openapi_client.recorder._spool import BUSY_SECONDS, Spool
from openapi_client.retries import RetryPolicy

_CLOSED = "the recorder is closed: it takes no more events"
_SPOOL_RETRY_SECONDS = 1.0
"""A spool that could not be opened for another reason than a lock (no such folder, no
permission) is tried again at most once a second."""

OnError = Callable[[RecordedEvent[Any, Any], OpenApiException], object]


@dataclass(frozen=True)
class RecorderStats:
    """What a recorder did, as numbers an application can export."""

    enqueued: int
    """Events ``record_*`` accepted."""
    sent: int
    """Events the API acknowledged."""
    failed: int
    """Events that failed for good (their future holds the error)."""
    dropped: int
    """Events lost: the memory queue was full without a spool, or the recorder was closed."""
    retried: int
    """Attempts made again after a failure that was safe (or allowed) to retry."""
    pending: int
    """Events this recorder holds and has not settled yet."""
    spooled: int
    """Events in the spool file now, whoever holds them (0 without a spool)."""


class EventRecorder(Lifecycle):
    """Records events in the caller's thread in microseconds; worker threads deliver them."""

    def __init__(
        self,
        api_client: ApiClient,
        *,
        max_queue: int = 10_000,
        workers: int = 4,
        spool: str | os.PathLike[str] | None = None,
        delivery_timeout: float = 60.0,
        retry_ambiguous: bool = False,
        on_error: OnError | None = None,
        exit_timeout: float = 2.0,
        sync: bool = False,
    ) -> None:
        if not isinstance(api_client, ApiClient):
            raise ApiTypeError(f"api_client must be an ApiClient, not {type(api_client).__name__}")
        _check_count("max_queue", max_queue)
        _check_count("workers", workers)
        _check_seconds("delivery_timeout", delivery_timeout)
        _check_seconds("exit_timeout", exit_timeout)
        if on_error is not None and not callable(on_error):
            raise ApiTypeError("on_error must be a callable(event, error) or None")
        if spool is not None and not isinstance(spool, str | os.PathLike):
            raise ApiTypeError(f"spool must be a file path or None, not {type(spool).__name__}")
        self._client = api_client
        self._max_queue = max_queue
        self._worker_count = workers
        self._spool_path = os.fspath(spool) if spool is not None else None
        self._delivery_timeout = float(delivery_timeout)
        self._rules = RetryPolicy(retry_ambiguous=bool(retry_ambiguous))
        self._on_error = on_error
        self._exit_timeout = float(exit_timeout)
        self._sync = bool(sync)
        self._memory_only = self._spool_path is None and not self._sync
        self._closed = False
        self._start_fresh()
        RECORDERS.add(self)
        install_process_hooks()
        opened = self._open_spool(patience=BUSY_SECONDS)  # an unusable file shows at once
        if opened is not None:
            opened.close()  # reopened on first use: a --preload master keeps no file open

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
        if self._closed:
            raise RecorderClosedError(_CLOSED)
        now = time.monotonic()
        event: RecordedEvent[Any, Any] = RecordedEvent(kind, model, now)
        event._deadline = now + self._delivery_timeout
        if self._memory_only and self._queue.qsize() < self._max_queue:  # the common case
            with self._lock:  # ``close()`` sets ``_closed`` under it: no event slips past
                if self._closed:
                    raise RecorderClosedError(_CLOSED)
                self._enqueued += 1
                self._pending += 1
                self._queue.put(event)
            if not self._threads:
                self._start_workers()
            return event
        return self._accept_slowly(event, kind, model)

    def _accept_slowly(
        self, event: RecordedEvent[Any, Any], kind: EventKind, model: Any
    ) -> RecordedEvent[Any, Any]:
        """With a spool, in sync mode, or with a full queue."""
        in_memory = self._sync or self._queue.qsize() < self._max_queue
        spool = self._spool if self._spool is not None else self._open_spool()
        if in_memory:  # the disk write happens without the lock: other threads record meanwhile
            self._write_to_spool(event, kind, model, spool, in_memory)
            with self._lock:
                closed = self._closed
                if not closed:
                    self._enqueued += 1
                    self._pending += 1
                    if not self._sync:
                        self._queue.put(event)
            if closed:  # ``close()`` came during the write
                return self._closed_meanwhile(event)
            if self._sync:
                self._deliver(event)
        else:
            # An event that waits on disk is claimable the moment it is committed: register it
            # under the lock the pump takes, so the pump finds it already counted.
            with self._lock:
                if self._closed:
                    raise RecorderClosedError(_CLOSED)
                self._write_to_spool(event, kind, model, spool, in_memory)
                self._enqueued += 1
                if event._spool_id is not None:
                    self._pending += 1
                    self._on_disk.add(event._spool_id)
                    self._futures[event._spool_id] = event
            if event._spool_id is None:
                full = f"the memory queue is full ({self._max_queue} events) and there is no spool"
                self._drop(event, RecorderFullError(full), held=False)
        if not self._threads and not self._sync:
            self._start_workers()
        return event

    def _write_to_spool(
        self, event: RecordedEvent[Any, Any], kind: EventKind, model: Any, spool: Spool | None,
        queued: bool,
    ) -> None:  # fmt: skip
        if spool is None:
            return
        try:
            body = kind.endpoint.serialize(model)
            event._spool_id = spool.add(kind.name, body, event.recorded_at, queued)
        except sqlite3.Error as error:  # the disk refused: memory only, said once
            self._spool_unusable(error)

    def _closed_meanwhile(self, event: RecordedEvent[Any, Any]) -> RecordedEvent[Any, Any]:
        """``close()`` came while ``record_*`` wrote the event to the spool: it stays there for
        the next recorder; without a spool write nothing was taken."""
        spool = self._spool
        if event._spool_id is None or spool is None:
            raise RecorderClosedError(_CLOSED)
        try:
            spool.park(event._spool_id, time.time())  # free at once, for whoever comes next
        except sqlite3.Error as error:  # still ours on disk: freed when this process is gone
            logger.warning("EventRecorder: could not give back an event: %s", error)
        self._leave_in_spool([event], held=False)
        if self._stopping:  # ``close()`` already gave the file back: do not keep it open
            self._give_back_spool()
        return event

    # -- flush, close, stats -----------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until nothing this recorder holds is pending (spool included); ``True`` if so."""
        return self._flush(timeout, start_workers=True)

    def _flush(self, timeout: float, start_workers: bool) -> bool:
        deadline = time.monotonic() + timeout
        if self._spool_path is not None and start_workers:
            self._open_spool()  # events an earlier process left are delivered too
            if self._sync:
                self._deliver_spooled_here(deadline)
            else:
                self._start_workers()
        while True:
            if self._spool is not None and not self._sync:
                self._queue.put(PUMP)
            with self._settled:
                while self._pending and time.monotonic() < deadline:
                    self._settled.wait(deadline - time.monotonic())
                if self._pending:
                    return False
            if self._spool_left() == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            with self._settled:  # events wait in the spool (parked, or just claimed): look again
                self._settled.wait(min(0.05, max(0.0, deadline - time.monotonic())))

    def _deliver_spooled_here(self, deadline: float) -> None:
        """``sync=True``: what waits in the spool is delivered in the calling thread, one event
        at a time, none started after ``deadline`` (the last may end one attempt after it)."""
        spool = self._spool
        while spool is not None and time.monotonic() < deadline:
            try:
                rows = spool.claim(1)
            except sqlite3.Error as error:
                logger.warning("EventRecorder: spool busy or broken, will try again: %s", error)
                return
            if not rows:
                return
            event = self._event_from(rows[0])
            if event is not None:
                event._deadline = min(event._deadline, deadline)
                self._deliver(event)

    def close(self, timeout: float = 5.0) -> None:
        """Flush for up to ``timeout`` seconds, then stop. Idempotent; ``with`` calls it too."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        started = time.monotonic()
        self.flush(timeout)
        self._stop("closed", join_seconds=max(0.1, timeout - (time.monotonic() - started)))

    def __enter__(self) -> EventRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stats(self) -> RecorderStats:
        """Counts since this recorder started (in this process: a forked child starts at 0)."""
        with self._lock:
            counts = (self._enqueued, self._sent, self._failed, self._dropped, self._retried)
            pending = self._pending
        spooled = 0
        if self._spool is not None:
            try:
                spooled = self._spool.count()
                if self._stopping:  # a closed recorder keeps no file open
                    self._spool.close(final=True)
            except sqlite3.Error:
                spooled = -1
        return RecorderStats(*counts, pending=pending, spooled=spooled)

    def _spool_left(self) -> int:
        if self._spool is None:
            return 0
        try:
            return self._spool.deliverable()
        except sqlite3.Error:
            return 1  # cannot tell: not flushed

    # -- the spool ---------------------------------------------------------------------------

    def _open_spool(self, patience: float = 0.0) -> Spool | None:
        """The spool; one that could not be opened is tried again by ``record_*``, without
        waiting: at once while another process holds it locked (a failed try costs ~0.1 ms),
        once a second otherwise. Events meanwhile are held in memory, and a warning says so."""
        if self._spool_path is None or self._spool is not None:
            return self._spool
        if time.monotonic() < self._spool_retry_at:
            return None
        with self._lock:
            if self._spool is None and time.monotonic() >= self._spool_retry_at:
                try:
                    self._spool = Spool(self._spool_path, patience=patience)
                except (sqlite3.Error, OSError) as error:
                    locked = "locked" in str(error)
                    self._spool_retry_at = (
                        0.0 if locked else time.monotonic() + _SPOOL_RETRY_SECONDS
                    )
                    self._spool_unusable(error)
        return self._spool

    def _spool_unusable(self, error: Exception) -> None:
        now = time.monotonic()
        if now - self._last_spool_warning >= WARNING_SECONDS:  # a full disk must not flood
            self._last_spool_warning = now
            logger.warning(
                "EventRecorder: spool %r unusable for now, events kept in memory: %s",
                self._spool_path, error,
            )  # fmt: skip


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
