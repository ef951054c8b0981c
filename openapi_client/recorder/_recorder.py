"""``EventRecorder``: record UI events in microseconds from a web request, deliver them in the
background through outages, exits, crashes and forks. See docs/EventRecorder.md."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import InvalidStateError
from dataclasses import dataclass
from typing import Any

from openapi_client._logs import logger
from openapi_client.api_client import ApiClient
from openapi_client.exceptions import (
    ApiConnectionError,
    ApiException,
    ApiStatusError,
    ApiTypeError,
    ApiValueError,
    OpenApiException,
    RecorderClosedError,
    RecorderError,
    RecorderFullError,
)
from openapi_client.models.offer_display import OfferDisplay
from openapi_client.models.offer_display_create_data import OfferDisplayCreateData
from openapi_client.models.session_init import SessionInit
from openapi_client.models.session_init_create_data import SessionInitCreateData
from openapi_client.recorder._event import (
    KINDS,
    OFFER_DISPLAY,
    SESSION_INIT,
    EventKind,
    RecordedEvent,
)
from openapi_client.recorder._gate import DeliveryGate
from openapi_client.recorder._spool import BUSY_SECONDS, Spool, SpooledEvent
from openapi_client.retries import NO_RETRIES, RetryPolicy, parse_retry_after

_STOP = object()
_PUMP = object()
_NO_LOCK = contextlib.nullcontext()
"""Queue items that are not events: stop a worker; look in the spool for events to deliver."""
_SPOOL_POLL_SECONDS = 1.0
_PARK_SECONDS = 60.0
_SPOOL_RETRY_SECONDS = 1.0
"""A spool that could not be opened for another reason than a lock (no such folder, no
permission) is tried again at most once a second."""
_DROP_WARNING_SECONDS = 60.0

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


class EventRecorder:
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
        _RECORDERS.add(self)
        _install_process_hooks()
        self._open_spool(patience=BUSY_SECONDS)  # a file that cannot be used shows at once

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
        self._last_spool_warning = -_DROP_WARNING_SECONDS
        self._backlog = False  # the last pump filled the queue: more may wait on disk
        self._pump_queued = False
        self._unwarned_drops = 0
        self._last_drop_warning = -_DROP_WARNING_SECONDS

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
            raise RecorderClosedError("the recorder is closed: it takes no more events")
        now = time.monotonic()
        event: RecordedEvent[Any, Any] = RecordedEvent(kind, model, now)
        event._deadline = now + self._delivery_timeout
        if self._memory_only and self._queue.qsize() < self._max_queue:  # the common case
            with self._lock:
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
        with self._lock if not in_memory else _NO_LOCK:
            # An event that waits on disk is claimable the moment it is committed: register it
            # under the lock the pump takes, so the pump finds it already counted.
            if spool is not None:
                try:
                    body = kind.endpoint.serialize(model)
                    event._spool_id = spool.add(kind.name, body, event.recorded_at, in_memory)
                except sqlite3.Error as error:  # the disk refused: memory only, said once
                    self._spool_unusable(error)
            kept = in_memory or event._spool_id is not None
            if not in_memory and event._spool_id is not None:
                self._on_disk.add(event._spool_id)
                self._futures[event._spool_id] = event
        with self._lock:
            self._enqueued += 1
            if kept:
                self._pending += 1
        if self._sync:
            self._deliver(event)
        elif in_memory:
            self._queue.put(event)
        elif not kept:
            full = f"the memory queue is full ({self._max_queue} events) and there is no spool"
            self._drop(event, RecorderFullError(full), held=False)
        if not self._threads and not self._sync:
            self._start_workers()
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
                self._queue.put(_PUMP)
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
        """``sync=True``: what waits in the spool is delivered in the calling thread."""
        spool = self._spool
        while spool is not None and time.monotonic() < deadline:
            try:
                rows = spool.claim(16)
            except sqlite3.Error as error:
                logger.warning("EventRecorder: spool busy or broken, will try again: %s", error)
                return
            if not rows:
                return
            for row in rows:
                event = self._event_from(row)
                if event is not None:
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

    def _stop(self, reason: str, join_seconds: float, at_exit: bool = False) -> None:
        """Stop the workers; give back (spool) or drop (memory only) what is left."""
        self._stopping = True
        self._gate.wake()  # workers waiting out a backoff let their events go (``_abandon``)
        left: list[RecordedEvent[Any, Any]] = []
        while True:  # the queue first, the stop signals after: they must not be drained too
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, RecordedEvent):
                left.append(item)
        for _ in self._threads:
            self._queue.put(_STOP)
        deadline = time.monotonic() + join_seconds
        for thread in self._threads:  # a worker mid-send may outlive this; it is a daemon
            thread.join(max(0.0, deadline - time.monotonic()))
        spool = self._spool
        if spool is not None:
            kept = [event for event in left if event._spool_id is not None]
            self._give_back_spool()
            with self._settled:
                self._pending -= len(kept)  # on disk, free for the next recorder to take
                self._settled.notify_all()
            if kept:
                logger.info("EventRecorder %s: %d event(s) stay in the spool", reason, len(kept))
            left = [event for event in left if event._spool_id is None]
        for event in left:
            closed = RecorderClosedError(f"the recorder was {reason} before delivering it")
            self._drop(event, closed, warn=False)
        with self._lock:
            sending = self._pending if spool is None else 0
            earlier, self._unwarned_drops = self._unwarned_drops, 0
        if left or sending:
            logger.warning(
                "EventRecorder %s: %d event(s) not delivered and not spooled: %d dropped from "
                "the queue, %d still being sent%s",
                reason, len(left) + sending, len(left), sending,
                " (lost with the process)" if at_exit else "",
            )  # fmt: skip
        if earlier:
            logger.warning("EventRecorder %s: %d earlier drop(s) not yet reported", reason, earlier)

    def _give_back_spool(self) -> None:
        """Free every spooled event this stopped recorder holds but those still being sent
        (their workers give them back, or delete them, when they are done)."""
        spool = self._spool
        if spool is None:
            return
        try:
            with self._lock:
                in_flight = set(self._sending)
            spool.release(keep=in_flight)
        except sqlite3.Error as error:
            logger.warning("EventRecorder: could not give back spooled events: %s", error)

    # -- workers -----------------------------------------------------------------------------

    def _start_workers(self) -> None:
        with self._lock:
            if self._threads or self._stopping:
                return
            _import_what_workers_need()
            for number in range(self._worker_count):
                thread = threading.Thread(
                    target=self._work, name=f"openapi_client-recorder-{number}", daemon=True
                )
                self._threads.append(thread)
            if self._spool_path is not None:
                self._queue.put(_PUMP)  # events an earlier process left behind
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        poll = _SPOOL_POLL_SECONDS if self._spool_path is not None else None
        while True:
            try:
                item = self._queue.get(timeout=poll)
            except queue.Empty:  # idle: look in the spool now and then (one worker at a time)
                if time.monotonic() - self._last_pump >= _SPOOL_POLL_SECONDS:
                    self._pump()
                continue
            if item is _STOP:
                return
            if item is _PUMP:
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
        for row in rows:
            event = self._event_from(row)
            if event is not None:
                self._queue.put(event)

    def _pump_if_waiting(self) -> None:
        """After an event settles: if events wait on disk, fetch more (one pump queued at once)."""
        if self._spool is not None and (self._backlog or self._on_disk) and not self._pump_queued:
            self._pump_queued = True
            self._queue.put(_PUMP)

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
                placeholder: RecordedEvent[Any, Any] = RecordedEvent(OFFER_DISPLAY, None, row.recorded_at)
                placeholder._spool_id = row.id
                self._settle(placeholder, error=ApiValueError(f"unreadable spooled event {row.id}: {error}"))
                return None
            event = RecordedEvent(kind, request, row.recorded_at)
            event._spool_id = row.id
        event._deadline = time.monotonic() + self._delivery_timeout
        return event

    # -- delivery ----------------------------------------------------------------------------

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
            if last_error is not None and time.monotonic() >= event._deadline:
                self._give_up(event, last_error)
                return
            turn = self._gate.enter(event._deadline, self._is_stopping)
            if turn is None:
                if self._stopping:
                    self._abandon(event)
                else:
                    self._give_up(event, last_error or self._last_outage)
                return
            try:  # each attempt has the client's own timeouts: cutting one short would turn a
                # slow success into an ambiguous failure
                response = self._client.call(endpoint, event.request, {}, policy=NO_RETRIES)
            except ApiException as error:
                retry, healthy, wait = self._judge(error)
                self._gate.leave(turn, healthy, wait)
                if retry:
                    last_error = self._last_outage = error
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
                until = time.time() + min(self._delivery_timeout, _PARK_SECONDS)
                self._spool.park(event._spool_id, until)
            except sqlite3.Error as failure:  # still ours on disk: freed when we are gone
                logger.warning("EventRecorder: could not park an event in the spool: %s", failure)
            self._abandon(event)
            return
        self._settle(event, error=error or RecorderError("not delivered within delivery_timeout"))

    def _abandon(self, event: RecordedEvent[Any, Any]) -> None:
        """Stop holding an event in memory: a spooled one waits on disk, any other is dropped."""
        if event._spool_id is None:
            self._drop(event, RecorderClosedError("the recorder stopped before delivering it"))
            return
        with self._settled:
            self._futures[event._spool_id] = event  # a later claim here resolves this future
            self._sending.discard(event._spool_id)
            self._pending -= 1
            self._settled.notify_all()
        if self._stopping:
            self._give_back_spool()

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
            warn = warn and now - self._last_drop_warning >= _DROP_WARNING_SECONDS
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
                    self._spool_retry_at = 0.0 if locked else time.monotonic() + _SPOOL_RETRY_SECONDS
                    self._spool_unusable(error)
        return self._spool

    def _spool_unusable(self, error: Exception) -> None:
        now = time.monotonic()
        if now - self._last_spool_warning >= _DROP_WARNING_SECONDS:  # a full disk must not flood
            self._last_spool_warning = now
            logger.warning(
                "EventRecorder: spool %r unusable for now, events kept in memory: %s",
                self._spool_path, error,
            )  # fmt: skip

    # -- process events ----------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        self._start_fresh()  # the spool handle too: the child opens its own, as a new owner

    def _at_exit(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # No new thread at exit (3.12 refuses them): what the workers deliver in time is sent.
        self._flush(self._exit_timeout, start_workers=False)
        self._stop("stopped at interpreter exit", join_seconds=0.1, at_exit=True)


def _resolve(event: RecordedEvent[Any, Any], result: Any = None, error: BaseException | None = None) -> None:
    """Resolve a future the caller may have cancelled meanwhile (then nothing is left to do)."""
    try:
        if error is not None:
            event.set_exception(error)
        else:
            event.set_result(result)
    except InvalidStateError:
        pass


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


def _import_what_workers_need() -> None:
    """A fork while a worker thread is inside an ``import`` would leave the child's import lock
    held forever; everything a worker may import on first use is imported here, up front."""
    import email.utils  # noqa: F401 - Retry-After dates
    import encodings.idna  # noqa: F401 - urllib3's first connection
    import ipaddress  # noqa: F401
    import urllib.parse  # noqa: F401


_RECORDERS: weakref.WeakSet[EventRecorder] = weakref.WeakSet()
_hooks_installed = False


def _install_process_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_stop_all_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_reset_all_after_fork)


def _stop_all_at_exit() -> None:
    for recorder in list(_RECORDERS):
        try:
            recorder._at_exit()
        except Exception:  # one recorder's trouble must not cost the others their events
            logging.getLogger(__name__).exception("EventRecorder: error at exit")


def _reset_all_after_fork() -> None:
    for recorder in list(_RECORDERS):
        recorder._after_fork_in_child()
