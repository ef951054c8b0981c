"""The spool's file: which paths may be one, how it is made (0600, WAL, its tables and version)
and opened, and what a forked child does with the SQLite connections it inherited.

These rules hold for whoever opens the file (a recorder, or an operator's
``python -m openapi_client spool PATH``), so they live apart from the ``Spool`` handle.

About ``fork``: SQLite keeps, per process, a record of the locks its connections hold on each
file. A forked child inherits that record but not the locks (POSIX locks belong to a process).
A connection the child opens to the same file then trusts the record: it skips locks it thinks
it has (so the parent may delete the WAL under it) or waits forever for a write lock "held" by a
thread that does not exist in the child. So the child closes every inherited connection that no
thread was using at the fork (safe: the parent's own locks keep the child's close from
checkpointing or deleting anything), which clears the record. A connection a thread was inside
at the fork may hold SQLite's mutex: closing it would hang, so it is abandoned (kept, never
closed), and the child never opens that file again (``SpoolInherited``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import time
import urllib.parse
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from openapi_client._fork import after_fork_in_child
from openapi_client.exceptions import ApiTypeError, ApiValueError

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of the files this version writes. 0 is the first release's file (the
same tables with fewer columns): upgraded in place. A higher one belongs to a newer version."""
ROW_FORMAT = 1
"""Stored in each row this version writes (``events.format``); a row with a higher format was
written by a newer version and may hold what this one cannot read."""
BUSY_SECONDS = 5.0
"""How long a write waits for another process's transaction before giving up (it is retried)."""
QUICK_BUSY_SECONDS = 0.0
TRY_SECONDS = 0.002
"""The main connection's busy timeout: one try of a worker's write while another process
holds the file (``Spool._writing`` tries again, letting go of the spool's lock in between)."""
"""How long ``add(wait=False)`` lets SQLite wait for another process's write before saying
``SpoolBusy``. 0: never. (A few milliseconds would ride out the short transactions of sibling
processes; a lock held for long still fails fast.)"""
SETUP_SECONDS = 1.0
"""Opening to write waits at least this long for another process making or upgrading the file
(milliseconds of work, but colliding is likely when several processes start together); a spool
that is ready opens without any lock, so nothing else waits on it."""
JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024
"""Once checkpointed, the WAL is cut back to this size (a long reader lets it grow meanwhile)."""

_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_FULL, _SQLITE_NOTADB = 5, 6, 13, 26
_SQLITE_IOERR_WRITE = 10 | 3 << 8
"""SQLite's result codes (``sqlite3`` names them only from Python 3.11)."""

FileKey = tuple[int, int]
"""``(st_dev, st_ino)``: how SQLite tells files apart within a process."""


class SpoolTooNew(sqlite3.DatabaseError):
    """The file was made by a newer version of the SDK (higher ``user_version``): not used, and
    never written, so that version finds it as it left it."""


class SpoolBusy(sqlite3.OperationalError):
    """The spool could not take the write without waiting (another thread or process is
    writing): nothing was written; try again later."""


class SpoolInherited(sqlite3.OperationalError):
    """This process was forked while one of its threads was inside SQLite on this file: SQLite's
    locks for the file are in an unknown state here, so this process never uses it."""


class NotASpool(ApiValueError, sqlite3.DatabaseError):
    """The file is not a spool: another application's SQLite file, or not SQLite at all. Never
    written to. (Also a ``sqlite3.DatabaseError``, for callers that only know that.)"""


# -- which paths may be a spool ---------------------------------------------------------------


