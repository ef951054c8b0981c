"""Sends what a store holds: sender threads, the shared gate, the delivery rules, and the one
place an event ends (``finish``).

Senders start with the first event and retire when idle; every user callback (``on_error``, a
future's done-callbacks) runs in ``finish``, outside every lock. A thread that cannot be started
(interpreter shutdown, a thread limit) never wedges the recorder: the caller's thread or the
exit handler sends instead.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import InvalidStateError
from typing import Any

from openapi_client._logs import logger
from openapi_client.api_client import ApiClient
from openapi_client.exceptions import (
    ApiConnectionError,
    ApiException,
    ApiStatusError,
    OpenApiException,
    RecorderClosedError,
    RecorderError,
    RecorderSpooledError,
)
from openapi_client.recorder._gate import DeliveryGate
from openapi_client.recorder._limit import ConcurrencyLimit, Signal
from openapi_client.recorder._notices import WARNING_SECONDS, Notices
from openapi_client.recorder._spool import HEARTBEAT_SECONDS
from openapi_client.recorder._store import STOP, Event, MemoryStore, Outcome
from openapi_client.retries import NO_RETRIES, RetryPolicy, parse_retry_after

OnError = Callable[[Event, OpenApiException], object]
End = tuple[Outcome, Any, str]
"""How an event ends: its outcome, the answer or error, the reason counted."""
THREAD_PREFIX = "openapi_client-recorder-"
IDLE_SECONDS = 5.0
"""A sender with nothing to do for this long ends (one stays to watch a spool file)."""
TAKE_SECONDS = 1.0
CREDENTIAL_STATUSES = (401, 403)
BUSY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Answers that say the API has too much to do: the limit shrinks."""
OUTAGE_SECONDS = 0.25
OUTAGE_ANSWERS = 3
"""Busy answers are an outage (every sender waits: the gate) when no request ever succeeded, or
once ``OUTAGE_ANSWERS`` came in a row and no request succeeded for ``OUTAGE_SECONDS`` (or two
smoothed round trips, if longer); until then they only shrink the limit."""

_here = threading.local()
"""``sender`` is set in a recorder's own threads (where ``flush`` and ``close`` cannot wait)."""


def in_sender_thread() -> bool:
    return getattr(_here, "sender", False)


