"""How a recorder's worker threads deliver events: take them from memory or the spool, send each
under the delivery rules and the shared backoff, and settle it (future, ``on_error``, counts,
the spool row)."""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
import weakref
from concurrent.futures import InvalidStateError
from typing import Any

from openapi_client._logs import logger
from openapi_client.api_client import ApiClient
from openapi_client.exceptions import (
    ApiConnectionError,
    ApiException,
    ApiStatusError,
    ApiValueError,
    OpenApiException,
    RecorderClosedError,
    RecorderError,
    RecorderSpooledError,
)
from openapi_client.recorder._event import KINDS, OFFER_DISPLAY, RecordedEvent, monotonic_from_wall
from openapi_client.recorder._gate import DeliveryGate
from openapi_client.recorder._spool import HEARTBEAT_SECONDS, Spool, SpooledEvent
from openapi_client.retries import NO_RETRIES, RetryPolicy, parse_retry_after

STOP = object()
PUMP = object()
"""Queue items that are not events: stop a worker; look in the spool for events to deliver."""
SPOOL_POLL_SECONDS = 1.0
PARK_SECONDS = 60.0
WARNING_SECONDS = 60.0
"""At most one warning a minute for drops, and for a spool that cannot be written."""


class Delivery:
    """The state a recorder keeps per process, and the workers' side of it."""

    # Set by EventRecorder.__init__ before _start_fresh().
    _client: ApiClient
    _rules: RetryPolicy
    _delivery_timeout: float
    _max_queue: int
    _spool_path: str | None
    _on_error: Any

    def _start_fresh(self) -> None:
        """Everything a process owns by itself: made at start, and again in a forked child."""
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._pump_lock = threading.Lock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._gate = DeliveryGate(self._client.configuration.retries)
        self._spool: Spool | None = None
        self._spool_retry_at = 0.0
        self._stopping = False
        self._enqueued = self._sent = self._failed = self._dropped = self._retried = 0
        self._pending = 0
        self._on_disk: set[int] = set()  # spool ids held by this recorder, waiting on disk
        self._sending: set[int] = set()  # spool ids being sent right now
        self._futures: weakref.WeakValueDictionary[int, RecordedEvent[Any, Any]] = (
            weakref.WeakValueDictionary()  # spool id → the future a caller may still hold
        )
        self._last_outage: ApiException | None = None
        self._last_pump = 0.0
        self._last_spool_warning = -WARNING_SECONDS
        self._backlog = False  # the last pump filled the queue: more may wait on disk
        self._pump_queued = False
        self._unwarned_drops = 0
        self._last_drop_warning = -WARNING_SECONDS

    def _give_back_spool(self) -> None:
        """Free every spooled event this stopped recorder holds but those still being sent
        (their workers give them back, or delete them, when they are done); the last one out
        closes the file."""
        spool = self._spool
        if spool is None:
            return
        try:
            with self._lock:
                in_flight = set(self._sending)
            spool.release(keep=in_flight)
            if not in_flight:
                spool.close(final=True)
        except sqlite3.Error as error:
            logger.warning("EventRecorder: could not give back spooled events: %s", error)

    def _keep_alive(self) -> None:
        """Renew this recorder's claim on its spooled events (a write every
        ``HEARTBEAT_SECONDS`` at most), however busy or blocked by an outage its workers are:
        an owner without a heartbeat for too long is taken for dead, and its events resent."""
        spool = self._spool
        if spool is None or self._stopping:
            return
        try:
            spool.heartbeat()
        except sqlite3.Error as error:
            logger.warning("EventRecorder: spool busy or broken, will try again: %s", error)

    def _work(self) -> None:
        poll = SPOOL_POLL_SECONDS if self._spool_path is not None else None
        while True:
            self._keep_alive()
            try:
                item = self._queue.get(timeout=poll)
            except queue.Empty:  # idle: look in the spool now and then (one worker at a time)
                if time.monotonic() - self._last_pump >= SPOOL_POLL_SECONDS:
                    self._pump()
                continue
            if item is STOP:
                return
            if item is PUMP:
                self._pump()
            else:
                self._deliver(item)

    def _pump(self) -> None:
        """Move events from the spool into the memory queue, as far as there is room."""
        spool = self._spool
        if spool is None or self._stopping or not self._pump_lock.acquire(blocking=False):
            return
        self._last_pump = time.monotonic()
        self._pump_queued = False
        try:
            room = self._max_queue - self._queue.qsize()
            limit = min(room, 256)
            rows = spool.claim(limit) if room > 0 else []
            self._backlog = room <= 0 or len(rows) == limit  # more may wait on disk
            if not rows:
                spool.heartbeat()
        except sqlite3.Error as error:
            logger.warning("EventRecorder: spool busy or broken, will try again: %s", error)
            return
        finally:
            self._pump_lock.release()
        events = [event for event in map(self._event_from, rows) if event is not None]
        with self._lock:  # ``_stop`` drains the queue under this lock, once ``_stopping`` is set
            if not self._stopping:
                for event in events:
                    self._queue.put(event)
                return
        self._leave_in_spool(events)  # claimed while the recorder stopped: give them back
        self._give_back_spool()

    def _pump_if_waiting(self) -> None:
        """After an event settles: if events wait on disk, fetch more (one pump queued at once)."""
        if self._spool is not None and (self._backlog or self._on_disk) and not self._pump_queued:
            self._pump_queued = True
            self._queue.put(PUMP)

    def _event_from(self, row: SpooledEvent) -> RecordedEvent[Any, Any] | None:
        with self._lock:
            if row.id in self._on_disk:
                self._on_disk.discard(row.id)  # already counted as pending
            else:
                self._pending += 1
            event = self._futures.pop(row.id, None)
        if event is None:
            kind = KINDS.get(row.kind)
            try:
                if kind is None:
                    raise ApiValueError(f"unknown event kind {row.kind!r} in the spool")
                request = kind.endpoint.request_type.model_validate_json(row.body)
            except (ValueError, OpenApiException) as error:
                recorded_at = monotonic_from_wall(row.recorded_at)
                placeholder: RecordedEvent[Any, Any] = RecordedEvent(
                    OFFER_DISPLAY, None, recorded_at
                )
                placeholder._spool_id = row.id
                self._settle(
                    placeholder, error=ApiValueError(f"unreadable spooled event {row.id}: {error}")
                )
                return None
            event = RecordedEvent(kind, request, monotonic_from_wall(row.recorded_at))
            event._spool_id = row.id
        event._deadline = time.monotonic() + self._delivery_timeout
        return event

    def _deliver(self, event: RecordedEvent[Any, Any]) -> None:
        """Send one event until it is acknowledged, fails for good, or runs out of time."""
        if not event._started:
            event._started = True
            if not event.set_running_or_notify_cancel():  # the caller cancelled it: not sent
                self._settle(event, cancelled=True)
                return
        if event._spool_id is not None:
            with self._lock:
                self._sending.add(event._spool_id)
        last_error: ApiException | None = None
        endpoint = event._kind.endpoint
        while True:
            self._keep_alive()
            now = time.monotonic()
            if last_error is not None and now >= event._deadline:
                self._give_up(event, last_error)
                return
            # The gate is waited at in slices, so that the heartbeat goes on during an outage.
            turn = self._gate.enter(
                min(event._deadline, now + HEARTBEAT_SECONDS), self._is_stopping
            )
            if turn is None:
                if self._stopping:
                    self._abandon(event)
                elif time.monotonic() >= event._deadline:
                    self._give_up(event, last_error)
                else:
                    continue
                return
            try:  # each attempt has the client's own timeouts: cutting one short would turn a
                # slow success into an ambiguous failure (so the last may end past the deadline)
                response = self._client.call(endpoint, event.request, {}, policy=NO_RETRIES)
            except ApiException as error:
                retry, healthy, wait = self._judge(error)
                self._gate.leave(turn, healthy, wait)
                if not healthy:  # what events that wait out the gate are told, if they must be
                    self._last_outage = error
                if retry:
                    last_error = error
                    with self._lock:
                        self._retried += 1
                    continue
                self._settle(event, error=error)
            except OpenApiException as error:  # e.g. no credential: nothing was sent
                self._gate.leave(turn, True)
                self._settle(event, error=error)
            except Exception as error:  # a bug, not a delivery failure: keep the worker alive
                self._gate.leave(turn, True)
                logger.exception("EventRecorder: unexpected error while sending an event")
                self._settle(event, error=RecorderError(f"unexpected error: {error!r}"))
            else:
                self._gate.leave(turn, True)
                self._settle(event, result=response.data)
            return

    def _judge(self, error: ApiException) -> tuple[bool, bool, float | None]:
        """(retry?, did the API answer like a working server?, seconds it asked to wait)."""
        if isinstance(error, ApiConnectionError):
            return self._rules.should_retry_failure(error.kind), False, None
        if isinstance(error, ApiStatusError):
            status = error.status
            headers = {k.lower(): v for k, v in (error.headers or {}).items()}
            overloaded = status >= 500 or status in (408, 429)
            wait = parse_retry_after(headers.get("retry-after")) if overloaded else None
            if wait is not None:  # at most the client's cap: then one probe asks again
                wait = min(wait, self._client.configuration.retries.max_retry_after)
            return self._rules.should_retry_status(status), not overloaded, wait
        return False, True, None  # a 2xx that is not the promised model: the API is up

    def _give_up(self, event: RecordedEvent[Any, Any], error: ApiException | None) -> None:
        """Out of time: with a spool the event waits there for a later try; else it fails."""
        if event._spool_id is not None and self._spool is not None:
            try:
                until = time.time() + min(self._delivery_timeout, PARK_SECONDS)
                self._spool.park(event._spool_id, until)
            except sqlite3.Error as failure:  # still ours on disk: freed when we are gone
                logger.warning("EventRecorder: could not park an event in the spool: %s", failure)
            self._abandon(event)
            return
        if error is not None:
            self._settle(event, error=error)
            return
        outage = self._last_outage
        seen = f" (the last failure seen: {outage})" if outage is not None else ""
        never_tried = RecorderError(  # the gate stayed shut: no attempt of its own
            f"not delivered within delivery_timeout: the API was unavailable the whole time{seen}"
        )
        never_tried.__cause__ = outage  # another event's: for its type and details
        self._settle(event, error=never_tried)

    def _abandon(self, event: RecordedEvent[Any, Any]) -> None:
        """Stop holding an event in memory: a spooled one waits on disk, any other is dropped."""
        if event._spool_id is None:
            self._drop(event, RecorderClosedError("the recorder stopped before delivering it"))
            return
        with self._settled:
            stopping = self._stopping
            if not stopping:
                self._futures[event._spool_id] = event  # a later claim here resolves it
            self._sending.discard(event._spool_id)
            self._pending -= 1
            self._settled.notify_all()
        if stopping:
            _resolve(event, error=_spooled_error())
            self._give_back_spool()

    def _leave_in_spool(self, events: list[RecordedEvent[Any, Any]], held: bool = True) -> None:
        """The recorder stops with these spooled events not sent: each stays on disk for the
        next recorder (its future says so), or, cancelled, is deleted and counted dropped.
        ``held``: counted as pending (``False``: parked ones, already let go)."""
        for event in events:
            if event.cancelled():
                self._settle(event, cancelled=True)
                continue
            if held:
                with self._settled:
                    self._pending -= 1
                    self._settled.notify_all()
            _resolve(event, error=_spooled_error())

    def _settle(
        self,
        event: RecordedEvent[Any, Any],
        result: Any = None,
        error: OpenApiException | None = None,
        cancelled: bool = False,
    ) -> None:
        """The end of an event: out of the spool, its future resolved, ``on_error``, counted."""
        spool, spool_id = self._spool, event._spool_id
        if spool is not None and spool_id is not None:
            try:
                spool.delete([spool_id])
            except sqlite3.Error as failure:  # it stays; a later recorder may send it again
                logger.warning("EventRecorder: could not delete a settled event: %s", failure)
        if cancelled:
            self._report(event, RecorderError("cancelled by the caller before it was sent"))
        elif error is not None:
            _resolve(event, error=error)
            self._report(event, error)
        else:
            _resolve(event, result=result)
        with self._settled:
            if spool_id is not None:
                self._sending.discard(spool_id)
            if cancelled:
                self._dropped += 1
            elif error is None:
                self._sent += 1
            else:
                self._failed += 1
            self._pending -= 1
            self._settled.notify_all()
        if self._stopping:
            self._give_back_spool()
        else:
            self._pump_if_waiting()

    def _drop(
        self,
        event: RecordedEvent[Any, Any],
        error: RecorderError,
        held: bool = True,
        warn: bool = True,
    ) -> None:
        """Lose an event, visibly: its future fails, ``on_error``, counted, a warning a minute
        (``warn=False``: the caller says it all in one warning)."""
        _resolve(event, error=error)
        self._report(event, error)
        now = time.monotonic()
        with self._settled:
            if held:
                self._pending -= 1
                self._settled.notify_all()
            self._dropped += 1
            self._unwarned_drops += warn
            warn = warn and now - self._last_drop_warning >= WARNING_SECONDS
            if warn:
                count, self._unwarned_drops, self._last_drop_warning = self._unwarned_drops, 0, now
        if warn:
            logger.warning("EventRecorder dropped %d event(s): %s", count, error)

    def _report(self, event: RecordedEvent[Any, Any], error: OpenApiException) -> None:
        if self._on_error is None:
            return
        try:
            self._on_error(event, error)
        except Exception:
            logger.exception("EventRecorder: on_error raised; delivery goes on")

    def _is_stopping(self) -> bool:
        return self._stopping


def _spooled_error() -> RecorderSpooledError:
    return RecorderSpooledError(
        "the recorder stopped before delivering it; it waits in the spool, for the next recorder"
    )


def _resolve(
    event: RecordedEvent[Any, Any], result: Any = None, error: BaseException | None = None
) -> None:
    """Resolve a future the caller may have cancelled meanwhile (then nothing is left to do)."""
    try:
        if error is not None:
            event.set_exception(error)
        else:
            event.set_result(result)
    except InvalidStateError:
        pass