def check_spool_path(value: object) -> str:
    """The absolute path of the spool that ``value`` names (resolved now, so that a later
    ``os.chdir`` does not move it); refuses what SQLite would not treat as a plain file."""
    if isinstance(value, bytes) or not isinstance(value, str | os.PathLike):
        raise ApiTypeError(f"spool must be a file path or None, not {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str):
        raise ApiTypeError(f"spool must be a file path or None, not a bytes path ({value!r})")
    if path == "":
        raise ApiValueError("spool must name a file, not ''")
    if path == ":memory:":
        raise ApiValueError("spool ':memory:' would lose every event at exit: name a file")
    if path[:5].lower() == "file:":
        raise ApiValueError(f"spool must be a plain file path, not a SQLite URI ({path!r})")
    if "\x00" in path:
        raise ApiValueError(f"spool path contains a NUL character ({path!r})")
    return os.path.abspath(path)


def check_spool_file(path: str, patience: float = 0.0) -> None:
    """Refuse (``ApiValueError`` naming the spool) a file that must not be used as one: a
    symbolic link, someone else's file, not a regular file, or a SQLite file of another kind.
    A missing or empty file is fine (it is made a spool). Only reads: the file is opened
    read-only, and nothing is created in it."""
    for name in (path, f"{path}-wal", f"{path}-shm"):
        _check_entry(path, name)
    if os.path.exists(path) and os.path.getsize(path) > 0:
        _check_contents(path, patience)


def _check_entry(spool: str, name: str) -> None:
    """``name`` (the spool, its ``-wal`` or ``-shm``), if it exists, is a regular file of ours."""
    try:
        info = os.lstat(name)
    except FileNotFoundError:
        return
    what = "spool" if name == spool else f"spool {spool!r}: its file"
    if stat.S_ISLNK(info.st_mode):
        raise ApiValueError(f"{what} {name!r} is a symbolic link; give the file's own path")
    if not stat.S_ISREG(info.st_mode):
        raise ApiValueError(f"{what} {name!r} is not a regular file")
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        raise ApiValueError(
            f"{what} {name!r} belongs to another user (uid {info.st_uid}, this process runs "
            f"as uid {os.geteuid()}): a spool must be the process's own file"
        )


_SPOOL_TABLES = {"events", "owners"}
_SPOOL_INDEXES = {"events_by_owner"}
_EVENT_COLUMNS = {"id", "kind", "body", "recorded_at", "owner", "queued", "not_before"}


def _check_contents(path: str, patience: float) -> None:
    """An existing SQLite file is a spool (or has no tables yet); read-only."""
    try:
        link = _connect(path, _file_key(path), read_only=True, busy_seconds=patience, checkpoints=False)
        try:
            objects = link.rows("SELECT type, name FROM sqlite_master")
            columns = {row[1] for row in link.rows("PRAGMA table_info(events)")}
        finally:
            link.close()
    except sqlite3.DatabaseError as error:
        if _code(error) == _SQLITE_NOTADB or "not a database" in str(error):
            raise NotASpool(f"spool {path!r} is not a spool: not a SQLite file ({error})") from None
        raise
    names = {name for _, name in objects}
    foreign = sorted(
        name
        for kind, name in objects
        if not name.startswith("sqlite_")
        and name not in (_SPOOL_TABLES if kind == "table" else _SPOOL_INDEXES)
    )
    if foreign:
        raise NotASpool(
            f"spool {path!r} is not a spool: it holds another application's tables or other "
            f"objects ({', '.join(foreign)}); it is left as it is"
        )
    if names and "events" not in names:
        raise NotASpool(f"spool {path!r} is not a spool (no events table); it is left as it is")
    if names and not columns >= _EVENT_COLUMNS:
        raise NotASpool(f"spool {path!r} is not a spool: its events table has other columns")


# -- one connection ---------------------------------------------------------------------------


class Link:
    """One SQLite connection, and whether a thread is inside it right now (what a forked child
    needs to know, see the module's docstring). Its owner uses it under a lock of its own."""

    def __init__(self, connection: sqlite3.Connection, file: FileKey) -> None:
        self.connection: sqlite3.Connection | None = connection
        self.file = file
        self.inside = 0
        _LINKS.add(self)

    @contextlib.contextmanager
    def _call(self) -> Iterator[sqlite3.Connection]:
        connection = self.connection
        if connection is None:
            raise sqlite3.ProgrammingError("the spool's connection was closed")
        self.inside += 1
        try:
            yield connection
        finally:
            self.inside -= 1

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row of a query."""
        with self._call() as connection:
            return connection.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row of a query (``None`` if none)."""
        with self._call() as connection:
            return connection.execute(sql, params).fetchone()

    def run(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """A statement that changes the file (its cursor tells ``lastrowid``, ``rowcount``)."""
        with self._call() as connection:
            return connection.execute(sql, params)

    def run_many(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        with self._call() as connection:
            connection.executemany(sql, params)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on error: the write lock up front."""
        self.run("BEGIN IMMEDIATE")
        try:
            yield
            self.run("COMMIT")
        except BaseException:
            connection = self.connection
            if connection is not None and connection.in_transaction:  # SQLite may have ended it
                with contextlib.suppress(sqlite3.Error), self._call() as db:
                    db.rollback()
            raise

    @contextlib.contextmanager
    def patience(self, seconds: float) -> Iterator[None]:
        """Wait at most ``seconds`` for other processes' locks, for the statements inside."""
        self.run(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
        try:
            yield
        finally:
            self.run(f"PRAGMA busy_timeout = {int(TRY_SECONDS * 1000)}")

    def close(self) -> None:
        if self.connection is not None:
            with self._call() as connection:
                connection.close()
            self.connection = None


def open_spool(path: str, *, write: bool, patience: float) -> tuple[Link, int]:
    """Open the spool (checked by ``check_spool_file``) and its schema version.

    ``write``: make the file if missing (0600), make it a spool in WAL mode or upgrade an older
    one, waiting up to ``patience`` seconds for other processes doing the same (a recorder
    gives ``SETUP_SECONDS`` when it is made, nothing from a caller's thread). An existing
    current spool opens without any lock. Otherwise it is opened read-only, as it is (waiting
    up to ``patience`` for a file being made).
    """
    if write:
        _create_private(path)
    file = _file_key(path)
    _check_inherited(path, file)
    deadline = time.monotonic() + patience
    while True:
        link = _connect(path, file, read_only=not write, busy_seconds=patience, checkpoints=True)
        try:
            version = _prepare(link, path) if write else _look(link, path)
            link.run(f"PRAGMA busy_timeout = {int(TRY_SECONDS * 1000)}")
            return link, version
        except sqlite3.OperationalError as error:
            link.close()
            if not is_busy(error) or time.monotonic() >= deadline:
                raise
        except BaseException:
            link.close()
            raise
        time.sleep(0.01)  # another process is making or upgrading the file: a moment


def open_quick(path: str) -> Link:
    """A connection for the caller's own inserts: it does not wait for other processes (busy
    timeout ``QUICK_BUSY_SECONDS``) and never runs a checkpoint (``wal_autocheckpoint=0``), so
    that ``record_*`` returns at once."""
    file = _file_key(path)
    _check_inherited(path, file)
    link = _connect(path, file, read_only=False, busy_seconds=QUICK_BUSY_SECONDS, checkpoints=False)
    try:
        _check_version(link, path)
    except BaseException:
        link.close()
        raise
    return link


def is_busy(error: sqlite3.Error) -> bool:
    """Another connection holds the lock this one needed."""
    code = _code(error)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "locked" in str(error) or "busy" in str(error)


def is_out_of_space(error: sqlite3.Error) -> bool:
    """A write did not fit: a full disk (``SQLITE_FULL``) or a file size limit (``EFBIG``,
    which SQLite reports as a failed write)."""
    code = _code(error)
    if code is not None:
        return code & 0xFF == _SQLITE_FULL or code == _SQLITE_IOERR_WRITE
    return "disk is full" in str(error) or "disk I/O error" in str(error)


# -- making and opening the file --------------------------------------------------------------

_V0_TABLES = """
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
)
"""
"""The first release's tables (``user_version`` 0). A new file gets them, then every upgrade:
so a new file and an upgraded one are alike."""

_UPGRADES: dict[int, list[str]] = {
    0: [
        # Rebuilt with AUTOINCREMENT: an id is never given to another event once its row is
        # deleted (callers hold ids of rows that others may deliver and delete), and with
        # ``format``, the writer's row format (rows a newer version wrote are left for it), and
        # ``set_aside``: the row format of the version that could not read the row, and why.
        """CREATE TABLE events_v1 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            body BLOB NOT NULL,
            recorded_at REAL NOT NULL,
            owner TEXT,
            queued INTEGER NOT NULL DEFAULT 0,
            not_before REAL NOT NULL DEFAULT 0,
            format INTEGER NOT NULL DEFAULT 0,
            set_aside INTEGER NOT NULL DEFAULT 0,
            set_aside_reason TEXT
        )""",
        "INSERT INTO events_v1 (id, kind, body, recorded_at, owner, queued, not_before) "
        "SELECT id, kind, body, recorded_at, owner, queued, not_before FROM events",
        "DROP TABLE events",
        "ALTER TABLE events_v1 RENAME TO events",
        "CREATE INDEX events_by_owner ON events (owner, queued, not_before)",
        # Liveness without wall clocks: a counter each beat moves, and the process's start.
        "ALTER TABLE owners ADD COLUMN beats INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE owners ADD COLUMN started TEXT",
    ],
}
"""``_UPGRADES[n]``: the statements that take a version ``n`` file to version ``n + 1``, in one
transaction. Each keeps the file usable by version ``n`` writers (same names, new columns with
defaults)."""


def _create_private(path: str) -> None:
    """Make the file, 0600 whatever the umask, before SQLite opens it: SQLite gives the
    ``-wal`` and ``-shm`` it creates the main file's permissions."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileExistsError:
        return
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)


def _file_key(path: str) -> FileKey:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def _connect(
    path: str, file: FileKey, *, read_only: bool, busy_seconds: float, checkpoints: bool
) -> Link:
    """A connection with the spool's settings; ``read_only`` opens with ``mode=ro`` (nothing
    can be written, nothing is created but SQLite's shared-memory files)."""
    target = f"file:{urllib.parse.quote(path)}?mode=ro" if read_only else path
    token = object()
    _OPENING[token] = file  # a fork right now: the child leaves this file alone
    try:
        connection = sqlite3.connect(
            target,
            timeout=busy_seconds,
            isolation_level=None,
            check_same_thread=False,
            uri=read_only,
        )
    finally:
        del _OPENING[token]
    link = Link(connection, file)
    try:
        link.run("PRAGMA synchronous = NORMAL")  # durable across process crashes
        link.run(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
        link.run("PRAGMA cache_spill = OFF")  # nothing reaches the WAL before COMMIT
        if not checkpoints:
            link.run("PRAGMA wal_autocheckpoint = 0")
    except BaseException:
        link.close()
        raise
    return link


def _prepare(link: Link, path: str) -> int:
    """Make the file a current spool: WAL mode, the tables, upgrades. A file that is already
    one only gets read (no lock taken)."""
    version = _check_version(link, path)
    if version == SCHEMA_VERSION and link.one("PRAGMA journal_mode")[0] == "wal":
        return version
    if link.one("PRAGMA journal_mode")[0] != "wal":
        link.run("PRAGMA journal_mode = WAL")  # takes no lock when it cannot: raises busy
    with link.transaction():  # executescript would commit halfway
        version = _check_version(link, path)  # another process may have done it meanwhile
        if version == 0:
            for statement in _V0_TABLES.split(";"):
                link.run(statement)
        for step in range(version, SCHEMA_VERSION):
            for statement in _UPGRADES[step]:
                link.run(statement)
        link.run(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return SCHEMA_VERSION


def _look(link: Link, path: str) -> int:
    """For reading only: the file's version, if it is a spool this version can read."""
    version = _check_version(link, path)
    if link.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'") is None:
        raise NotASpool(f"spool {path!r} holds no spool yet (no events table)")
    return version


def _check_version(link: Link, path: str) -> int:
    version = int(link.one("PRAGMA user_version")[0])
    if version > SCHEMA_VERSION:
        raise SpoolTooNew(
            f"spool {path!r} was written by a newer version of the SDK (file version {version}, "
            f"this version reads up to {SCHEMA_VERSION}): it is not used, and left as it is"
        )
    return version


def _code(error: sqlite3.Error) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)  # Python 3.11+
    return code if isinstance(code, int) else None


# -- after a fork -----------------------------------------------------------------------------

_LINKS: weakref.WeakSet[Link] = weakref.WeakSet()
_OPENING: dict[object, FileKey] = {}
"""Files a thread is opening a connection to, right now."""
_INHERITED: set[FileKey] = set()
"""Files this (forked) process must never open: a parent thread was inside SQLite on them."""
_ABANDONED: list[sqlite3.Connection] = []
"""Inherited connections that must never be closed (closing could hang on SQLite's mutex)."""


def _check_inherited(path: str, file: FileKey) -> None:
    if file in _INHERITED:
        raise SpoolInherited(
            f"spool {path!r} cannot be used in this process: it was forked while another "
            "thread was inside SQLite on the file"
        )


def _settle_links_in_child() -> None:
    """In a forked child: close each inherited connection no thread was inside at the fork
    (it is idle; closing it clears SQLite's record of locks this process does not hold), and
    abandon the others, with every connection to their files (see the module's docstring)."""
    unsafe = set(_OPENING.values()) | {link.file for link in _LINKS if link.inside}
    _OPENING.clear()
    _INHERITED.update(unsafe)
    for link in list(_LINKS):
        connection, link.connection, link.inside = link.connection, None, 0
        if connection is None:
            continue
        if link.file in unsafe:
            _abandon(connection)
        else:
            with contextlib.suppress(sqlite3.Error):
                connection.close()


def _abandon(connection: sqlite3.Connection) -> None:
    """Keep ``connection`` for the life of the process, past interpreter exit too (its last
    reference going would close it)."""
    _ABANDONED.append(connection)
    try:
        import ctypes

        ctypes.pythonapi.Py_IncRef(ctypes.py_object(connection))
    except Exception:  # noqa: S110 - no ctypes: the list keeps it until interpreter exit
        pass


after_fork_in_child(None, _settle_links_in_child)
