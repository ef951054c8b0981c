"""The spool's file layer (``recorder/_spool.py``, ``_spool_file.py``) on its own: which files
may be a spool, how they are made and versioned, claims that do not sort the backlog, deletes on
a full disk, a bounded WAL, owners judged without wall clocks, and forks (issue 14).

Other processes are real: the ``sqlite3`` shell holding locks, children with a file size limit
or a clock set ahead (``time.time`` moved inside the child), and forked children. API added by
issue 14 is looked up on the module inside each test, so that on the old code each test fails
on its own item rather than the whole file failing to import.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from recorder_support import WAIT, offer
from sqlite_shell import Shell, needs_shell

import openapi_client
from openapi_client.exceptions import ApiTypeError, ApiValueError
from openapi_client.recorder import _spool as spools
from openapi_client.recorder._spool import LEASE_SECONDS, Spool

BODY = (
    b'{"leadUuid":"f914eb07-a64f-51d8-b882-ff508a8c5c81",'
    b'"rateTableUuid":"952a1184-d369-5958-9a0f-bec903e11c48",'
    b'"offerUuid":"3426f971-1aa5-5cb0-91a9-cf2edcfa5dfa"}'
)
ROOT = Path(openapi_client.__file__).resolve().parents[1]
"""The checkout whose ``openapi_client`` the children import (the one under test)."""
FIRST_RELEASE_SCHEMA = """
CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, body BLOB NOT NULL,
    recorded_at REAL NOT NULL, owner TEXT, queued INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0);
CREATE INDEX events_by_owner ON events (owner, queued, not_before);
CREATE TABLE owners (owner TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,
    heartbeat REAL NOT NULL);
"""
"""The tables of a spool the first release made (``user_version`` 0)."""

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def shell() -> Iterator[Callable[[Path], Shell]]:
    """Start ``sqlite3`` shells on files; all ended after the test."""
    started: list[Shell] = []

    def start(path: Path) -> Shell:
        started.append(Shell(path))
        return started[-1]

    yield start
    for one in started:
        one.end()


def run_child(code: str, timeout: float = 60.0) -> Any:
    """Run Python ``code`` in a new process (importing the package under test); the JSON it
    printed last. Fails with the child's output if it failed."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(Path(__file__).parent)]))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, f"child failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def rows_of(path: Path, sql: str = "SELECT id, owner FROM events ORDER BY id") -> list[Any]:
    """Read the file from another connection, as another process would."""
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def insert_free(path: Path, kinds: list[str]) -> None:
    """Events no recorder holds (left by a process that exited), written as another process."""
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO events (kind, body, recorded_at) VALUES (?, ?, ?)",
            [(kind, BODY, time.time()) for kind in kinds],
        )