class Dispatcher:
    """Delivers a store's events with ``client``, by the recorder's rules."""

    def __init__(
        self,
        client: ApiClient,
        store: MemoryStore,
        *,
        workers: int,
        delivery_timeout: float,
        rules: RetryPolicy,
        on_error: OnError | None,
        notices: Notices,
        exit_timeout: float,
    ) -> None:
        self.client = client
        self.exit_timeout = exit_timeout
        self.store = store
        self.workers = workers
        self.delivery_timeout = delivery_timeout
        self.rules = rules
        self.on_error = on_error
        self.notices = notices
        self._start_fresh()

    def _start_fresh(self) -> None:
        self.gate = DeliveryGate(self.client.configuration.retries)
        self.limit = ConcurrencyLimit(self.workers)
        self._last_success = 0.0  # no answer yet: a first busy answer is an outage
        self._busy_in_a_row = 0
        self._numbers = itertools.count()
        self.threads: list[threading.Thread] = []
        self.abandoned = False
        self.last_outage: ApiException | None = None
        self.unreported_drops = 0
        self._last_drop_line = -WARNING_SECONDS
        self._threads_lock = threading.Lock()

    def after_fork_in_child(self) -> None:
        """A forked child starts afresh: no threads, nothing held (the parent delivers what it
        recorded), its own counts; the spool is shared, as a new owner."""
        self.notices = Notices()
        self.store = self.store.fresh(self.notices)
        self._start_fresh()

    # -- senders ------------------------------------------------------------------------------

    def wake(self) -> bool:
        """Start a sender if events wait and none takes them; ``False`` if none could start."""
        store = self.store
        with store.lock:
            if store.senders or store.stopping:
                return True
            store.senders = 1
        _import_what_senders_need()
        return self._start_sender()

    def _grow(self) -> None:
        """A sender took an event and no other waits for the next: one more sender, up to
        twice the limit (spare senders wait ahead of it, so that a limit that doubles finds
        them ready). Senders whose event waits out a busy answer do not count. The caller's
        thread never starts one but the first."""
        store = self.store
        with store.lock:
            if store.waiting or store.stopping or store.senders >= self._most_senders():
                return
            store.senders += 1
        self._start_sender()

    def _most_senders(self) -> int:
        """Under the store's lock: how many senders may run now."""
        most = min(self.workers, 2 * self.limit.current + 2)
        return most + min(self.store.pausing, self.workers)

    def _retire_excess(self) -> bool:
        """Whether this sender may end because there are more than may run (the limit shrank)."""
        store = self.store
        with store.lock:
            if store.senders > max(1, self._most_senders()):
                store.senders -= 1
                return True
            return False

    def _start_sender(self) -> bool:
        """Start one sender (already counted in ``store.senders``)."""
        thread = threading.Thread(
            target=self._send_loop, name=f"{THREAD_PREFIX}{next(self._numbers)}", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:  # interpreter shutdown, or the thread limit
            with self.store.lock:
                self.store.senders -= 1
            return False
        with self._threads_lock:
            self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        return True

    def _send_loop(self) -> None:
        _here.sender = True
        store = self.store
        idle_since = time.monotonic()
        try:
            while True:
                store.chores()
                event = store.take(TAKE_SECONDS)
                if event is not None:
                    self._grow()
                    self.deliver(event)
                    idle_since = time.monotonic()
                    if self._retire_excess():
                        break
                    continue
                idle = time.monotonic() - idle_since >= IDLE_SECONDS or self.abandoned
                if store.retire(idle, keep_one=store.durable and not self.abandoned):
                    break
        except BaseException:  # killed (SystemExit from a callback …): the next event starts one
            with store.lock:
                store.senders -= 1
            raise
        if self.abandoned and store.senders == 0:
            store.give_back()

    def abandon(self) -> None:
        """The recorder was garbage-collected: deliver what is held, then end every sender."""
        self.abandoned = True
        store = self.store
        if store.close_intake():
            for _ in range(store.senders):  # behind the events held: they go first
                store.ready.put(STOP)

    def send_here(self, deadline: float) -> None:
        """Send what waits in memory in this thread, starting none after ``deadline`` (no
        sender thread could be started, or the interpreter is exiting)."""
        store = self.store
        while time.monotonic() < deadline:
            event = store.take(0.0)
            if event is None:
                return
            event._deadline = min(event._deadline or deadline, deadline)
            self.deliver(event)

    # -- one event ----------------------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        """Send one event until it is acknowledged, fails for good, or runs out of time."""
        if not event._deadline:
            event._deadline = time.monotonic() + self.delivery_timeout
        store = self.store
        last_error: ApiException | None = None
        not_before = 0.0  # this event's own wait after a busy answer
        tries = 0
        while True:
            store.keep_alive()
            now = time.monotonic()
            if last_error is not None and now >= event._deadline:
                self._give_up(event, last_error)
                return
            # Every wait is in slices, so that the heartbeat goes on during an outage.
            until = min(event._deadline, now + HEARTBEAT_SECONDS)
            if now < not_before:
                if not self._pause(min(until, not_before)):
                    self.leave(event)
                    return
                continue
            turn = self.gate.enter(until, self._stopping)
            started = None if turn is None else self.limit.acquire(until, self._stopping)
            if started is None:
                if turn is not None:
                    self.gate.cancel(turn)
                if store.stopping:
                    self.leave(event)
                elif time.monotonic() >= event._deadline:
                    self._give_up(event, last_error)
                else:
                    continue
                return
            assert turn is not None
            end, error, own_wait = self._attempt(event, turn, started)
            if end is not None:
                self.finish(event, *end)
                return
            last_error = error
            tries += 1
            store.count_retry()
            if own_wait is not None:  # a busy answer among successes: this event waits
                not_before = time.monotonic() + max(own_wait, self.rules.backoff(tries))

    def _pause(self, until: float) -> bool:
        """This event waits (a busy answer): its sender does not count against the limit's
        senders meanwhile, so that another takes the next event. ``False``: stopping."""
        store = self.store
        with store.lock:
            store.pausing += 1
        self._grow()  # another sender for the next event, if none waits for it
        try:
            return self.gate.pause(until, self._stopping)
        finally:
            with store.lock:
                store.pausing -= 1

    def _attempt(
        self, event: Event, turn: bool, started: float
    ) -> tuple[End | None, Any, float | None]:
        """One request, within a turn of the gate and room in the limit: how the event ends;
        or, to try again, ``None``, the error, and how long this event waits first (``None``:
        no wait of its own; the gate decides)."""
        healthy: bool | None = True
        signal, wait = Signal.NONE, None
        cpu_before = time.thread_time()
        try:  # each attempt has the client's own timeouts: cutting one short would turn a
            # slow success into an ambiguous failure (so the last may end past the deadline)
            response = self.client.call(event._kind.endpoint, event.request, {}, policy=NO_RETRIES)
            signal = Signal.OK
            return (Outcome.SENT, response.data, ""), None, None
        except ApiException as error:
            retry, healthy, signal, wait = self._judge(error)
            if healthy is False:  # what events that wait out the gate are told, if they must be
                self.last_outage = error
            if not retry:
                return (Outcome.FAILED, error, _reason(error)), None, None
            return None, error, (wait or 0.0) if healthy is None else None
        except OpenApiException as error:  # e.g. no credential: nothing was sent
            return (Outcome.FAILED, error, "not_sent"), None, None
        except Exception as error:  # a bug, not a delivery failure: keep the sender alive
            logger.exception("EventRecorder: unexpected error while sending an event")
            unexpected = RecorderError(f"unexpected error: {type(error).__name__}")
            return (Outcome.FAILED, unexpected, "unexpected"), None, None
        finally:  # even a BaseException leaves the gate and the limit for the others
            if signal is Signal.OK:
                self._last_success, self._busy_in_a_row = time.monotonic(), 0
            if self.gate.leave(turn, healthy, wait):
                self.limit.collapse()
            cpu = time.thread_time() - cpu_before
            self.limit.release(started, signal, backlog=not self.store.ready.empty(), cpu=cpu)

    def _judge(self, error: ApiException) -> tuple[bool, bool | None, Signal, float | None]:
        """(retry?, did the API answer like a working server (``None``: busy, not down)?, what
        it says of the load, seconds it asked to wait)."""
        if isinstance(error, ApiConnectionError):
            retry = self.rules.should_retry_failure(error.kind)
            if error.kind == "stale":  # a pooled connection the server had closed: not news
                return retry, True, Signal.NONE, None
            return retry, False, Signal.OVERLOAD, None
        if isinstance(error, ApiStatusError):
            status = error.status
            if status in CREDENTIAL_STATUSES and self.store.durable:
                self.notices.warn(
                    "credential", "the API refused the credential (HTTP %d): events are kept "
                    "in the spool and sent once the token is fixed", status,
                )  # fmt: skip
                return True, False, Signal.NONE, None
            retry = self.rules.should_retry_status(status)
            if status not in BUSY_STATUSES:
                return retry, True, Signal.OK, None
            headers = {k.lower(): v for k, v in (error.headers or {}).items()}
            wait = parse_retry_after(headers.get("retry-after"))
            if wait is not None:  # at most the client's cap: then one probe asks again
                wait = min(wait, self.client.configuration.retries.max_retry_after)
            down = self._count_busy_answer()
            return retry, False if down else None, Signal.OVERLOAD, wait
        return False, True, Signal.OK, None  # a 2xx that is not the promised model: the API is up

    def _count_busy_answer(self) -> bool:
        """Count a busy answer; ``True`` if the API now looks down (busy answers and no success
        for a while). Counted without a lock: a miscount moves that moment by one answer."""
        self._busy_in_a_row += 1
        if not self._last_success:
            return True
        quiet = max(OUTAGE_SECONDS, 2 * (self.limit.smoothed or 0.0))
        return (
            self._busy_in_a_row >= OUTAGE_ANSWERS
            and time.monotonic() - self._last_success > quiet
        )

    def _give_up(self, event: Event, error: ApiException | None) -> None:
        """Out of time: a spooled event waits on disk for a later try; another fails."""
        if self.store.durable and self.store.leftover_outcome(event) is Outcome.LEFT:
            self.finish(event, Outcome.LEFT)
            return
        if error is not None:
            self.finish(event, Outcome.FAILED, error, reason="expired")
            return
        outage = self.last_outage
        seen = f" (the last failure seen: {outage})" if outage is not None else ""
        never_tried = RecorderError(  # the gate stayed shut: no attempt of its own
            f"not delivered within delivery_timeout: the API was unavailable the whole time{seen}"
        )
        never_tried.__cause__ = outage  # another event's: for its type and details
        self.finish(event, Outcome.FAILED, never_tried, reason="expired")

    def leave(self, event: Event, quiet: bool = True) -> None:
        """The recorder stops while the event waits: it stays on disk, or is lost."""
        if self.store.leftover_outcome(event) is Outcome.LEFT:
            self.finish(event, Outcome.LEFT)
        else:
            closed = RecorderClosedError("the recorder stopped before delivering it")
            self.finish(event, Outcome.DROPPED, closed, reason="closed", quiet=quiet)

    def finish(
        self,
        event: Event,
        outcome: Outcome,
        value: Any = None,
        reason: str = "",
        quiet: bool = False,
    ) -> None:
        """The one end of an event: its spool row, its future, ``on_error``, its count; called
        outside every lock. ``LEFT`` tells the future only once the recorder stops."""
        store = self.store
        store.forget(event, outcome)
        if outcome is Outcome.SENT:
            _resolve(event, result=value)
        elif outcome is Outcome.LEFT:
            if store.stopping:
                _resolve(event, error=spooled_error())
        else:
            _resolve(event, error=value)
            self._report(event, value)
        if outcome is Outcome.DROPPED:
            self._count_drop(value, quiet)
        store.end(event, outcome, reason)
        if store.stopping:  # the last event in flight at stop lets the spool file go
            store.give_back()

    def _report(self, event: Event, error: OpenApiException) -> None:
        if self.on_error is None:
            return
        try:
            self.on_error(event, error)
        except Exception:
            logger.exception("EventRecorder: on_error raised; delivery goes on")

    def _count_drop(self, error: OpenApiException, quiet: bool) -> None:
        """Drops are told in one line a minute with their number (``quiet``: in ``stop``'s)."""
        now = time.monotonic()
        with self._threads_lock:
            self.unreported_drops += 1
            if quiet or now - self._last_drop_line < WARNING_SECONDS:
                return
            count, self.unreported_drops, self._last_drop_line = self.unreported_drops, 0, now
        logger.warning("EventRecorder dropped %d event(s): %s", count, error)

    def _stopping(self) -> bool:
        return self.store.stopping

    # -- flush, close, exit -------------------------------------------------------------------

    def flush(self, timeout: float, sync: bool) -> bool:
        """Wait until nothing is pending here or in the spool (others' events included)."""
        refuse_in_sender("flush")
        store = self.store
        deadline = time.monotonic() + timeout
        while True:
            if sync:  # the calling thread does the senders' work
                store.chores(force=True)
                self.send_here(deadline)
            elif (store.durable or store.held) and not self.wake():
                self.send_here(deadline)  # no thread could start: this one sends
            if store.settled(adopt=True):
                return True
            if time.monotonic() >= deadline:
                return False
            store.wait(min(0.05, max(0.0, deadline - time.monotonic())))

    def close(self, reason: str, timeout: float, at_exit: bool = False) -> None:
        """Deliver what this recorder holds (not what others left in the spool) for up to
        ``timeout`` seconds, then stop. At exit no thread starts: this one sends instead."""
        store = self.store
        store.close_intake()
        if store.stopping:
            return
        deadline = time.monotonic() + timeout
        while not store.settled(adopt=False) and time.monotonic() < deadline:
            if store.senders == 0 and (at_exit or not self.wake()):
                self.send_here(deadline)
                store.chores(force=True)
                break
            store.wait(min(0.05, max(0.0, deadline - time.monotonic())))
        join = 0.1 if at_exit else max(0.1, deadline - time.monotonic())
        self.stop(reason, join_seconds=join)

    def at_exit(self, reason: str) -> None:
        self.close(reason, self.exit_timeout, at_exit=True)

    # -- stopping -----------------------------------------------------------------------------

    def stop(self, reason: str, join_seconds: float) -> None:
        """Stop the senders; what is left stays in the spool or is lost, said in one line."""
        store = self.store
        left = store.stop()
        self.gate.wake()  # senders waiting out a backoff let their events go
        self.limit.wake()
        deadline = time.monotonic() + join_seconds
        with self._threads_lock:
            threads = list(self.threads)
        for thread in threads:  # a sender mid-send may outlive this; it is a daemon
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        store.write_leftovers(left, patience=max(0.0, min(1.0, deadline - time.monotonic())))
        for event in left:
            self.leave(event)
        for event in store.spooled_futures():
            _resolve(event, error=spooled_error())
        store.give_back()
        sending = store.unsaved_in_flight()
        with self._threads_lock:
            lost, self.unreported_drops = self.unreported_drops + sending, 0
        if lost:  # one line, one number: what an operator must know
            logger.warning(
                "EventRecorder %s: %d event(s) lost, neither delivered nor spooled%s",
                reason, lost, " (some were still being sent)" if sending else "",
            )  # fmt: skip
        if store.durable and store.tally.pending:
            logger.info("EventRecorder %s: %d event(s) stay in the spool", reason, store.tally.pending)


def refuse_in_sender(what: str) -> None:
    if in_sender_thread():
        raise RecorderError(
            f"{what}() cannot wait from the recorder's own thread (on_error, or a future's "
            "done-callback): call it from another thread"
        )


def spooled_error() -> RecorderSpooledError:
    return RecorderSpooledError(
        "the recorder stopped before delivering it; it waits in the spool, for the next recorder"
    )


def _reason(error: ApiException) -> str:
    if isinstance(error, ApiStatusError):
        return "credential" if error.status in CREDENTIAL_STATUSES else "rejected"
    return "ambiguous"


def _resolve(event: Event, result: Any = None, error: BaseException | None = None) -> None:
    """Resolve a future (once: a second resolution is a no-op)."""
    try:
        if error is not None:
            event.set_exception(error)
        else:
            event.set_result(result)
    except InvalidStateError:
        pass


def _import_what_senders_need() -> None:
    """A fork while a sender thread is inside an ``import`` would leave the child's import lock
    held forever; everything a sender may import on first use is imported here, up front."""
    import email.utils  # noqa: F401 - Retry-After dates
    import encodings.idna  # noqa: F401 - urllib3's first connection
    import ipaddress  # noqa: F401
    import urllib.parse  # noqa: F401
