"""The spool: events in a SQLite file (WAL), kept until the API acknowledged them, so they
survive outages, exits, crashes and restarts. (The file itself: ``_spool_file.py``.)

Several processes may share one file. Every event has at most one *owner*, the live recorder
that delivers it; a claim is one ``BEGIN IMMEDIATE`` transaction, so two recorders never take
the same event. Whether an owner lives is judged without comparing wall clocks (which may
disagree, or jump): each owner moves a counter when it beats, and an observer watches it on its
own monotonic clock. On this host an owner is dead at once when its process is gone (or its pid
now belongs to a process that started later). A dead owner's events are free for anyone.
Delivery is at least once: a crash between the API's response and the delete resends one event.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from openapi_client._fork import after_fork_in_child
from openapi_client.recorder._spool_file import (
    BUSY_SECONDS,
    JOURNAL_SIZE_LIMIT,
    QUICK_BUSY_SECONDS,
    ROW_FORMAT,
    SCHEMA_VERSION,
    SETUP_SECONDS,
    TRY_SECONDS,
    Link,
    NotASpool,
    SpoolBusy,
    SpoolInherited,
    SpoolTooNew,
    check_spool_file,
    check_spool_path,
    is_busy,
    is_out_of_space,
    open_quick,
    open_spool,
)

T = TypeVar("T")
QUICK_LOCK_SECONDS = 0.002
"""How long ``add(wait=False)`` lets this process's own spool work finish first (never
another process's: once a worker met another process's lock, not at all)."""

__all__ = [
    "BUSY_SECONDS",
    "HEARTBEAT_SECONDS",
    "JOURNAL_SIZE_LIMIT",
    "KNOWN_KINDS",
    "LEASE_SECONDS",
    "LOCAL_LEASE_SECONDS",
    "MAX_PARK_SECONDS",
    "QUICK_BUSY_SECONDS",
    "ROW_FORMAT",
    "SCHEMA_VERSION",
    "SETUP_SECONDS",
    "TRY_SECONDS",
    "NotASpool",
    "Spool",
    "SpoolBusy",
    "SpoolInherited",
    "SpoolSummary",
    "SpoolTooNew",
    "SpooledEvent",
    "check_spool_file",
    "check_spool_path",
]

LEASE_SECONDS = 60.0
"""An owner on another host whose beat counter has not moved for this long (on the observer's
monotonic clock) is presumed dead."""
LOCAL_LEASE_SECONDS = 15 * 60.0
"""On this host an owner whose process runs is alive; only if its counter has not moved for
this long (say, a recorder dropped without ``close``) are its events taken."""
HEARTBEAT_SECONDS = LEASE_SECONDS / 4
MAX_PARK_SECONDS = 3600.0
"""A parked event whose time is further ahead than this was parked by a clock that was wrong
(or has since been set back): it is due now. Early is harmless; late forever is not."""
KNOWN_KINDS = frozenset({"offer_display", "session_init"})
"""The event kinds this version can deliver; rows of other kinds are set aside for the version
that wrote them."""

_SET_ASIDE_UNTIL = math.inf
"""``not_before`` of a set-aside row: the first release (which has no ``set_aside`` column)
never claims it either."""


@dataclass(frozen=True)
class SpooledEvent:
    """One row taken from the spool."""

    id: int
    kind: str
    body: bytes
    recorded_at: float
    mine: bool = False
    """This recorder's own row, waiting on disk (not another's, nor free)."""


@dataclass(frozen=True)
class SpoolSummary:
    """What a spool holds, for operators (``python -m openapi_client spool PATH``)."""

    by_kind: dict[str, int]
    oldest_recorded_at: float | None
    owned: int
    """Events a live recorder is delivering right now."""
    waiting: int
    """Events no live recorder holds (left by a process that exited or died, or parked)."""
    set_aside: int = 0
    """Events this version cannot read (a newer version wrote them): left for that version."""


@dataclass(frozen=True)
class _Owner:
    """A row of the ``owners`` table."""

    owner: str
    host: str
    pid: int
    heartbeat: float
    beats: int
    started: str | None


class Spool:
    """One recorder's handle on a spool file. Thread-safe; after a fork the child's handle is
    another owner, with connections of its own (see ``_spool_file``).

    Two connections: the main one (``_lock``) for the workers' claims, deletes and waiting
    writes; and a quick one (``_quick_lock``) for ``add(wait=False)``, which does not wait
    (``QUICK_BUSY_SECONDS``) and runs no checkpoint.
    """

    def __init__(
        self,
        path: str,
        register: bool = True,
        patience: float = BUSY_SECONDS,
        *,
        kinds: Collection[str] = KNOWN_KINDS,
    ) -> None:
        """Open (or make) the spool at ``path``, waiting up to ``patience`` seconds (at least
        ``SETUP_SECONDS``) for other processes making or upgrading it; a spool that is ready
        opens without taking a lock, so without waiting.
        ``register=False`` only looks (operators): read-only, and a file that is not a spool is
        refused rather than made one. Raises ``ApiValueError`` for a path that must not be a
        spool, ``SpoolTooNew`` for a newer version's file, ``sqlite3.Error`` if unusable now."""
        self.path = check_spool_path(path)
        check_spool_file(self.path, patience)
        self._register = register
        self._patience = patience
        self._kinds = frozenset(kinds)
        self._host = socket.gethostname()
        self._main: Link | None = None
        self._quick: Link | None = None
        self._version = SCHEMA_VERSION
        self._start_process()
        with self._lock:
            self._db  # noqa: B018 - open now, so that an unusable file shows at once
        after_fork_in_child(self, Spool._in_forked_child)

    def _start_process(self) -> None:
        """What belongs to this process: locks, the owner's name, what it has seen."""
        self._lock = threading.Lock()
        self._quick_lock = threading.Lock()
        self.owner = f"{self._host}:{os.getpid()}:{secrets.token_hex(4)}"
        self._started = process_started(os.getpid())
        self._last_beat = -math.inf  # time.monotonic() of this owner's last beat
        self._seen: dict[str, tuple[tuple[int, float], float]] = {}
        self._owed: set[int] = set()
        self._peer_holds_file = False  # a worker's last write met another process's lock
        self._set_aside_here: list[tuple[int, str]] = []

    def _in_forked_child(self) -> None:
        """Another process, another owner: what it inherited is the parent's (owned rows,
        owed deletes, locks in whatever state the parent's threads left them)."""
        self._main = self._quick = None  # closed or abandoned by _spool_file already
        self._start_process()

    @property
    def _db(self) -> Link:
        """The main connection, opened on first use (again after ``close`` or a fork); hold
        ``_lock``."""
        if self._main is None:
            self._main, self._version = open_spool(
                self.path, write=self._register, patience=self._patience
            )
        return self._main

    @property
    def _connection(self) -> sqlite3.Connection | None:
        """The main SQLite connection, if open (for diagnostics and tests)."""
        return self._main.connection if self._main is not None else None

    # -- writing events ---------------------------------------------------------------------

    def add(
        self, kind: str, body: bytes, recorded_at: float, queued: bool, *, wait: bool = True
    ) -> int:
        """Store one event, owned by this recorder (``queued``: it is also in memory, being
        delivered); committed when this returns; its id. ``wait=False`` does not wait, neither
        for another thread of this process nor for another process's (or this one's workers')
        write (see ``QUICK_BUSY_SECONDS``): ``SpoolBusy`` then, and nothing written."""
        row = (kind, body, recorded_at, queued)
        if wait:
            return self._writing(lambda link: self._insert(link, row))
        # This process's own writes (a sender's claim or delete) go first, for a moment at
        # most: two connections of one process would otherwise collide in SQLite, which
        # never waits here. Only another process's lock, or a long wait, leaves it busy.
        if self._peer_holds_file:  # this process's worker waits on another's lock: so would we
            acquired = self._lock.acquire(blocking=False)
        else:
            acquired = self._lock.acquire(timeout=QUICK_LOCK_SECONDS)
        if not acquired:
            raise SpoolBusy("spool busy: this process is writing to it; nothing written")
        if not self._quick_lock.acquire(blocking=False):
            self._lock.release()
            raise SpoolBusy("spool busy: another thread is writing to it; nothing written")
        try:
            if self._quick is None:
                self._quick = open_quick(self.path)
            row_id = self._insert(self._quick, row)
            self._peer_holds_file = False
            return row_id
        except sqlite3.OperationalError as error:
            if is_busy(error) and not isinstance(error, SpoolBusy):
                self._peer_holds_file = True
                raise SpoolBusy(f"spool busy ({error}); nothing written") from error
            raise
        finally:
            self._quick_lock.release()
            self._lock.release()

    def add_many(
        self, rows: Sequence[tuple[str, bytes, float, bool]], *, patience: float | None = None
    ) -> list[int]:
        """Store events ``(kind, body, recorded_at, queued)`` in one transaction, owned by this
        recorder; their ids, in order. Waits up to ``patience`` seconds (default: SQLite's busy
        timeout) for other writers, then raises ``SpoolBusy`` (nothing written)."""
        if not rows:
            return []

        def insert_all(link: Link) -> list[int]:
            with link.transaction():
                self._beat(link)
                return [self._insert_row(link, row) for row in rows]

        return self._writing(insert_all, patience)

    def _insert(self, link: Link, row: tuple[str, bytes, float, bool]) -> int:
        """One row, in one statement if this owner is registered (the usual case), else in a
        transaction with its registration: a row must never exist without its owner."""
        kind, body, recorded_at, queued = row
        cursor = link.run(
            "INSERT INTO events (kind, body, recorded_at, owner, queued, format) "
            "SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM owners WHERE owner = ?)",
            (kind, body, recorded_at, self.owner, int(queued), ROW_FORMAT, self.owner),
        )
        if cursor.rowcount == 1 and cursor.lastrowid is not None:
            return cursor.lastrowid
        with link.transaction():
            self._beat(link)
            return self._insert_row(link, row)

    def _insert_row(self, link: Link, row: tuple[str, bytes, float, bool]) -> int:
        kind, body, recorded_at, queued = row
        cursor = link.run(
            "INSERT INTO events (kind, body, recorded_at, owner, queued, format) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (kind, body, recorded_at, self.owner, int(queued), ROW_FORMAT),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    # -- delivering them --------------------------------------------------------------------

    def claim(self, limit: int, *, patience: float | None = None) -> list[SpooledEvent]:
        """Take up to ``limit`` events to deliver: this recorder's own that wait on disk, then
        those no live recorder holds (free, parked past their time, or a dead owner's). Only
        rows this version can read; others met on the way are set aside (``take_set_aside``).
        Walks the ``events_by_owner`` index: the cost does not grow with the backlog."""
        now, clock = time.time(), time.monotonic()

        def take(link: Link) -> list[SpooledEvent]:
            with link.transaction():
                self._beat(link)
                self._free_dead_owners(link, clock)
                self._unpark_misdated(link, now)
                return self._take(link, now, limit)

        return self._writing(take, patience)

    def _take(self, link: Link, now: float, limit: int) -> list[SpooledEvent]:
        taken: list[SpooledEvent] = []
        for mine, whose, params in ((True, "owner = ?", (self.owner,)), (False, "owner IS NULL", ())):
            while len(taken) < limit:
                want = limit - len(taken)
                rows = link.rows(
                    "SELECT id, kind, body, recorded_at, format FROM events "
                    f"WHERE {whose} AND queued = 0 AND not_before <= ? AND set_aside = 0 "
                    "ORDER BY not_before, id LIMIT ?",
                    (*params, now, want),
                )
                readable = []
                for row_id, kind, body, recorded_at, row_format in rows:
                    reason = self._unreadable(kind, row_format)
                    if reason is None:
                        readable.append(
                            SpooledEvent(row_id, kind, _as_bytes(body), recorded_at, mine)
                        )
                    else:
                        self._put_aside(link, row_id, reason)
                link.run_many(
                    "UPDATE events SET owner = ?, queued = 1 WHERE id = ?",
                    [(self.owner, event.id) for event in readable],
                )
                taken += readable
                if len(rows) < want:
                    break
        return taken

    def _unreadable(self, kind: str, row_format: int) -> str | None:
        """Why this version cannot deliver a row (``None``: it can)."""
        if row_format > ROW_FORMAT:
            return f"written in row format {row_format} by a newer version (this one reads {ROW_FORMAT})"
        if kind not in self._kinds:
            return f"event kind {kind!r} unknown to this version"
        return None

    def delete(self, ids: Sequence[int], *, patience: float | None = None) -> None:
        """Forget delivered (or finally failed) events; a busy recorder's sign of life too.

        A write that does not fit (full disk, file size limit) checkpoints the WAL and tries
        again. If the delete still fails it raises, and the rows are *owed*: they stay this
        recorder's (``release`` keeps them, so no one resends them) and every later ``delete``
        retries them."""
        wanted = set(ids) | self._owed

        def delete(link: Link) -> None:
            try:
                self._delete_rows(link, wanted)
            except sqlite3.OperationalError as error:
                if not is_out_of_space(error):
                    raise
                self._checkpoint(link, wait=True)
                self._delete_rows(link, wanted)

        try:
            self._writing(delete, patience)
        except BaseException:
            self._owed = wanted
            raise
        self._owed = set()

    def _delete_rows(self, link: Link, ids: Collection[int]) -> None:
        if not ids and time.monotonic() - self._last_beat < HEARTBEAT_SECONDS:
            return
        with link.transaction():
            link.run_many("DELETE FROM events WHERE id = ? AND set_aside = 0", [(i,) for i in ids])
            if time.monotonic() - self._last_beat >= HEARTBEAT_SECONDS:
                self._beat(link)

    def park(self, event_id: int, until: float) -> None:
        """Give an event back, for any recorder to try again from ``until`` (seconds since the
        epoch; at most ``MAX_PARK_SECONDS`` ahead), unless another recorder took it meanwhile:
        then it is that one's to settle."""
        until = min(until, time.time() + MAX_PARK_SECONDS)
        self._writing(
            lambda link: link.run(
                "UPDATE events SET owner = NULL, queued = 0, not_before = ? "
                "WHERE id = ? AND owner = ? AND set_aside = 0",
                (until if not math.isnan(until) else 0.0, event_id, self.owner),
            )
        )

    def set_aside(self, event_id: int, reason: str) -> None:
        """Leave a row this version cannot read (say, a body it cannot parse) for the version
        that wrote it: never claimed by this version again, never deleted, counted in
        ``summary().set_aside``."""
        with self._lock:
            link = self._db
            mine = link.one(
                "SELECT 1 FROM events WHERE id = ? AND (owner = ? OR owner IS NULL)",
                (event_id, self.owner),
            )
            if mine is not None:  # not taken over by another recorder meanwhile
                self._put_aside(link, event_id, reason)

    def _put_aside(self, link: Link, event_id: int, reason: str) -> None:
        link.run(
            "UPDATE events SET owner = NULL, queued = 0, not_before = ?, set_aside = ?, "
            "set_aside_reason = ? WHERE id = ?",
            (_SET_ASIDE_UNTIL, ROW_FORMAT, reason, event_id),
        )
        self._set_aside_here.append((event_id, reason))

    def take_set_aside(self) -> list[tuple[int, str]]:
        """``(id, reason)`` of the rows this handle set aside since the last call (to warn)."""
        with self._lock:
            taken, self._set_aside_here = self._set_aside_here, []
        return taken

    def release(self, keep: Iterable[int] = (), *, patience: float | None = None) -> None:
        """Give back every event this recorder holds but ``keep`` (those still being sent, or
        acknowledged but not yet deleted) and those it owes a delete; leave (the owner's row
        goes) once it holds none: other recorders may take them at once. ``patience``: wait
        at most that long for the file (``SpoolBusy`` then; nothing changed)."""
        kept = set(keep) | self._owed

        def release(link: Link) -> None:
            with link.transaction():
                rows = link.rows("SELECT id FROM events WHERE owner = ?", (self.owner,))
                mine = [row[0] for row in rows]
                link.run_many(
                    "UPDATE events SET owner = NULL, queued = 0 WHERE id = ? AND owner = ?",
                    [(i, self.owner) for i in mine if i not in kept],
                )
                if kept.isdisjoint(mine):
                    link.run("DELETE FROM owners WHERE owner = ?", (self.owner,))

        self._writing(release, patience)

    def heartbeat(self) -> None:
        """Show this recorder is alive (every ``HEARTBEAT_SECONDS`` at most)."""
        if self._register and time.monotonic() - self._last_beat >= HEARTBEAT_SECONDS:
            self._writing(self._beat)

    def checkpoint(self) -> bool:
        """Copy the WAL into the file and cut it to nothing, as far as readers let it, without
        waiting for them; never raises. True if the WAL is empty now. (Once readers let go,
        a checkpoint brings the WAL back under ``JOURNAL_SIZE_LIMIT`` at worst.)"""
        try:
            with self._lock:
                return self._checkpoint(self._db, wait=False)
        except (sqlite3.Error, OSError):
            return False

    def _checkpoint(self, link: Link, wait: bool) -> bool:
        with link.patience(BUSY_SECONDS if wait else 0.0):
            busy, _, _ = link.one("PRAGMA wal_checkpoint(TRUNCATE)")
        return bool(busy == 0)

    # -- looking ----------------------------------------------------------------------------

    def count(self, *, patience: float | None = None) -> int:
        """Events in the spool, whoever holds them, set-aside ones too."""
        with self._held(patience) as link:
            return int(link.one("SELECT count(*) FROM events")[0])

    def _writing(self, work: Callable[[Link], T], patience: float | None = None) -> T:
        """Run ``work`` (a write) on the main connection under ``_lock``. While another
        process holds the file, ``_lock`` is let go between short tries, so that this
        process's ``add(wait=False)`` never queues behind a wait on another process; after
        ``patience`` (SQLite's busy timeout by default) ``SpoolBusy``, nothing written."""
        deadline = time.monotonic() + (BUSY_SECONDS if patience is None else max(patience, 0.0))
        while True:
            if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise SpoolBusy("spool busy: this process is using it; nothing written")
            try:
                done = work(self._db)  # its busy timeout is one try (``TRY_SECONDS``)
                self._peer_holds_file = False
                return done
            except sqlite3.OperationalError as error:
                if not is_busy(error) or isinstance(error, SpoolBusy):
                    raise
                self._peer_holds_file = True  # ``add(wait=False)`` need not wait for us
                if time.monotonic() >= deadline:
                    raise SpoolBusy(f"spool busy ({error}); nothing written") from error
            finally:
                self._lock.release()
            time.sleep(TRY_SECONDS)

    @contextlib.contextmanager
    def _held(self, patience: float | None) -> Iterator[Link]:
        """The main connection, under ``_lock``; with ``patience``, waiting at most that long
        for this process's other threads and for other processes (``SpoolBusy`` then)."""
        if not self._lock.acquire(timeout=-1 if patience is None else max(patience, 0.0)):
            raise SpoolBusy("spool busy: this process is using it")
        try:
            link = self._db
            if patience is None:
                yield link
            else:
                with link.patience(patience):
                    yield link
        finally:
            self._lock.release()

    def deliverable(self, *, patience: float | None = None) -> int:
        """Events this version can read that this recorder holds or could take (now or later):
        what ``flush`` waits for. Reads only."""
        clock = time.monotonic()
        with self._held(patience) as link:
            owners = self._owners(link)
            dead = self._dead(owners, clock)
            registered = {o.owner for o in owners}
            holders = [h for h in self._holders(link) if h in dead or h not in registered]
            readable, params = self._readable()
            counts = [
                link.one(
                    f"SELECT count(*) FROM events WHERE {whose} AND {readable}", (*args, *params)
                )[0]
                for whose, args in [
                    ("owner IS NULL", ()),
                    ("owner = ?", (self.owner,)),
                    *[("owner = ?", (holder,)) for holder in holders],
                ]
            ]
        return sum(counts)

    def summary(self) -> SpoolSummary:
        """What the file holds; reads only (a dead recorder's events count as waiting)."""
        clock = time.monotonic()
        with self._lock:
            link = self._db
            owners = self._owners(link)
            live = {o.owner for o in owners} - self._dead(owners, clock)
            aside = "set_aside != 0" if self._version >= 1 else "0"
            groups = link.rows(
                f"SELECT owner, kind, {aside}, count(*), min(recorded_at) FROM events "
                "GROUP BY owner, kind, 3"
            )
        by_kind: dict[str, int] = {}
        owned = waiting = set_aside = 0
        for owner, kind, is_aside, count, _ in groups:
            by_kind[kind] = by_kind.get(kind, 0) + count
            if is_aside:
                set_aside += count
            elif owner in live:
                owned += count
            else:
                waiting += count
        oldest = min((g[4] for g in groups), default=None)
        return SpoolSummary(dict(sorted(by_kind.items())), oldest, owned, waiting, set_aside)

    def _readable(self) -> tuple[str, tuple[Any, ...]]:
        """A ``WHERE`` condition for rows this version can read, and its values."""
        kinds = sorted(self._kinds)
        condition = f"kind IN ({', '.join('?' * len(kinds))})"
        if self._version < 1:  # a first-release file, opened read-only: no such columns
            return condition, tuple(kinds)
        return f"set_aside = 0 AND format <= ? AND {condition}", (ROW_FORMAT, *kinds)

    def close(self, final: bool = False, *, patience: float | None = None) -> None:
        """Close the connections (a later use reopens them); ``final``: this recorder is gone,
        so a reopening (``stats()`` after ``close()``) only looks, read-only. ``patience``:
        wait at most that long for this process's other threads (``SpoolBusy`` then)."""
        timeout = -1 if patience is None else max(patience, 0.0)
        for lock, name in ((self._lock, "_main"), (self._quick_lock, "_quick")):
            if not lock.acquire(timeout=timeout):
                raise SpoolBusy("spool busy: this process is using it; not closed")
            try:
                if final:
                    self._register = False
                link: Link | None = getattr(self, name)
                if link is not None:
                    link.close()
                    setattr(self, name, None)
            finally:
                lock.release()

    # -- owners: who is alive ---------------------------------------------------------------

    def _beat(self, link: Link) -> None:
        """Register this owner, or move its counter (``heartbeat`` is wall time, for people and
        for the first release, which judges owners by it)."""
        link.run(
            "INSERT OR REPLACE INTO owners (owner, host, pid, heartbeat, beats, started) "
            "VALUES (?, ?, ?, ?, coalesce((SELECT beats FROM owners WHERE owner = ?), 0) + 1, ?)",
            (self.owner, self._host, os.getpid(), time.time(), self.owner, self._started),
        )
        self._last_beat = time.monotonic()

    def _owners(self, link: Link) -> list[_Owner]:
        columns = "beats, started" if self._version >= 1 else "0, NULL"
        rows = link.rows(f"SELECT owner, host, pid, heartbeat, {columns} FROM owners")
        return [_Owner(*row) for row in rows]

    def _dead(self, owners: list[_Owner], clock: float) -> set[str]:
        """The owners that are gone. ``clock``: this process's ``time.monotonic()``."""
        self._seen = {o.owner: self._sighting(o, clock) for o in owners}
        return {o.owner for o in owners if self._is_dead(o, clock)}

    def _sighting(self, owner: _Owner, clock: float) -> tuple[tuple[int, float], float]:
        """``(its beat, when this process first saw that beat)``: a beat is the counter and the
        owner's own wall time, compared for change only, never against this clock."""
        beat = (owner.beats, owner.heartbeat)
        seen = self._seen.get(owner.owner)
        return seen if seen is not None and seen[0] == beat else (beat, clock)

    def _is_dead(self, owner: _Owner, clock: float) -> bool:
        if owner.owner == self.owner:
            return False
        quiet = clock - self._seen[owner.owner][1]
        if owner.host != self._host:
            return quiet >= LEASE_SECONDS
        if not process_running(owner.pid):
            return True
        now_started = process_started(owner.pid)
        if owner.started is not None and now_started is not None and owner.started != now_started:
            return True  # the pid now belongs to another process
        return quiet >= LOCAL_LEASE_SECONDS

    def _free_dead_owners(self, link: Link, clock: float) -> None:
        """Free the events of dead owners, and of owners with no row (a crash mid-start, or a
        first-release recorder that left), and forget the dead."""
        owners = self._owners(link)
        dead = self._dead(owners, clock)
        registered = {o.owner for o in owners}
        for holder in self._holders(link):
            if holder in dead or holder not in registered:
                link.run("UPDATE events SET owner = NULL, queued = 0 WHERE owner = ?", (holder,))
        link.run_many("DELETE FROM owners WHERE owner = ?", [(owner,) for owner in dead])

    def _holders(self, link: Link) -> list[str]:
        """The owners that hold events, one index probe each (not a scan of the events)."""
        holders: list[str] = []
        row = link.one("SELECT min(owner) FROM events WHERE owner IS NOT NULL")
        while row is not None and row[0] is not None:
            holders.append(row[0])
            row = link.one("SELECT min(owner) FROM events WHERE owner > ?", (row[0],))
        return holders

    def _unpark_misdated(self, link: Link, now: float) -> None:
        """Parked events due further ahead than any park lasts were parked by a clock that was
        ahead (or this one was set back): due now."""
        link.run(
            "UPDATE events SET not_before = ? WHERE owner IS NULL AND queued = 0 "
            "AND not_before > ? AND not_before < ?",
            (now, now + MAX_PARK_SECONDS, _SET_ASIDE_UNTIL),
        )


def _as_bytes(body: object) -> bytes:
    """A row's body: a BLOB as written, or text someone stored by hand (UTF-8)."""
    return body if isinstance(body, bytes) else str(body).encode()


def process_running(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie does not count)."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there; trust the beats
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return True


def process_started(pid: int) -> str | None:
    """When process ``pid`` started (boot id and clock ticks since boot: ``/proc/PID/stat``
    field 22), to tell it from a later process given the same pid; ``None`` without ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            ticks = int(stat.read().rsplit(b")", 1)[-1].split()[19])
    except (OSError, IndexError, ValueError):
        return None
    return f"{_boot_id()}:{ticks}"


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as boot:
            return boot.read().strip()
    except OSError:
        return "?"