def make_first_release_spool(path: Path, rows: int) -> None:
    """A spool as the first release left it: its tables, ``rows`` free events."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript(FIRST_RELEASE_SCHEMA)
        db.executemany(
            "INSERT INTO events (kind, body, recorded_at) VALUES ('offer_display', ?, ?)",
            [(BODY, time.time())] * rows,
        )
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def let_time_pass(observer: Spool, seconds: float) -> None:
    """Make what ``observer`` has seen of other owners ``seconds`` older on its own monotonic
    clock (time passing for it, without waiting)."""
    observer._seen = {
        owner: (beat, seen - seconds) for owner, (beat, seen) in observer._seen.items()
    }


def mode_of(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- which files may be a spool (items 5, 19, 20) ---------------------------------------------


@pytest.mark.parametrize(
    "value", ["", ":memory:", "file:events.db", "FILE:x?mode=memory", "a\x00b"]
)
def test_spool_names_sqlite_would_not_treat_as_a_plain_file_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """Issue 14 item 5: an empty name, ``:memory:``, a SQLite URI or a NUL would lose events
    or open something else than the file named: ``ApiValueError`` naming ``spool``."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ApiValueError, match=r"^spool "):
        Spool(value)
    with pytest.raises(ApiValueError, match=r"^spool "):
        spools.check_spool_path(value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", [b"events.db", 3, None])
def test_a_spool_that_is_not_a_path_is_a_type_error(value: object) -> None:
    """Issue 14 item 5: bytes and other objects are ``ApiTypeError`` (None is the caller's:
    no spool)."""
    with pytest.raises(ApiTypeError, match=r"^spool must be a file path or None"):
        spools.check_spool_path(value)


def test_a_relative_spool_path_is_resolved_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14 item 5: a relative path names the file in the directory current when the spool
    was opened; a later ``os.chdir`` does not move it (a reopening finds the same file)."""
    (tmp_path / "first").mkdir()
    (tmp_path / "later").mkdir()
    monkeypatch.chdir(tmp_path / "first")
    spool = Spool("events.db")
    spool.add("offer_display", BODY, time.time(), queued=False)
    spool.close()
    monkeypatch.chdir(tmp_path / "later")

    assert spool.path == str(tmp_path / "first" / "events.db")
    assert spool.count() == 1
    assert list((tmp_path / "later").iterdir()) == []


def test_a_spool_path_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    """Issue 14 item 19: a symlink could point the spool at any file the process may write:
    refused, naming the spool, and the file it points to is not touched."""
    target = tmp_path / "elsewhere.db"
    target.write_bytes(b"")
    link = tmp_path / "events.db"
    link.symlink_to(target)

    for register in (True, False):
        with pytest.raises(ApiValueError, match=r"^spool .*symbolic link"):
            Spool(str(link), register=register)
    assert target.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere.db", "events.db"]


def test_a_wal_or_shm_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    """Issue 14 item 19: SQLite would write the spool's journal through a symlinked ``-wal``
    (or its shared memory through ``-shm``) into another file."""
    for suffix in ("-wal", "-shm"):
        path = tmp_path / f"events{suffix}.db"
        victim = tmp_path / f"victim{suffix}"
        victim.write_bytes(b"precious")
        Path(f"{path}{suffix}").symlink_to(victim)

        with pytest.raises(ApiValueError, match=r"^spool .*symbolic link"):
            Spool(str(path))
        assert victim.read_bytes() == b"precious"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root (chown)")
def test_a_spool_file_of_another_user_is_refused(tmp_path: Path) -> None:
    """Issue 14 item 19: a file another user owns (and could read or replace) is refused, like
    ssh refuses such keys; root too, which could otherwise write anyone's file."""
    path = tmp_path / "events.db"
    Spool(str(path)).close()
    os.chown(path, 65534, 65534)
    before = path.read_bytes()

    for register in (True, False):
        with pytest.raises(ApiValueError, match=r"^spool .*another user"):
            Spool(str(path), register=register)
    assert path.read_bytes() == before


def test_another_applications_sqlite_file_is_refused_in_every_mode_and_left_as_it_was(
    tmp_path: Path,
) -> None:
    """Issue 14 item 20: a SQLite file with other tables is not a spool: refused by the
    recorder's mode as by the operator's (never given spool tables), and left byte for byte."""
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (name TEXT)")
        db.execute("INSERT INTO customers VALUES ('Ada')")
    before = path.read_bytes()

    for register in (True, False):
        with pytest.raises(ApiValueError, match=r"^spool .*not a spool"):
            Spool(str(path), register=register)
    with pytest.raises(ApiValueError, match=r"^spool .*customers"):
        spools.check_spool_file(str(path))

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    """Issue 14 item 20: a file that is not SQLite at all (or whose header was destroyed) is
    refused the same way, and left as it is."""
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are not events" * 100)

    with pytest.raises(ApiValueError, match=r"^spool .*not a SQLite file"):
        Spool(str(path))
    assert path.read_bytes() == b"these are not events" * 100


def test_an_empty_file_is_made_a_spool(tmp_path: Path) -> None:
    """Issue 14 items 19, 20: an empty file (``touch``) is not refused: it becomes the spool."""
    path = tmp_path / "events.db"
    path.touch(mode=0o600)

    spool = Spool(str(path))
    spool.add("offer_display", BODY, time.time(), queued=False)

    assert spool.count() == 1


def test_a_new_spool_and_its_wal_and_shm_are_private(tmp_path: Path) -> None:
    """Issue 14 item 18: events are personal data: the spool, its ``-wal`` and ``-shm`` are
    made 0600 whatever the umask."""
    path = tmp_path / "events.db"
    old = os.umask(0o022)
    try:
        spool = Spool(str(path))
        spool.add("offer_display", BODY, time.time(), queued=False)
        modes = {name: mode_of(f"{path}{name}") for name in ("", "-wal", "-shm")}
    finally:
        os.umask(old)

    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


# -- versions (item 3) ------------------------------------------------------------------------


def test_a_new_spool_says_which_version_made_it(tmp_path: Path) -> None:
    """Issue 14 item 3: ``PRAGMA user_version`` is 1, so a later version knows the file."""
    path = tmp_path / "events.db"
    Spool(str(path)).close()

    assert rows_of(path, "PRAGMA user_version") == [(1,)]


def test_a_first_release_spool_is_upgraded_in_place_with_its_events(tmp_path: Path) -> None:
    """Issue 14 item 3: a spool the first release left (version 0) is upgraded, and the events
    in it are delivered."""
    path = tmp_path / "events.db"
    make_first_release_spool(path, rows=2)

    spool = Spool(str(path))
    claimed = spool.claim(10)

    assert rows_of(path, "PRAGMA user_version") == [(1,)]
    assert [(event.id, event.kind, event.body) for event in claimed] == [
        (1, "offer_display", BODY),
        (2, "offer_display", BODY),
    ]


def test_a_first_release_spool_can_be_looked_at_without_upgrading_it(tmp_path: Path) -> None:
    """Issue 14 item 3: the operator's read-only look does not upgrade (write) the file."""
    path = tmp_path / "events.db"
    make_first_release_spool(path, rows=3)

    summary = Spool(str(path), register=False).summary()

    assert (summary.by_kind, summary.waiting, summary.set_aside) == ({"offer_display": 3}, 3, 0)
    assert rows_of(path, "PRAGMA user_version") == [(0,)]


def test_a_spool_from_a_newer_version_is_never_written(tmp_path: Path) -> None:
    """Issue 14 item 3: a file whose version is higher belongs to a newer SDK: opening it
    fails (``SpoolTooNew``, a ``sqlite3.DatabaseError``) in every mode, and it stays as it was."""
    path = tmp_path / "events.db"
    make_first_release_spool(path, rows=1)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 2")
    before = path.read_bytes()

    for register in (True, False):
        with pytest.raises(sqlite3.DatabaseError, match="newer version") as raised:
            Spool(str(path), register=register)
        assert type(raised.value).__name__ == "SpoolTooNew"
    assert path.read_bytes() == before


def test_events_of_a_kind_this_version_does_not_know_are_set_aside(tmp_path: Path) -> None:
    """Issue 14 item 3: a newer version's kind is never claimed, never deleted, never counted
    as deliverable; the operator sees it set aside."""
    path = tmp_path / "events.db"
    spool = Spool(str(path))
    insert_free(path, ["offer_display", "offer_click", "session_init"])

    assert spool.deliverable() == 2
    claimed = spool.claim(10)
    spool.delete([1, 2, 3])

    assert [event.kind for event in claimed] == ["offer_display", "session_init"]
    assert rows_of(path, "SELECT id, kind FROM events") == [(2, "offer_click")]
    assert spool.deliverable() == 0
    assert Spool(str(path)).claim(10) == []
    summary = spool.summary()
    assert (summary.by_kind, summary.set_aside, summary.waiting) == ({"offer_click": 1}, 1, 0)


def test_events_written_in_a_newer_row_format_are_set_aside(tmp_path: Path) -> None:
    """Issue 14 item 3: a row whose ``format`` is newer than this version's is left alone,
    and the handle says which rows it set aside and why (for the recorder's one warning)."""
    path = tmp_path / "events.db"
    spool = Spool(str(path))
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO events (kind, body, recorded_at, format) VALUES (?, ?, ?, 2)",
            ("offer_display", b"\x00new", time.time()),
        )

    assert spool.claim(10) == []
    spool.delete([1])

    [(row, reason)] = spool.take_set_aside()
    assert row == 1
    assert "row format 2" in reason
    assert spool.take_set_aside() == []
    assert rows_of(path, "SELECT id, set_aside FROM events") == [(1, 1)]
    assert spool.summary().set_aside == 1


