"""The store with a file under it: events written to the spool so that they outlive the process.

The caller's thread never waits on the file: ``add`` writes the event at once if SQLite can take
it without waiting, and otherwise keeps it in memory for a sender to write (``chores``). Rows
are deleted only once the API accepted the event or rejected it on its merits; a delete that
fails is owed, and the row stays this process's (so no one resends it) until it succeeds.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from typing import Any

from openapi_client.exceptions import OpenApiException, RecorderClosedError
from openapi_client.recorder._event import KINDS, RecordedEvent, monotonic_from_wall
from openapi_client.recorder._notices import Notices
from openapi_client.recorder._spool import Spool, SpoolBusy, SpooledEvent, SpoolTooNew
from openapi_client.recorder._spool_file import is_busy
from openapi_client.recorder._store import (
    CLOSED,
    FULL,
    LATE,
    QUEUED,
    WAKE,
    Event,
    MemoryStore,
    Outcome,
)

FILE_ERRORS = (sqlite3.Error, OSError, OpenApiException)
"""What the file can raise: SQLite's errors, the system's (a folder removed), and a path that
became untrustworthy (a symlink planted): the store keeps each of them to itself."""
CLAIM_SIZE = 256
CHORE_PATIENCE = 0.5
"""How long a sender's claim waits for another process's lock before trying again later (and
saying, in ``stats().spool_error``, that the file is busy)."""
POLL_SECONDS = 1.0
"""How often an idle sender looks in the file for events that others left."""
OPEN_RETRY_SECONDS = 1.0
OPEN_WAIT_SECONDS = 0.005
LOCKED_RETRY_SECONDS = 0.0
"""A spool that could not be opened is tried again after this (locked by another process) or
``OPEN_RETRY_SECONDS`` (no such folder, no permission), by ``record_*`` without waiting."""
PARK_SECONDS = 60.0
CHECKPOINT_SECONDS = 1.0
"""How often a sender copies the WAL into the file: ``record_*``'s writes never do (they must
not wait), so without it the WAL would grow until the file is next opened."""
UNWRITTEN_LIMIT = 10_000
"""Events kept in memory beyond ``max_queue`` while the file cannot take them (another process
holds its lock): then, and only then, a new event is dropped."""
GIVE_BACK_SECONDS = 0.5
"""At stop, how long giving the rows back may wait for the file; then they stay this
process's until it ends, and others take them then."""


