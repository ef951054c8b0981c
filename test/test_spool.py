"""The spool file on its own: who owns an event, when an owner counts as dead, what operators see.

Two ``Spool`` handles on one file stand for two processes' recorders; rows of the ``owners``
table are aged by hand to stand for time passing (that is the state another process would
find), so no test waits.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faultserver import FaultServers, answer

from openapi_client import ApiClient, Configuration, EventRecorder
from openapi_client.recorder._spool import LEASE_SECONDS, Spool
from openapi_client.testing import FakeEngineServer

BODY = (
    b'{"leadUuid":"f914eb07-a64f-51d8-b882-ff508a8c5c81",'
    b'"rateTableUuid":"952a1184-d369-5958-9a0f-bec903e11c48",'
    b'"offerUuid":"3426f971-1aa5-5cb0-91a9-cf2edcfa5dfa"}'
)


def age_heartbeat(path: Path, owner: str, seconds: float, host: str | None = None) -> None:
    """Make ``owner``'s last sign of life ``seconds`` old (and move it to ``host``)."""
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE owners SET heartbeat = ?, host = coalesce(?, host) WHERE owner = ?",
            (time.time() - seconds, host, owner),
        )


def test_a_busy_recorder_on_this_host_keeps_its_events(tmp_path: Path) -> None:
    """A stale heartbeat does not make a running process dead: its events are not taken."""
    path = tmp_path / "events.db"
    busy, other = Spool(str(path)), Spool(str(path))
    busy.add("offer_display", BODY, time.time(), queued=False)
    age_heartbeat(path, busy.owner, LEASE_SECONDS * 2)

    assert other.claim(10) == []
    assert [row.id for row in busy.claim(10)] == [1]


def test_a_dead_process_is_seen_by_its_pid_at_once(tmp_path: Path) -> None:
    """A recorder whose process exited without giving its events back: taken at once."""
    path = tmp_path / "events.db"
    code = (
        "import sys, time\n"
        "from openapi_client.recorder._spool import Spool\n"
        f"spool = Spool({str(path)!r})\n"
        f"spool.add('offer_display', {BODY!r}, time.time(), queued=True)\n"
        "spool.claim(0)\n"
        "import os; os._exit(0)  # no release: as after kill -9\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    survivor = Spool(str(path))

    assert survivor.summary().waiting == 1
    assert [row.id for row in survivor.claim(10)] == [1]


def test_summary_only_reads(tmp_path: Path) -> None:
    """The operator's view changes nothing in the file, not even a dead owner's events."""
    path = tmp_path / "events.db"
    holder = Spool(str(path))
    holder.add("session_init", b"{}", time.time(), queued=True)
    holder.add("offer_display", BODY, time.time(), queued=True)

    summary = Spool(str(path), register=False).summary()

    assert summary.by_kind == {"offer_display": 1, "session_init": 1}
    assert summary.owned == 2  # this process runs: its recorder is alive
    assert summary.waiting == 0
    assert summary.oldest_recorded_at is not None
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM owners").fetchone()[0] == 1


def test_a_sync_recorder_delivers_what_waits_in_the_spool(tmp_path: Path) -> None:
    """``sync=True``: ``flush()`` sends the file's leftovers in the calling thread."""
    path = tmp_path / "events.db"
    left = Spool(str(path))
    left.add("offer_display", BODY, time.time(), queued=False)
    left.release()
    with FakeEngineServer(token="pk_test_spool_sync") as fake:
        config = Configuration(host=fake.url, access_token="pk_test_spool_sync")
        with ApiClient(config) as client:
            recorder = EventRecorder(client, spool=str(path), sync=True)
            assert recorder.flush(timeout=10)
            recorder.close()
        assert len(fake.offer_displays) == 1
    assert Spool(str(path), register=False).summary().by_kind == {}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_no_connection_crosses_a_fork(tmp_path: Path) -> None:
    """SQLite's locks do not survive a fork: the child starts without the parent's connection,
    as another owner, and the parent's events stay the parent's."""
    path = tmp_path / "events.db"
    spool = Spool(str(path))
    spool.add("offer_display", BODY, time.time(), queued=True)
    parent_owner = spool.owner
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            inherited = spool._connection is not None
            ok = not inherited and spool.owner != parent_owner and spool.claim(10) == []
            os.write(write, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 2) == b"ok"
    os.waitpid(pid, 0)
    assert spool.owner == parent_owner
    assert spool.claim(10) == []  # queued by the parent: its own, still
    assert Spool(str(path), register=False).summary().owned == 1


def test_opening_an_existing_spool_waits_for_no_writer(tmp_path: Path) -> None:
    """Another process mid-write does not stop a recorder from opening the file: opening an
    existing spool only reads (a forked child opens its spool from ``record_*``, unwaiting)."""
    path = tmp_path / "events.db"
    Spool(str(path)).close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another worker's transaction, held
    try:
        reader = Spool(str(path), register=False, patience=0.0)
        assert reader.summary().by_kind == {}
    finally:
        writer.execute("COMMIT")
        writer.close()


def test_reading_a_file_that_is_not_a_spool_changes_nothing(tmp_path: Path) -> None:
    """The operator's summary refuses another application's SQLite file, and leaves it as it
    was: no tables made, the journal mode untouched."""
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE mine (x)")
    before = path.read_bytes()

    with pytest.raises(sqlite3.DatabaseError, match="not a spool"):
        Spool(str(path), register=False)

    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists()


def test_events_read_back_from_the_spool_keep_the_time_they_were_recorded(
    tmp_path: Path, servers: FaultServers
) -> None:
    """``recorded_at`` of an event taken from the spool is when ``record_*`` took it (seconds
    since the epoch), not that time counted twice."""
    path = tmp_path / "events.db"
    recorded_at = time.time() - 3600.0
    left = Spool(str(path))
    left.add("offer_display", BODY, recorded_at, queued=False)
    left.release()
    server = servers(then=answer(400, [{"message": "no", "type": "invalid"}]))
    seen: list[float] = []
    config = Configuration(host=server.url, access_token="pk_test_spool_time")
    with ApiClient(config) as client:
        on_error = lambda event, error: seen.append(event.recorded_at)  # noqa: E731
        recorder = EventRecorder(client, spool=str(path), sync=True, on_error=on_error)
        assert recorder.flush(timeout=10)
        recorder.close()
    assert seen == [pytest.approx(recorded_at, abs=0.01)]