def test_an_event_the_recorder_cannot_parse_is_never_claimed_again_nor_deleted(
    tmp_path: Path,
) -> None:
    """Issue 14 item 3: ``set_aside`` keeps a row the recorder could not parse for the version
    that can: no recorder of this version claims it again, ``delete`` leaves it."""
    path = tmp_path / "events.db"
    spool = Spool(str(path))
    spool.add("offer_display", b'{"from": "the future"}', time.time(), queued=False)
    [event] = spool.claim(10)

    spool.set_aside(event.id, "body not understood")
    spool.delete([event.id])
    spool.release()

    assert spool.claim(10) == []
    assert Spool(str(path)).claim(10) == []
    assert spool.deliverable() == 0
    assert rows_of(path, "SELECT id, set_aside_reason FROM events") == [(1, "body not understood")]
    assert Spool(str(path), register=False).summary().set_aside == 1


# -- writes that never wait (item 15) ---------------------------------------------------------


@needs_shell
def test_add_without_waiting_returns_at_once_while_another_process_writes(
    tmp_path: Path, shell: Callable[[Path], Shell]
) -> None:
    """Issue 14 item 15: ``sqlite3 FILE`` with ``BEGIN IMMEDIATE`` holds the write lock;
    ``add(wait=False)`` says ``SpoolBusy`` at once (not after the 5 s busy timeout), and
    writes once the lock is free."""
    path = tmp_path / "events.db"
    spool = Spool(str(path))
    holder = shell(path)
    holder.do("BEGIN IMMEDIATE;")

    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError) as raised:
        spool.add("offer_display", BODY, time.time(), queued=True, wait=False)
    assert time.monotonic() - started < spools.BUSY_SECONDS / 2  # did not take the busy timeout
    assert type(raised.value).__name__ == "SpoolBusy"

    holder.do("COMMIT;")
    row = spool.add("offer_display", BODY, time.time(), queued=True, wait=False)
    assert rows_of(path) == [(row, spool.owner)]


