"""The spool: events in a SQLite file (WAL), written before ``record_*`` returns and deleted once
the API acknowledged them, so they survive outages, exits, crashes and restarts.

Several processes may share one file. Every event has at most one *owner*, the live recorder
that delivers it; a claim is one ``BEGIN IMMEDIATE`` transaction, so two recorders never take
the same event. An owner whose process is gone (its pid no longer runs, on this host) or whose
heartbeat is older than ``LEASE_SECONDS`` is dead, and its events are free for anyone to take.
Delivery is at least once: a crash between the API's response and the delete resends one event.
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

LEASE_SECONDS = 60.0
"""A recorder on another host that has not shown signs of life for this long is presumed dead."""
LOCAL_LEASE_SECONDS = 15 * 60.0
"""On this host a recorder whose process runs is alive; this bound only guards against its pid
being reused by another process after it died."""
HEARTBEAT_SECONDS = LEASE_SECONDS / 4
BUSY_SECONDS = 5.0
"""How long a write waits for another process's transaction before giving up (it is retried)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    body BLOB NOT NULL,
    recorded_at REAL NOT NULL,
    owner TEXT,
    queued INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_by_owner ON events (owner, queued, not_before);
CREATE TABLE IF NOT EXISTS owners (
    owner TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat REAL NOT NULL
);
"""


@dataclass(frozen=True)
class SpooledEvent:
    """One row taken from the spool."""

    id: int
    kind: str
    body: bytes
    recorded_at: float


@dataclass(frozen=True)
class SpoolSummary:
    """What a spool holds, for operators (``python -m openapi_client spool PATH``)."""

    by_kind: dict[str, int]
    oldest_recorded_at: float | None
    owned: int
    """Events a live recorder is delivering right now."""
    waiting: int
    """Events no live recorder holds (left by a process that exited or died, or parked)."""


class Spool:
    """One recorder's handle on a spool file. Thread-safe, and safe across ``fork``: no SQLite
    connection is ever open while a process forks (SQLite's locks do not survive one)."""

    def __init__(self, path: str, register: bool = True, patience: float = BUSY_SECONDS) -> None:
        """Open (or create) the spool at ``path``, waiting up to ``patience`` seconds for other
        processes creating it; ``register=False`` only looks (operators), and refuses a file
        that is not a spool rather than making it one."""
        self.path = path
        self._register = register
        self._patience = patience
        self._host = socket.gethostname()
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._new_owner()
        with self._lock:
            self._db  # noqa: B018 - open now, so that an unusable file shows at once
        _SPOOLS.add(self)

    def _new_owner(self) -> None:
        self.owner = f"{self._host}:{os.getpid()}:{secrets.token_hex(4)}"
        self._last_heartbeat = 0.0

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection, opened on first use (and again after a fork); hold ``_lock``."""
        if self._connection is None:
            self._connection = _connect(self.path, self._patience, create=self._register)
            if self._register:
                self._beat(time.time())
        return self._connection

    # -- what a recorder does with it ---------------------------------------------------------

    def add(self, kind: str, body: bytes, recorded_at: float, queued: bool) -> int:
        """Store one event, owned by this recorder; committed when this returns."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO events (kind, body, recorded_at, owner, queued) VALUES (?, ?, ?, ?, ?)",
                (kind, body, recorded_at, self.owner, int(queued)),
            )
            row_id = cursor.lastrowid
        assert row_id is not None
        return row_id

    def claim(self, limit: int) -> list[SpooledEvent]:
        """Take up to ``limit`` events to deliver: this recorder's own that wait on disk, then
        those no live recorder holds (free, parked past their time, or a dead owner's)."""
        now = time.time()
        with self._lock, self._transaction():
            self._free_dead_owners(now)
            rows = self._db.execute(
                "SELECT id, kind, body, recorded_at FROM events "
                "WHERE ((owner = ? AND queued = 0) OR owner IS NULL) AND not_before <= ? "
                "ORDER BY owner IS NULL, id LIMIT ?",
                (self.owner, now, limit),
            ).fetchall()
            self._db.executemany(
                "UPDATE events SET owner = ?, queued = 1 WHERE id = ?",
                [(self.owner, row[0]) for row in rows],
            )
            self._beat(now)
        return [SpooledEvent(*row) for row in rows]

    def delete(self, ids: Sequence[int]) -> None:
        """Forget delivered (or finally failed) events; a busy recorder's sign of life too."""
        now = time.time()
        with self._lock:
            self._db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in ids])
            if now - self._last_heartbeat >= HEARTBEAT_SECONDS:
                self._beat(now)

    def park(self, event_id: int, until: float) -> None:
        """Give an event back, for any recorder to try again after ``until`` (unless another
        recorder took it meanwhile: then it is that one's to settle)."""
        with self._lock:
            self._db.execute(
                "UPDATE events SET owner = NULL, queued = 0, not_before = ? "
                "WHERE id = ? AND owner = ?",
                (until, event_id, self.owner),
            )

    def release(self, keep: Iterable[int] = ()) -> None:
        """Give back every event this recorder holds but ``keep`` (those still being sent), and
        leave: other recorders may take them at once."""
        kept = list(keep)
        with self._lock, self._transaction():
            marks = ",".join("?" * len(kept))
            self._db.execute(
                f"UPDATE events SET owner = NULL, queued = 0 WHERE owner = ? AND id NOT IN ({marks})",
                (self.owner, *kept),
            )
            if not kept:
                self._db.execute("DELETE FROM owners WHERE owner = ?", (self.owner,))

    def heartbeat(self) -> None:
        """Show this recorder is alive (every ``HEARTBEAT_SECONDS`` at most)."""
        now = time.time()
        if now - self._last_heartbeat >= HEARTBEAT_SECONDS:
            with self._lock:
                self._beat(now)

    def count(self) -> int:
        """Events in the spool, whoever holds them."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])

    def deliverable(self) -> int:
        """Events this recorder holds or could take (now or later): what ``flush`` waits for."""
        now = time.time()
        with self._lock, self._transaction():
            self._free_dead_owners(now)
            row = self._db.execute(
                "SELECT count(*) FROM events WHERE owner = ? OR owner IS NULL", (self.owner,)
            ).fetchone()
        return int(row[0])

    def summary(self) -> SpoolSummary:
        """What the file holds; reads only (a dead recorder's events count as waiting)."""
        with self._lock:
            live = set(self._db.execute("SELECT owner FROM owners")) - {
                (owner,) for owner in self._dead_owners(time.time())
            }
            by_kind = dict(self._db.execute("SELECT kind, count(*) FROM events GROUP BY kind"))
            oldest = self._db.execute("SELECT min(recorded_at) FROM events").fetchone()[0]
            owners = [row[0] for row in self._db.execute("SELECT owner FROM events")]
        owned = sum(1 for owner in owners if (owner,) in live)
        return SpoolSummary(by_kind, oldest, owned, len(owners) - owned)

    def close(self, final: bool = False) -> None:
        """Close the connection (a later use reopens it); ``final``: this recorder is gone, so
        a reopening (``stats()`` after ``close()``) only looks and no longer registers."""
        with self._lock:
            if final:
                self._register = False
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # -- inside ------------------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _beat(self, now: float) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO owners (owner, host, pid, heartbeat) VALUES (?, ?, ?, ?)",
            (self.owner, self._host, os.getpid(), now),
        )
        self._last_heartbeat = now

    def _dead_owners(self, now: float) -> list[str]:
        owners = self._db.execute("SELECT owner, host, pid, heartbeat FROM owners").fetchall()
        return [
            owner
            for owner, host, pid, heartbeat in owners
            if (host == self._host and (not _running(pid) or heartbeat < now - LOCAL_LEASE_SECONDS))
            or (host != self._host and heartbeat < now - LEASE_SECONDS)
        ]

    def _free_dead_owners(self, now: float) -> None:
        for owner in self._dead_owners(now):
            self._db.execute("DELETE FROM owners WHERE owner = ?", (owner,))
        # Events of a dead owner, or of one that never registered (a crash mid-start).
        self._db.execute(
            "UPDATE events SET owner = NULL, queued = 0 "
            "WHERE owner IS NOT NULL AND owner NOT IN (SELECT owner FROM owners)"
        )