class SpoolStore(MemoryStore):
    """``MemoryStore`` plus the spool file at ``path`` (already checked by the recorder)."""

    durable = True

    def __init__(self, max_queue: int, path: str, notices: Notices, claim_size: int = CLAIM_SIZE) -> None:
        super().__init__(max_queue)
        self.claim_size = claim_size  # 1 for a sync recorder: it sends one at a time
        self.park_seconds = PARK_SECONDS  # an event past its delivery_timeout waits this long
        self.path = path
        self._notices = notices
        self._spool: Spool | None = None
        self._open_at = 0.0
        self._unusable = False  # written by a newer version: memory only, said once
        self._chores_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._given_back = False
        self._unwritten: list[Event] = []  # accepted, not yet on disk
        self._on_disk: set[int] = set()  # our rows that wait on disk (not in memory)
        self._left: set[int] = set()  # our rows given back to the file (still pending here)
        self._claimed_early: set[int] = set()  # our rows claimed before record_* registered them
        self._acked: list[int] = []  # rows of settled events, deleted in one go by a sender
        self._futures: weakref.WeakValueDictionary[int, Event] = weakref.WeakValueDictionary()
        self._backlog = True  # the file may hold events to claim
        self._last_poll = 0.0
        self._last_checkpoint = time.monotonic()
        self._last_count = 0
        self.file_error: str | None = None  # why the file cannot be used now (None: it can)

    def fresh(self, notices: Notices) -> SpoolStore:
        store = SpoolStore(self.max_queue, self.path, notices, self.claim_size)
        store.park_seconds = self.park_seconds
        return store

    # -- the file -----------------------------------------------------------------------------

    def open(self, patience: float = 0.0, now: bool = False) -> Spool | None:
        """The spool, opened now if it can be (never waiting more than ``patience``); after a
        failure, not tried again for a moment unless asked (``now``)."""
        spool = self._spool
        if spool is not None or self._unusable or (not now and time.monotonic() < self._open_at):
            return spool
        # One opening at a time: a caller lets a sender's (instant) attempt finish first.
        if not self._open_lock.acquire(timeout=max(patience, OPEN_WAIT_SECONDS)):
            return self._spool
        try:
            return self._spool or self._open(patience)
        finally:
            self._open_lock.release()

    def _open(self, patience: float) -> Spool | None:
        try:
            spool = Spool(self.path, patience=patience)
        except SpoolTooNew as error:
            self._unusable = True
            self._notices.once(
                "too-new", "spool %r was written by a newer version of the SDK: it is left "
                "as it is for that version, and this recorder keeps its events in memory (%s)",
                self.path, error,
            )  # fmt: skip
            return None
        except FILE_ERRORS as error:
            self.file_error = str(error)
            locked = isinstance(error, sqlite3.Error) and is_busy(error)
            self._open_at = time.monotonic() + (LOCKED_RETRY_SECONDS if locked else OPEN_RETRY_SECONDS)
            if not locked:  # a lock is another process's moment: the next try usually works
                self._notices.warn(
                    "spool", "spool %r unusable for now, events kept in memory: %s", self.path, error
                )
            return None
        self.file_error = None
        self._spool = spool
        return spool

    # -- the caller's side --------------------------------------------------------------------

    def add(self, event: Event, send_later: bool = True) -> int:
        with self.lock:
            if self.closed:
                raise RecorderClosedError(CLOSED)
            self.tally.enqueued += 1
            self.held += 1
            room = not send_later or self.ready.qsize() < self.max_queue
        row = self._write_now(event, queued=room, wait=not send_later)
        with self.lock:
            event._spool_id = row
            if not send_later:
                self.sending.add(event)  # sent by the caller: in flight from now
                return QUEUED
            if self.stopping:
                return LATE
            if room:
                event._queued = True
                self.ready.put(event)
            elif row in self._claimed_early:  # a sender claimed it before this line: send it
                self._claimed_early.discard(row)
                event._queued = True
                self.ready.put(event)
            elif row is not None:  # on disk only: claimed when there is room
                self._on_disk.add(row)
                self._futures[row] = event
                self.held -= 1
            elif self._unusable or len(self._unwritten) >= max(self.max_queue, UNWRITTEN_LIMIT):
                return FULL
            if row is None and not self._unusable:  # a newer version's file: memory only
                self._unwritten.append(event)
            return QUEUED if self.senders else WAKE

    def _write_now(self, event: Event, queued: bool, wait: bool) -> int | None:
        spool = self._spool or self.open(patience=0.0)
        if spool is None:
            return None
        try:
            body = event._kind.endpoint.serialize(event.request)
            return spool.add(event.kind, body, event.recorded_at, queued, wait=wait)
        except SpoolBusy:
            return None  # a sender writes it in a moment
        except FILE_ERRORS as error:
            self._notices.warn(
                "spool", "spool %r unusable for now, events kept in memory: %s", self.path, error
            )
            return None

    def has_work(self) -> bool:
        return bool(self._unwritten or self._acked)

    # -- the senders' side --------------------------------------------------------------------

    def has_chores(self) -> bool:
        if self.stopping:
            return False
        now = time.monotonic()
        return bool(
            self._unwritten
            or self._acked
            or (self._spool is None and not self._unusable)
            or now - self._last_poll >= POLL_SECONDS
            or ((self._backlog or self._on_disk) and self.ready.qsize() < max(1, self.max_queue // 2))
        )

    def chores(self, force: bool = False, claim: bool = True) -> None:
        """One sender at a time: write what waits in memory, claim events from the file when
        there is room (``claim``), show this process is alive, bound the WAL."""
        if not (force or self.has_chores()) or not self._chores_lock.acquire(blocking=False):
            return
        try:
            spool = self.open()
            if spool is None:
                return
            self._write_waiting(spool)
            self._delete_acked(spool, patience=CHORE_PATIENCE)
            if claim:
                self._claim(spool)
            spool.heartbeat()
            self.file_error = None
            now = time.monotonic()
            if now - self._last_checkpoint >= CHECKPOINT_SECONDS:
                self._last_checkpoint = now
                spool.checkpoint()
        except FILE_ERRORS as error:
            self.file_error = str(error)
            self._notices.warn("spool", "spool %r busy or broken, will try again: %s", self.path, error)
        finally:
            self._chores_lock.release()

    def keep_alive(self) -> None:
        """During a long send: the heartbeat, and the writes nobody else would make meanwhile."""
        self.chores(claim=False)

    def leftover_outcome(self, event: Event) -> Outcome:
        """An event that stops waiting in memory stays in the spool; one not yet written is
        written now if the file takes it at once, else it is lost."""
        if event._spool_id is None and not self.stopping:
            self.write_leftovers([event], patience=0.0)
        return Outcome.LEFT if event._spool_id is not None else Outcome.DROPPED

    def _write_waiting(self, spool: Spool) -> None:
        with self.lock:
            batch = [e for e in self._unwritten if e._spool_id is None and not e._gone]
            self._unwritten = []
        if not batch:
            return
        rows = [
            (e.kind, e._kind.endpoint.serialize(e.request), e.recorded_at, e._queued)
            for e in batch
        ]
        try:
            ids = spool.add_many(rows, patience=CHORE_PATIENCE)
        except BaseException:
            with self.lock:
                self._unwritten[:0] = batch
            raise
        gone = []
        with self.changed:
            for event, row in zip(batch, ids, strict=True):
                event._spool_id = row
                if event._gone:
                    gone.append(row)  # settled meanwhile: the row goes at once
                elif not event._queued:  # was held in memory for want of room: now on disk
                    self._on_disk.add(row)
                    self._futures[row] = event
                    self.held -= 1
            self.changed.notify_all()
        if gone:
            with self.lock:
                self._acked.extend(gone)

    def _delete_acked(self, spool: Spool, patience: float | None = None) -> None:
        """Delete the rows of the events settled since the last time, in one transaction (a
        delete per event would keep the file busy for ``record_*``). If it fails, the spool
        owes them: they stay this process's, and the next delete tries them again."""
        with self.lock:
            batch, self._acked = self._acked, []
        if not batch:
            return
        try:
            spool.delete(batch, patience=patience)
        except FILE_ERRORS as error:
            self.file_error = str(error)
            self._notices.warn(
                "spool", "could not delete delivered events yet (%s); they stay this process's "
                "and are deleted later, never resent by another while it lives", error,
            )  # fmt: skip

    def _claim(self, spool: Spool) -> None:
        self._last_poll = time.monotonic()
        with self.lock:
            room = min(self.max_queue - self.ready.qsize(), self.claim_size)
        if room <= 0:
            return
        rows = spool.claim(room, patience=CHORE_PATIENCE)
        self._backlog = len(rows) == room
        readable = [(row, request) for row in rows if (request := self._read(row)) is not None]
        for row_id, reason in spool.take_set_aside():
            self._notices.once(
                "unreadable", "spool %r holds events this version cannot read (row %d: %s); "
                "they are left for the version that can", self.path, row_id, reason,
            )  # fmt: skip
        with self.lock:
            for row, request in readable:
                self._take_claimed(row, request)

    def _take_claimed(self, row: SpooledEvent, request: Any) -> None:
        """A claimed row into memory: ours (its future, if the caller still holds it) or
        adopted (another recorder's, counted as taken here). Under ``lock``."""
        event = self._futures.pop(row.id, None)
        ours = event is not None or row.id in self._on_disk or row.id in self._left
        if row.mine and not ours:  # a record_* still registering it: it queues its own event
            self._claimed_early.add(row.id)
            return
        if self.stopping:  # ``give_back`` frees the row; our future waits for it
            if event is not None:
                self._futures[row.id] = event
            return
        if event is None:
            event = RecordedEvent(KINDS[row.kind], request, monotonic_from_wall(row.recorded_at))
            event._spool_id = row.id
        self._on_disk.discard(row.id)
        self._left.discard(row.id)
        if not ours:
            self.tally.enqueued += 1
            self.tally.adopted += 1
        self.held += 1
        event._queued = True
        event._deadline = 0.0  # set by the sender that takes it
        self.ready.put(event)

    def _read(self, row: SpooledEvent) -> Any:
        """The request a claimed row holds; ``None`` (the row set aside) if this version
        cannot read it."""
        kind = KINDS.get(row.kind)
        try:
            if kind is None:
                raise ValueError(f"unknown event kind {row.kind!r}")
            return kind.endpoint.request_type.model_validate_json(row.body)
        except ValueError as error:
            spool = self._spool
            if spool is not None:
                spool.set_aside(row.id, str(error)[:500])
            return None

    # -- an event's end -----------------------------------------------------------------------

    def forget(self, event: Event, outcome: Outcome) -> None:
        with self.lock:  # the writer checks ``_gone`` under this lock after each write
            event._gone = outcome is not Outcome.LEFT
            row, spool = event._spool_id, self._spool
        if row is None or spool is None:
            return
        if outcome is Outcome.LEFT:
            with self.lock:
                self._left.add(row)
                self._futures[row] = event
                if self.stopping:  # ``give_back`` frees every row at once
                    return
            try:  # past its delivery_timeout: tried again a little later, by anyone
                spool.park(row, time.time() + self.park_seconds)
            except FILE_ERRORS as error:  # still ours on disk: freed when this process is gone
                self._notices.warn("spool", "could not give an event back to the spool: %s", error)
            return
        with self.lock:
            self._acked.append(row)
            now = self.senders == 0  # no sender to do it (sync, or the exit handler's thread)
        if now:
            self._delete_acked(spool)

    # -- flush and stop -----------------------------------------------------------------------

    def settled(self, adopt: bool) -> bool:
        with self.lock:
            if self.held or self._unwritten:
                return False
        if not adopt:
            return True
        spool = self._spool
        if spool is None:
            return self._unusable
        try:
            return spool.deliverable(patience=0.05) == 0
        except FILE_ERRORS:
            return False

    def wait(self, seconds: float) -> None:
        with self.changed:
            self.changed.wait(seconds)

    def stop(self) -> list[Event]:
        left = super().stop()
        with self.lock:
            left.extend(e for e in self._unwritten if not e._queued)
            self._unwritten = []
        return left

    def write_leftovers(self, events: list[Event], patience: float) -> None:
        """Put on disk the events of ``events`` not written yet, if the file takes them within
        ``patience`` (at stop, or when a sender gives up on one)."""
        if not self._chores_lock.acquire(timeout=patience):  # the writer may hold them now
            return
        try:
            with self.lock:
                waiting = [e for e in events if e._spool_id is None]
            spool = self._spool or self.open(patience=patience)
            if not waiting or spool is None:
                return
            rows = [  # marked in memory: no claim here takes them before they are let go
                (e.kind, e._kind.endpoint.serialize(e.request), e.recorded_at, True)
                for e in waiting
            ]
            try:
                ids = spool.add_many(rows, patience=patience)
            except FILE_ERRORS as error:
                self._notices.warn("spool", "could not write events to spool %r: %s", self.path, error)
                return
            with self.lock:
                for event, row in zip(waiting, ids, strict=True):
                    event._spool_id = row
                written = set(waiting)
                self._unwritten = [e for e in self._unwritten if e not in written]
        finally:
            self._chores_lock.release()

    def unsaved_in_flight(self) -> int:
        with self.lock:
            return sum(e._spool_id is None for e in self.sending)

    def spooled_futures(self) -> list[Event]:
        """The futures of our events that wait on disk (the caller may still hold them)."""
        with self.lock:
            waiting = [e for row in self._on_disk | self._left if (e := self._futures.get(row))]
            self._futures = weakref.WeakValueDictionary()
        return waiting

    def give_back(self) -> None:
        """Free every row this recorder holds but those being sent or owed a delete; the
        file is closed once none is left."""
        spool = self._spool
        if spool is None or self._given_back:
            return
        self._delete_acked(spool, patience=GIVE_BACK_SECONDS)
        with self.lock:
            keep = {e._spool_id for e in self.sending if e._spool_id is not None}
            self._given_back = not keep  # once nothing is in flight, the file is let go
        try:
            spool.release(keep=keep, patience=GIVE_BACK_SECONDS)
            if not keep:
                spool.close(final=True, patience=GIVE_BACK_SECONDS)
        except FILE_ERRORS as error:
            self._notices.warn(
                "release", "spool %r busy at close: its events stay on disk, and other "
                "recorders take them once this process is gone (%s)", self.path, error,
            )  # fmt: skip

    def on_disk(self) -> int:
        spool = self._spool or self.open(patience=0.0, now=True)
        if spool is None:
            return -1  # could not be opened, or written by a newer version
        try:
            count = self._last_count = spool.count(patience=0.05)
            if self.stopping and not self.sending:
                spool.close(final=True, patience=0.05)  # a closed recorder keeps no file open
        except SpoolBusy:  # this process's sender is waiting on the file: the last count
            return self._last_count
        except FILE_ERRORS:  # locked by another process, unreadable, damaged
            return -1
        return count