def test_add_without_waiting_does_not_wait_long_for_the_spools_own_lock(tmp_path: Path) -> None:
    """Issue 14 item 15: a worker holding the spool (a claim, a delete, a wait on another
    process) does not hold up ``record_*``: ``add(wait=False)`` lets this process's own work
    finish for a moment at most, then says ``SpoolBusy`` (the caller keeps the event in
    memory), long before the lock is let go."""
    spool = Spool(str(tmp_path / "events.db"))
    result: list[object] = []

    def add() -> None:
        try:
            result.append(spool.add("offer_display", BODY, time.time(), queued=True, wait=False))
        except sqlite3.OperationalError as error:
            result.append(error)

    with spool._lock:
        writer = threading.Thread(target=add)
        writer.start()
        writer.join(WAIT)
        alive = writer.is_alive()
    writer.join(WAIT)

    assert not alive, "add(wait=False) waited for the spool's lock"
    assert [type(r).__name__ for r in result] == ["SpoolBusy"]
    assert spool.add("offer_display", BODY, time.time(), queued=True, wait=False) == 1


def test_add_without_waiting_never_queues_behind_another_caller(tmp_path: Path) -> None:
    """Issue 14 item 15: while another thread is inside ``add(wait=False)``, a second one
    gets ``SpoolBusy`` at once instead of waiting its turn."""
    spool = Spool(str(tmp_path / "events.db"))
    busy = pytest.raises(sqlite3.OperationalError)
    with spool._quick_lock, busy as raised:
        spool.add("offer_display", BODY, time.time(), queued=True, wait=False)
    assert type(raised.value).__name__ == "SpoolBusy"


@needs_shell
def test_opening_a_spool_to_write_waits_for_no_other_writer(
    tmp_path: Path, shell: Callable[[Path], Shell]
) -> None:
    """Issue 14 item 15: a recorder made while another process writes opens its (existing)
    spool at once: opening takes no write lock (the owner registers with its first row)."""
    path = tmp_path / "events.db"
    Spool(str(path)).close()
    holder = shell(path)
    holder.do("BEGIN IMMEDIATE;")

    started = time.monotonic()
    spool = Spool(str(path), patience=0.0)
    assert time.monotonic() - started < spools.BUSY_SECONDS / 2
    holder.do("COMMIT;")
    assert spool.add("offer_display", BODY, time.time(), queued=True, wait=False) == 1


@needs_shell
def test_add_many_writes_all_rows_in_one_transaction_or_none(
    tmp_path: Path, shell: Callable[[Path], Shell]
) -> None:
    """Issue 14 item 15: the background writer puts what waited in memory on disk in one
    transaction; if the file stays locked past its patience, nothing is written."""
    path = tmp_path / "events.db"
    spool = Spool(str(path))
    rows = [("offer_display", BODY, time.time(), i % 2 == 0) for i in range(3)]

    assert spool.add_many(rows) == [1, 2, 3]
    assert rows_of(path, "SELECT owner, queued FROM events ORDER BY id") == [
        (spool.owner, 1),
        (spool.owner, 0),
        (spool.owner, 1),
    ]

    holder = shell(path)
    holder.do("BEGIN IMMEDIATE;")
    with pytest.raises(sqlite3.OperationalError) as raised:
        spool.add_many(rows, patience=0.1)
    assert type(raised.value).__name__ == "SpoolBusy"
    holder.do("COMMIT;")
    assert spool.count() == 3


# -- claims through the index (item 16) -------------------------------------------------------


def test_a_claim_reads_the_backlog_through_its_index(tmp_path: Path) -> None:
    """Issue 14 item 16: no statement of a claim sorts the backlog (no ``USE TEMP B-TREE`` in
    its query plan)."""
    path = tmp_path / "events.db"
    spool = Spool(str(path))
    insert_free(path, ["offer_display"] * 50)
    statements: list[str] = []
    assert spool._connection is not None
    spool._connection.set_trace_callback(statements.append)
    spool.claim(10)
    spool._connection.set_trace_callback(None)

    plans = {
        sql: [row[3] for row in rows_of(path, f"EXPLAIN QUERY PLAN {sql}")]
        for sql in statements
        if sql.lstrip().upper().startswith("SELECT") and "events" in sql
    }
    assert plans
    assert {sql: plan for sql, plan in plans.items() if "TEMP B-TREE" in " ".join(plan)} == {}


def test_draining_a_large_backlog_costs_the_same_per_claim_at_the_start_and_the_end(
    tmp_path: Path,
) -> None:
    """Issue 14 item 16: 100,000 events left by a dead process, drained 256 at a time: each
    claim does the same work (SQLite VM steps, counted) whether 100,000 or 256 remain."""
    path = tmp_path / "events.db"
    spool = Spool(str(path))
    insert_free(path, ["offer_display"] * 100_000)
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    costs: list[int] = []
    assert spool._connection is not None
    while True:
        spool._connection.set_progress_handler(step, 100)
        steps[0] = 0
        claimed = spool.claim(256)
        costs.append(steps[0])
        spool._connection.set_progress_handler(None, 0)
        if not claimed:
            break
        spool.delete([event.id for event in claimed])
    full = costs[1:-2]  # the first claim registers; the last two find less than 256

    assert len(full) > 380
    assert max(full[:10]) <= 2 * min(full[-10:]) + 50, (full[:10], full[-10:])


