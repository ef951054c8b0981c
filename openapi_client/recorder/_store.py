"""Where a recorder's events wait to be sent, and the one tally of what became of them.

A store owns the events a recorder accepted until each ends: it hands them to the senders
(``take``), takes them back when they end (``end``), and counts both in one ``Tally``, so the
counts add up by construction. ``MemoryStore`` keeps them in memory; ``SpoolStore``
(``_spool_store``) puts a file under them.
"""

from __future__ import annotations

import enum
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from openapi_client.exceptions import RecorderClosedError
from openapi_client.recorder._event import RecordedEvent
from openapi_client.recorder._notices import Notices

Event = RecordedEvent[Any, Any]
CLOSED = "the recorder is closed: it takes no more events"
QUEUED, WAKE, FULL, LATE = 0, 1, 2, 3
"""What ``add`` did: taken; taken, and no sender runs (the caller starts one); no room (the
caller drops it); taken as the recorder stopped (the caller leaves it in the spool, or drops
it)."""
STOP: Any = object()
"""Put in the queue at stop, one per sender: a sender waiting for an event wakes and ends."""


class Outcome(enum.Enum):
    """How an event ends in this recorder (``LEFT``: it waits in the spool for whoever comes
    next, and stays pending here)."""

    SENT = "sent"
    FAILED = "failed"
    DROPPED = "dropped"
    LEFT = "left"


@dataclass
class Tally:
    """What became of the events: each count changes in one place (``Store.accept`` and
    ``Store.end``), under the store's lock. ``pending`` is what is left, not a count of its own."""

    enqueued: int = 0
    adopted: int = 0
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    retried: int = 0
    dropped_by_reason: dict[str, int] = field(default_factory=dict)
    failed_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return self.enqueued - self.sent - self.failed - self.dropped

    def ended(self, outcome: Outcome, reason: str) -> None:
        if outcome is Outcome.SENT:
            self.sent += 1
        elif outcome is Outcome.FAILED:
            self.failed += 1
            self.failed_by_reason[reason] = self.failed_by_reason.get(reason, 0) + 1
        elif outcome is Outcome.DROPPED:
            self.dropped += 1
            self.dropped_by_reason[reason] = self.dropped_by_reason.get(reason, 0) + 1