def _connect(path: str, patience: float, create: bool) -> sqlite3.Connection:
    """Open the file in WAL mode with its tables. Opening an existing spool only reads, so it
    never waits for another process's write; making one (``create``) waits out other
    processes making it too, for ``patience`` seconds at most."""
    deadline = time.monotonic() + patience
    while True:
        db = sqlite3.connect(path, timeout=patience, isolation_level=None, check_same_thread=False)
        try:
            if not _has_tables(db):
                if not create:
                    raise sqlite3.DatabaseError(f"{path!r} is not a spool (no events table)")
                db.execute("PRAGMA journal_mode=WAL")  # does not wait on a lock by itself
                with _Transaction(db):  # executescript would commit halfway
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
            elif create and db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
            return db
        except sqlite3.OperationalError as error:
            db.close()
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
        except BaseException:
            db.close()
            raise
        time.sleep(0.01)


def _has_tables(db: sqlite3.Connection) -> bool:
    """Whether the spool's tables exist (a read: it takes no write lock)."""
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    return {"events", "owners", "events_by_owner"} <= names


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (or ``ROLLBACK`` on error): the write lock up front."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        self._db.execute("ROLLBACK" if error is not None else "COMMIT")


_SPOOLS: weakref.WeakSet[Spool] = weakref.WeakSet()


def _close_before_fork() -> None:
    """Hold every spool still, and close its connection: the child must inherit none."""
    for spool in list(_SPOOLS):
        spool._lock.acquire()
        if spool._connection is not None:
            spool._connection.close()
            spool._connection = None


def _after_fork_in_parent() -> None:
    for spool in list(_SPOOLS):
        spool._lock.release()  # its connection reopens on next use


def _after_fork_in_child() -> None:
    for spool in list(_SPOOLS):
        spool._lock = threading.Lock()
        spool._new_owner()  # another process: another owner


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_close_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie does not count)."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there; trust the heartbeat
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