# -- a full disk (item 7) ---------------------------------------------------------------------


def test_a_delete_on_a_full_disk_frees_space_by_checkpointing_and_succeeds(tmp_path: Path) -> None:
    """Issue 14 item 7: with the files capped (``RLIMIT_FSIZE``, ``SIGXFSZ`` ignored) the spool
    fills until writes fail; a delete then checkpoints the WAL and succeeds, and no recorder
    ever claims a deleted row (no resend of an acknowledged event)."""
    path = tmp_path / "events.db"
    result = run_child(
        f"""
        import json, resource, signal, sqlite3, time
        from openapi_client.recorder._spool import Spool
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (512 * 1024, resource.RLIM_INFINITY))
        spool = Spool({str(path)!r})
        added, error = [], None
        while len(added) < 100_000:
            try:
                added.append(spool.add("offer_display", {BODY!r}, time.time(), queued=True))
            except sqlite3.Error as full:
                error = str(full)
                break
        acknowledged = added[: len(added) // 2]
        spool.delete(acknowledged)
        spool.release()
        claimed = [event.id for event in Spool({str(path)!r}).claim(100_000)]
        print(json.dumps([added, acknowledged, claimed, error]))
        """
    )
    added, acknowledged, claimed, error = result

    assert error is not None
    assert len(added) > 10
    assert sorted(claimed) == sorted(set(added) - set(acknowledged))


def test_an_events_id_is_never_given_to_another_event(tmp_path: Path) -> None:
    """Issue 14 item 7 (and 6): recorders keep the ids of rows that another recorder may
    deliver and delete (parked events, deletes owed); SQLite would hand the highest deleted id
    to the next row, and a stale id would then name someone else's event. Ids are never
    reused, in a new spool as in one upgraded from the first release."""
    new, old = tmp_path / "new.db", tmp_path / "old.db"
    make_first_release_spool(old, rows=2)
    for path in (new, old):
        spool = Spool(str(path))
        ids = [spool.add("offer_display", BODY, time.time(), queued=True) for _ in range(3)]
        spool.delete(ids[-1:])
        other = Spool(str(path))

        assert other.add("offer_display", BODY, time.time(), queued=True) == ids[-1] + 1


@needs_shell
def test_events_owed_a_delete_stay_with_their_recorder_until_it_succeeds(
    tmp_path: Path, shell: Callable[[Path], Shell]
) -> None:
    """Issue 14 item 7: a delete that fails (here: the file stays locked) raises, and the
    acknowledged events stay this recorder's: ``release`` does not give them back for another
    to resend; a later delete removes them."""
    path = tmp_path / "events.db"
    spool = Spool(str(path))
    ids = [spool.add("offer_display", BODY, time.time(), queued=True) for _ in range(4)]
    holder = shell(path)
    holder.do("BEGIN IMMEDIATE;")
    assert spool._connection is not None
    spool._connection.execute("PRAGMA busy_timeout = 50")

    with pytest.raises(sqlite3.OperationalError):
        spool.delete(ids[:2])
    holder.do("COMMIT;")
    spool.release()
    other = Spool(str(path))

    assert sorted(event.id for event in other.claim(10)) == ids[2:]
    spool.delete([])
    assert [row[0] for row in rows_of(path)] == ids[2:]


# -- a bounded WAL (item 8) -------------------------------------------------------------------


@needs_shell
def test_the_wal_comes_back_under_its_limit_once_a_reader_lets_go(
    tmp_path: Path, shell: Callable[[Path], Shell]
) -> None:
    """Issue 14 item 8: a reader holding a transaction (``sqlite3`` shell: ``BEGIN; SELECT``)
    keeps the WAL from being reset while 20,000 events are written; once it ends, a checkpoint
    brings the WAL back under ``journal_size_limit``, and it stays there."""
    path = tmp_path / "events.db"
    wal = Path(f"{path}-wal")
    spool = Spool(str(path))
    reader = shell(path)
    assert reader.do("BEGIN; SELECT count(*) FROM events;") == "0"
    for _ in range(40):
        spool.add_many([("offer_display", BODY * 4, time.time(), False)] * 500)
    grown = wal.stat().st_size
    reader.do("COMMIT;")
    reader.end()

    spool.checkpoint()
    after = wal.stat().st_size if wal.exists() else 0
    for _ in range(10):
        spool.add_many([("offer_display", BODY * 4, time.time(), False)] * 500)
        spool.checkpoint()
    later = wal.stat().st_size if wal.exists() else 0

    assert grown > spools.JOURNAL_SIZE_LIMIT
    assert after <= spools.JOURNAL_SIZE_LIMIT
    assert later <= spools.JOURNAL_SIZE_LIMIT