class MemoryStore:
    """Events in memory, at most ``max_queue`` of them; the base of the spool store.

    ``held`` counts the events in memory or being sent (what ``flush`` waits for, and what is
    lost if the process ends now); ``senders`` the threads taking from it, so that a recorder
    whose senders all retired starts one again when an event comes; ``waiting`` those of them
    ready for the next event.
    """

    durable = False
    file_error: str | None = None

    def __init__(self, max_queue: int) -> None:
        self.max_queue = max_queue
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.tally = Tally()
        self.ready: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.held = 0
        self.sending: set[Event] = set()
        self.senders = 0
        self.waiting = 0  # senders waiting for an event
        self.pausing = 0  # senders whose event waits out a busy answer
        self.closed = False
        self.stopping = False

    # -- the caller's side --------------------------------------------------------------------

    def add(self, event: Event, send_later: bool = True) -> int:
        """Take ``event`` and count it (``send_later=False``: the caller sends it itself).
        Returns ``QUEUED``, ``WAKE`` (queued, and no sender runs) or ``FULL``."""
        with self.lock:
            if self.closed:
                raise RecorderClosedError(CLOSED)
            self.tally.enqueued += 1
            self.held += 1
            if not send_later:
                self.sending.add(event)  # sent by the caller: in flight from now
                return QUEUED
            if self.ready.qsize() >= self.max_queue:
                return FULL
            self.ready.put(event)
            return QUEUED if self.senders else WAKE

    # -- the senders' side --------------------------------------------------------------------

    def take(self, timeout: float) -> Event | None:
        """The next event to send, waiting up to ``timeout``; ``None`` if none came (or the
        recorder is stopping)."""
        with self.lock:
            self.waiting += 1
        try:
            event = self.ready.get(timeout=timeout) if timeout > 0 else self.ready.get_nowait()
        except queue.Empty:
            return None
        finally:
            with self.lock:
                self.waiting -= 1
        if event is STOP:
            return None
        with self.lock:
            self.sending.add(event)
        return event

    def retire(self, idle: bool, keep_one: bool) -> bool:
        """Whether a sender that found nothing to do may end (``idle``: long enough; ``keep_one``:
        unless it is the last); decided under the lock ``add`` counts under, so that no event
        waits without a sender."""
        with self.lock:
            last = self.senders == 1
            if self.stopping or (
                idle and self.ready.empty() and not (keep_one and last) and not self.has_work()
            ):
                self.senders -= 1
                return True
            return False

    def has_work(self) -> bool:
        """Something besides sending must happen before the last sender may go."""
        return False

    def chores(self, force: bool = False, claim: bool = True) -> None:
        """Work besides sending (the spool's: writing, claiming, heartbeats); none here."""

    def keep_alive(self) -> None:
        """A sign of life during a long send (the spool's heartbeat); nothing here."""

    def end(self, event: Event, outcome: Outcome, reason: str = "") -> None:
        """The store's part of an event's end (after ``forget``): count it, wake ``flush``."""
        with self.changed:
            self.sending.discard(event)
            if not event._ended:
                self.held -= 1
                if outcome is not Outcome.LEFT:  # a spooled event stays pending: not ended
                    event._ended = True
                    self.tally.ended(outcome, reason)
            self.changed.notify_all()

    def forget(self, event: Event, outcome: Outcome) -> None:
        """Drop what the store keeps of a settled event besides memory (a spool row)."""

    def count_retry(self) -> None:
        with self.lock:
            self.tally.retried += 1

    # -- flush and stop -----------------------------------------------------------------------

    def settled(self, adopt: bool) -> bool:
        """Nothing left to wait for: ``adopt`` includes what others left in the spool."""
        return self.held == 0

    def wait(self, seconds: float) -> None:
        with self.changed:
            if self.held:
                self.changed.wait(seconds)

    def close_intake(self) -> bool:
        """Refuse events from now on; ``False`` if it already did."""
        with self.lock:
            if self.closed:
                return False
            self.closed = True
            return True

    def stop(self) -> list[Event]:
        """Stop the senders; the events still waiting in memory, for the caller to settle."""
        left = []
        with self.changed:
            self.stopping = True
            while True:
                try:
                    event = self.ready.get_nowait()
                except queue.Empty:
                    break
                if event is not STOP:
                    left.append(event)
            for _ in range(self.senders):
                self.ready.put(STOP)
            self.changed.notify_all()
        return left

    def write_leftovers(self, events: list[Event], patience: float) -> None:
        """Put on disk what is left in memory at stop, if there is a disk (none here)."""

    def spooled_futures(self) -> list[Event]:
        """The futures of this recorder's events that wait on disk (none here)."""
        return []

    def leftover_outcome(self, event: Event) -> Outcome:
        """What an event still in memory at stop becomes: lost without a file under it."""
        return Outcome.DROPPED

    def unsaved_in_flight(self) -> int:
        """Events being sent right now that are nowhere but in memory (lost if the process
        ends before their answer)."""
        return len(self.sending)

    def give_back(self) -> None:
        """Let go of the file, if any (the spool's ``release``)."""

    def on_disk(self) -> int:
        """Rows in the spool file (0 without one; -1 when it cannot be read)."""
        return 0

    def oldest_age(self) -> float | None:
        """Seconds since the oldest event being sent was recorded (the queue is first in,
        first out: the events waiting behind it are younger)."""
        with self.lock:
            oldest = min((e._recorded_at for e in self.sending), default=None)
        return None if oldest is None else time.monotonic() - oldest

    def fresh(self, notices: Notices) -> MemoryStore:
        """An empty store of the same kind for a forked child (which starts its counts anew)."""
        return MemoryStore(self.max_queue)