def test_checkpoint_never_raises(tmp_path: Path) -> None:
    """Issue 14 item 8: the worker calls ``checkpoint`` from its loop; a spool it cannot
    checkpoint (opened to look only) just says so."""
    path = tmp_path / "events.db"
    Spool(str(path)).add("offer_display", BODY, time.time(), queued=False)

    assert Spool(str(path), register=False).checkpoint() is False
    assert Spool(str(path)).checkpoint() is True


# -- owners judged without wall clocks (item 9) -----------------------------------------------


def test_a_process_whose_clock_is_16_minutes_ahead_takes_no_live_owners_events(
    tmp_path: Path,
) -> None:
    """Issue 14 item 9: a process whose ``time.time()`` runs 16 minutes ahead sees every
    other owner's last beat as 16 minutes old: it still takes none of their events (this
    process's own, and those of an owner on another host)."""
    path = tmp_path / "events.db"
    here, remote = Spool(str(path)), Spool(str(path))
    here.add("offer_display", BODY, time.time(), queued=True)
    here.add("offer_display", BODY, time.time(), queued=False)
    remote.add("session_init", b"{}", time.time(), queued=True)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE owners SET host = 'elsewhere.example' WHERE owner = ?", (remote.owner,))

    claimed = run_child(
        f"""
        import json, time
        real_time = time.time
        time.time = lambda: real_time() + 16 * 60
        from openapi_client.recorder._spool import Spool
        print(json.dumps([event.id for event in Spool({str(path)!r}).claim(10)]))
        """
    )

    assert claimed == []
    assert rows_of(path) == [(1, here.owner), (2, here.owner), (3, remote.owner)]


def test_an_event_parked_by_a_clock_far_ahead_is_not_parked_forever(tmp_path: Path) -> None:
    """Issue 14 item 9: a recorder whose clock was a year ahead parks an event "for a
    minute"; for the others that is a year: they take it now (early is harmless)."""
    path = tmp_path / "events.db"
    run_child(
        f"""
        import json, time
        real_time = time.time
        time.time = lambda: real_time() + 365 * 24 * 3600
        from openapi_client.recorder._spool import Spool
        spool = Spool({str(path)!r})
        row = spool.add("offer_display", {BODY!r}, time.time(), queued=True)
        spool.park(row, time.time() + 60)
        spool.release()
        print(json.dumps(row))
        """
    )

    assert [event.id for event in Spool(str(path)).claim(10)] == [1]


def test_an_owner_whose_pid_now_belongs_to_a_later_process_is_dead(tmp_path: Path) -> None:
    """Issue 14 item 9: pid reuse is told by the process's start time, not by the age of a
    beat: an owner whose pid runs but started at another time is gone, at once."""
    path = tmp_path / "events.db"
    gone, other = Spool(str(path)), Spool(str(path))
    gone.add("offer_display", BODY, time.time(), queued=False)
    assert other.claim(10) == []
    with sqlite3.connect(path) as db:
        db.execute("UPDATE owners SET started = 'another boot:1' WHERE owner = ?", (gone.owner,))

    assert [event.id for event in other.claim(10)] == [1]


def test_a_remote_owner_is_dead_once_its_counter_stops_for_a_lease_of_the_observers_clock(
    tmp_path: Path,
) -> None:
    """Issue 14 item 9: an owner on another host lives while its beat counter moves; once it
    has not moved for ``LEASE_SECONDS`` of the observer's own monotonic clock, it is dead."""
    path = tmp_path / "events.db"
    remote, other = Spool(str(path)), Spool(str(path))
    remote.add("offer_display", BODY, time.time(), queued=True)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE owners SET host = 'elsewhere.example' WHERE owner = ?", (remote.owner,))
    assert other.claim(10) == []

    let_time_pass(other, LEASE_SECONDS - 1)
    with sqlite3.connect(path) as db:  # the remote owner beats
        db.execute("UPDATE owners SET beats = beats + 1 WHERE owner = ?", (remote.owner,))
    let_time_pass(other, 2)
    assert other.claim(10) == []  # it beat meanwhile: seen anew

    let_time_pass(other, LEASE_SECONDS + 1)
    assert [event.id for event in other.claim(10)] == [1]


def test_a_late_park_does_not_free_an_event_another_recorder_took(tmp_path: Path) -> None:
    """Issue 14 item 9 (the first release's rule, with owners judged the new way): once
    another recorder took an event over (its owner found dead), the first one's late ``park``
    leaves it with the one that holds it."""
    path = tmp_path / "events.db"
    first, second = Spool(str(path)), Spool(str(path))
    first.add("offer_display", BODY, time.time(), queued=True)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE owners SET started = 'another boot:1' WHERE owner = ?", (first.owner,))
    assert [event.id for event in second.claim(10)] == [1]

    first.park(1, time.time())

    assert rows_of(path) == [(1, second.owner)]


# -- fork (item 15: fork never waits) ----------------------------------------------------------

FORK_PRELUDE = """
import json, os, sqlite3, sys, threading, time, warnings
warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
from openapi_client.recorder._spool import Spool

def report(fd, value):
    os.write(fd, json.dumps(value).encode())
    os.close(fd)

def collect(fd):
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    return json.loads(data)
"""


@needs_fork
def test_fork_does_not_wait_for_a_thread_holding_the_spool(tmp_path: Path) -> None:
    """Issue 14 item 15 (fork): a thread is in the middle of a spool write (the spool's lock and an
    open write transaction) when another thread forks: ``fork`` returns at once; the child,
    another owner, writes and claims on a connection of its own; the parent's rows stay its."""
    path = tmp_path / "events.db"
    code = (
        FORK_PRELUDE
        + f"""
spool = Spool({str(path)!r})
mine = spool.add("offer_display", b"{{}}", time.time(), queued=True)
holding, go, released = threading.Event(), threading.Event(), threading.Event()

def write_slowly():
    with spool._lock:
        spool._connection.execute("BEGIN IMMEDIATE")
        spool._connection.execute(
            "INSERT INTO events (kind, body, recorded_at, owner, queued) VALUES (?, ?, ?, ?, 1)",
            ("session_init", b"{{}}", time.time(), spool.owner),
        )
        holding.set()
        go.wait(10)
        spool._connection.execute("COMMIT")
    released.set()

writer = threading.Thread(target=write_slowly)
writer.start()
holding.wait(10)
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read)
    try:
        inherited = spool._connection is not None
        row = spool.add("offer_display", b"{{}}", time.time(), queued=False)
        claimed = [event.id for event in spool.claim(10)]
        report(write, dict(inherited=inherited, owner=spool.owner, row=row, claimed=claimed))
    finally:
        os._exit(0)
fork_waited = released.is_set()
go.set()
writer.join(10)
os.close(write)
child = collect(read)
os.waitpid(pid, 0)
rows = sqlite3.connect({str(path)!r}).execute("SELECT id, owner FROM events ORDER BY id").fetchall()
print(json.dumps(dict(fork_waited=fork_waited, child=child, parent=spool.owner, mine=mine, rows=rows)))
"""
    )
    result = run_child(code)
    child = result["child"]

    assert result["fork_waited"] is False
    assert child["inherited"] is False
    assert child["owner"] != result["parent"]
    assert child["claimed"] == [child["row"]]
    assert result["rows"] == [
        [result["mine"], result["parent"]],
        [result["mine"] + 1, result["parent"]],
        [child["row"], child["owner"]],
    ]


@needs_fork
@needs_shell
def test_a_child_forked_while_a_thread_is_inside_sqlite_leaves_the_file_alone(
    tmp_path: Path,
) -> None:
    """Issue 14 item 15 (fork): a thread waits inside SQLite (another process holds the write lock)
    when the process forks: ``fork`` returns at once. The child cannot know SQLite's state for
    that file (its mutex may be held by a thread that does not exist there), so it never
    touches it: the spool says so at once (no hang), and the child exits cleanly."""
    path = tmp_path / "events.db"
    code = (
        FORK_PRELUDE
        + f"""
spool = Spool({str(path)!r})
print("opened", flush=True)
sys.stdin.readline()  # the shell holds the write lock now
outcome = []
writer = threading.Thread(
    target=lambda: outcome.append(spool.add("offer_display", b"{{}}", time.time(), queued=True))
)
writer.start()
# Wait until the writer is inside SQLite: this version counts it; the first release can only
# show its lock held.
inside = (lambda: spool._main.inside) if hasattr(spool, "_main") else spool._lock.locked
deadline = time.monotonic() + 10
while not inside() and time.monotonic() < deadline:
    time.sleep(0.001)
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read)
    try:
        spool.count()
        said = "used the file"
    except sqlite3.Error as error:
        said = type(error).__name__
    report(write, said)
    sys.exit(0)  # a normal exit: nothing inherited may hang it
still_waiting = writer.is_alive()
os.close(write)
said = collect(read)
_, status = os.waitpid(pid, 0)
print(json.dumps(dict(still_waiting=still_waiting, said=said, status=status)), flush=True)
sys.stdin.readline()  # the shell let go
writer.join(10)
print(json.dumps(dict(outcome=outcome)))
"""
    )
    holder = Shell(path)
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert child.stdout is not None
        assert child.stdin is not None
        assert child.stdout.readline().strip() == "opened"
        holder.do("BEGIN IMMEDIATE;")
        child.stdin.write("go\n")
        child.stdin.flush()
        first = json.loads(child.stdout.readline() or "null")
        holder.do("COMMIT;")
        out, err = child.communicate("go\n", timeout=60)
    finally:
        holder.end()
        if child.poll() is None:
            child.kill()
            child.wait()

    assert first == {"still_waiting": True, "said": "SpoolInherited", "status": 0}, err
    assert json.loads(out.strip().splitlines()[-1]) == {"outcome": [1]}


@needs_fork
def test_a_forked_child_keeps_its_rows_when_the_parent_closes_the_spool(tmp_path: Path) -> None:
    """Issue 14 item 15 (fork): the parent's connection was open (idle) at the fork. The child's own
    connection must hold real locks: when the parent then closes its spool (its last
    connection, which checkpoints and deletes the WAL if no one else holds the file), the
    child's rows written before and after are all kept."""
    path = tmp_path / "events.db"
    code = (
        FORK_PRELUDE
        + f"""
spool = Spool({str(path)!r})
spool.add("offer_display", b"{{}}", time.time(), queued=True)
to_parent_r, to_parent_w = os.pipe()
to_child_r, to_child_w = os.pipe()
pid = os.fork()
if pid == 0:
    try:
        os.write(to_parent_w, str(spool.add("offer_display", b"{{}}", time.time(), queued=False)).encode())
        os.read(to_child_r, 1)  # the parent closed its spool
        spool.add("offer_display", b"{{}}", time.time(), queued=False)
        spool.release()
    finally:
        os._exit(0)
os.read(to_parent_r, 16)
spool.close(final=True)
os.write(to_child_w, b"x")
os.waitpid(pid, 0)
print(json.dumps(sqlite3.connect({str(path)!r}).execute("SELECT count(*) FROM events").fetchone()[0]))
"""
    )
    assert run_child(code) == 3


# -- the same promises through the recorder and the operator's command -------------------------


@pytest.mark.parametrize("value", ["", ":memory:", "file:events.db?mode=memory", "a\x00b"])
def test_the_recorder_refuses_a_spool_that_would_not_outlive_the_process(
    value: str, engine: Any, recorders: Any
) -> None:
    """Issue 14 item 5: ``EventRecorder(spool=...)`` refuses, with ``ApiValueError`` naming
    ``spool``, what SQLite would turn into a private temporary database."""
    with pytest.raises(ApiValueError, match=r"\bspool\b"):
        recorders(engine.url, spool=value)


def test_the_recorder_and_the_command_refuse_another_applications_database(
    engine: Any, recorders: Any, tmp_path: Path
) -> None:
    """Issue 14 item 20: a SQLite file of another application is refused by the recorder
    (``ApiValueError``) and by ``spool PATH [--deliver]`` (exit 2), and left byte for byte."""
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (name TEXT)")
    before = path.read_bytes()

    with pytest.raises(ApiValueError, match=r"^spool .*not a spool"):
        recorders(engine.url, spool=path)
    env = {**os.environ, "BEARER_TOKEN": "pk_test", "ENGINE_API_HOST": engine.url}
    for extra in ([], ["--deliver", "--wait", "1"]):
        command = [sys.executable, "-m", "openapi_client", "spool", str(path), *extra]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result
        assert "not a spool" in result.stderr, result.stderr

    assert path.read_bytes() == before


def test_the_recorder_leaves_rows_it_cannot_read_and_says_so_once(
    engine: Any, recorders: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14 item 3: rows of a kind this version does not know stay in the file (set aside
    for the version that wrote them), one warning says so, and the rest is delivered."""
    path = tmp_path / "events.db"
    Spool(str(path)).close(final=True)
    insert_free(path, ["offer_display", "page_view", "page_view"])
    recorder = recorders(engine.url, spool=path)

    assert recorder.flush(timeout=WAIT)

    assert len(engine.offer_displays) == 1
    assert [row[0] for row in rows_of(path, "SELECT kind FROM events")] == ["page_view"] * 2
    said = [r.getMessage() for r in caplog.records if "cannot read" in r.getMessage()]
    assert len(said) == 1, said
    assert "page_view" in said[0]


def test_a_recorder_on_a_newer_versions_spool_keeps_to_memory_and_leaves_the_file(
    engine: Any, recorders: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14 item 3 (a rolling deploy): a file written by a newer SDK is never written nor
    emptied by this one; its events are delivered from memory, one warning says why."""
    path = tmp_path / "events.db"
    make_first_release_spool(path, rows=1)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 2")
    before = path.read_bytes()
    recorder = recorders(engine.url, spool=path)

    events = [recorder.record_offer_display(offer()) for _ in range(3)]

    assert recorder.flush(timeout=WAIT)
    assert all(event.result(timeout=WAIT) for event in events)
    assert len(engine.offer_displays) == 3
    recorder.close(timeout=1.0)
    assert path.read_bytes() == before
    said = [r.getMessage() for r in caplog.records if "newer version" in r.getMessage()]
    assert len(said) == 1, said
