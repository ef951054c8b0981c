"""``EventRecorder``'s process-level promises, with real processes and real loopback servers.

Each recorder runs in a child process (``recorder_child.py``, started with ``sys.executable``
in its own session, so that a ``killpg`` ends it and whatever it forked); the servers live in
this process, which never forks. Every event carries a fresh ``offerUuid`` that the child
writes to a file once ``record_offer_display`` has returned, so the server's records can be
checked event by event: delivered exactly once, at least once after a crash, never lost.

Nothing here sleeps to synchronise: the tests wait on the children's stdout lines, on their
exit, and on the server's records. The only timing assertions are the bounded exits promised
by ``exit_timeout``.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from faultserver import FaultServer, hang, refused_url
from recorder_support import THREAD_PREFIX

from openapi_client.testing import FakeEngineServer

HELPER = str(Path(__file__).with_name("recorder_child.py"))
TOKEN = "pk_test_recorder_processes"
WORKERS = 4
RUN_SECONDS = 30.0
"""Far more than any child needs; past it the child is killed and the test fails (deadlock?)."""
EXIT_MARGIN = 1.5
"""What interpreter teardown may add to ``exit_timeout`` on a busy machine."""

pytestmark = pytest.mark.skipif(
    os.name != "posix", reason="POSIX processes: process groups, SIGKILL, flock"
)
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


# -- children ------------------------------------------------------------------------------


class Child:
    """One ``recorder_child.py`` process: its stdout read line by line, stderr to a file."""

    def __init__(self, args: list[str], stderr_path: Path) -> None:
        self.args = args
        self._stderr_path = stderr_path
        with stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, HELPER, *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
            )
        self._buffer = b""
        self.lines: list[str] = []

    def expect(self, prefix: str, timeout: float = RUN_SECONDS) -> str:
        """The rest of the next stdout line starting with ``prefix`` (earlier lines are kept)."""
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while True:
            while b"\n" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\n", 1)
                line = raw.decode()
                self.lines.append(line)
                if line.startswith(prefix):
                    return line[len(prefix) :].strip()
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, left))
            chunk = os.read(self.proc.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                self.kill()
                why = "ended" if ready else f"said nothing for {timeout} s: killed"
                raise AssertionError(
                    f"child {self.args[0]} {why} before a line {prefix!r}; "
                    f"stdout {self.lines}, stderr {self.stderr()!r}"
                )
            self._buffer += chunk

    def json_line(self, prefix: str) -> Any:
        return json.loads(self.expect(prefix + " "))

    def go(self) -> None:
        """Write a line on the child's stdin (it waits for one before its next step)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = RUN_SECONDS) -> int:
        """Its exit code; a child still running after ``timeout`` is killed and the test fails."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"child {self.args[0]} still running after {timeout} s: killed (deadlock?); "
                f"stdout {self.lines}, stderr {self.stderr()!r}"
            ) from None

    def kill(self) -> None:
        """SIGKILL the child and everything it forked (its session's process group)."""
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(RUN_SECONDS)

    def stderr(self) -> str:
        return self._stderr_path.read_text()

    def close(self) -> None:
        self.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@dataclass
class Children:
    """Starts children for one test; kills whatever is left of them afterwards."""

    tmp: Path
    started: list[Child]

    def start(self, mode: str, host: str, **options: object) -> Child:
        args = [mode, "--host", host, "--token", TOKEN, "--workers", str(WORKERS)]
        for name, value in options.items():
            flag = "--" + name.replace("_", "-")
            if value is True:
                args.append(flag)
            elif value is not None:
                args += [flag, str(value)]
        child = Child(args, self.tmp / f"stderr-{len(self.started)}.txt")
        self.started.append(child)
        return child


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    """A factory of ``recorder_child.py`` processes, none of which outlives the test."""
    made = Children(tmp_path, [])
    try:
        yield made
    finally:
        for child in made.started:
            child.close()


@pytest.fixture
def server() -> Iterator[FakeEngineServer]:
    """A ``FakeEngineServer`` that accepts only ``TOKEN``."""
    with FakeEngineServer(token=TOKEN) as engine:
        yield engine


@contextmanager
def start_together(path: Path) -> Iterator[tuple[Path, Callable[[list[Child]], None]]]:
    """A start line for children given ``barrier=path``: ``release(children)`` waits until
    each says ``ready`` and lets them all go at once (they wait for a shared ``flock`` this
    process holds exclusively until then)."""
    import fcntl  # POSIX only, as this module

    path.touch()
    with path.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        released = False

        def release(waiting: list[Child]) -> None:
            nonlocal released
            for child in waiting:
                child.expect("ready")
            fcntl.flock(held, fcntl.LOCK_UN)
            released = True

        try:
            yield path, release
        finally:
            if not released:
                fcntl.flock(held, fcntl.LOCK_UN)


# -- what the server and the spool hold ----------------------------------------------------


def read_ids(path: Path) -> list[str]:
    """The ``offerUuid``s a child recorded (``record_*`` had returned for each)."""
    return path.read_text().split() if path.exists() else []


def delivered(server: FakeEngineServer) -> Counter[str]:
    """How many times the server stored each ``offerUuid``."""
    return Counter(str(event.offer_uuid) for event in server.offer_displays)


def settle(server: FakeEngineServer) -> None:
    """Wait until every request that reached the server is finished (held ones included)."""
    arrived = len(server.requests)
    while server.wait_for_requests(arrived + 1, timeout=0, include_in_flight=True):
        arrived += 1
    assert server.wait_for_requests(arrived, timeout=RUN_SECONDS)


def spooled(path: Path) -> int:
    """Events in the spool file, whoever holds them (0 if no recorder ever made the table)."""
    db = sqlite3.connect(path, timeout=5)
    try:
        tables = db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'events'")
        if not tables.fetchone()[0]:
            return 0
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        db.close()


def assert_exactly_once(counts: Counter[str], ids: list[str]) -> None:
    """Each of ``ids`` was stored by the server once, no more, no less."""
    missing = [offer for offer in ids if counts[offer] == 0]
    twice = {offer: counts[offer] for offer in ids if counts[offer] > 1}
    assert not missing, f"{len(missing)} of {len(ids)} events never delivered"
    assert not twice, f"{len(twice)} of {len(ids)} events delivered more than once: {twice}"


def exit_seconds(child: Child) -> tuple[int, float]:
    """Exit code, and seconds from the child's ``returning`` (main returns) to its end."""
    child.expect("returning")
    returned = time.monotonic()
    code = child.finish()
    return code, time.monotonic() - returned


def leave_in_spool(children: Children, spool: Path, ids: Path, count: int) -> None:
    """Record ``count`` events into ``spool`` while the API refuses connections, and exit."""
    with refused_url() as down:
        child = children.start("exit", down, spool=spool, count=count, ids=ids, exit_timeout=0.3)
        assert child.finish() == 0, child.stderr()
    assert spooled(spool) == count


def replay(children: Children, host: str, spool: Path, **options: object) -> dict[str, Any]:
    """A new process opens ``spool``, records nothing, flushes and closes: its stats."""
    child = children.start("flush", host, spool=spool, count=0, **options)
    stats: dict[str, Any] = child.json_line("stats")
    assert child.finish() == 0, f"flush() did not finish: {stats}, {child.stderr()!r}"
    return stats


# -- 1. exit with events pending -----------------------------------------------------------


def test_events_pending_at_exit_are_delivered_before_the_process_ends(
    children: Children, server: FakeEngineServer, tmp_path: Path
) -> None:
    """A process that records and returns from main without flush or close still delivers all."""
    count = 20
    server.delay_next(0.05, times=count)
    ids = tmp_path / "ids"
    child = children.start("exit", server.url, count=count, ids=ids, exit_timeout=10.0)

    code = child.finish()

    assert code == 0, child.stderr()
    assert len(read_ids(ids)) == count
    assert_exactly_once(delivered(server), read_ids(ids))
    assert child.stderr() == ""


# -- 2. exit during an outage, with a spool ------------------------------------------------


@pytest.mark.parametrize("outage", ["refused", "hanging"])
def test_exit_during_an_outage_is_bounded_keeps_the_events_and_a_new_process_replays_them(
    children: Children, server: FakeEngineServer, tmp_path: Path, outage: str
) -> None:
    """Exit within exit_timeout with the API down; the spool keeps all; a later process sends each once."""
    count, exit_timeout = 20, 1.0
    spool, ids = tmp_path / "spool.db", tmp_path / "ids"
    down: AbstractContextManager[Any] = (
        refused_url() if outage == "refused" else FaultServer(then=hang())
    )
    with down as api:
        url = api if isinstance(api, str) else api.url
        child = children.start(
            "exit", url, spool=spool, count=count, ids=ids, exit_timeout=exit_timeout
        )
        code, seconds = exit_seconds(child)

    assert code == 0, child.stderr()
    assert seconds < exit_timeout + EXIT_MARGIN, f"exit took {seconds:.2f} s"
    assert len(read_ids(ids)) == count
    assert spooled(spool) == count

    stats = replay(children, server.url, spool)

    assert_exactly_once(delivered(server), read_ids(ids))
    assert len(server.offer_displays) == count
    assert stats["sent"] == count
    assert spooled(spool) == 0


# -- 3. exit without a spool while the API hangs -------------------------------------------


@dataclass(frozen=True)
class HungExit:
    count: int
    exit_timeout: float
    code: int
    seconds: float
    stderr: str


@pytest.fixture(scope="module")
def hung_exit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HungExit]:
    """A child that records 13 events without a spool against an API that never answers, and
    returns from main (13: neither a multiple of the 4 workers nor one of their counts)."""
    count, exit_timeout = 13, 1.0
    made = Children(tmp_path_factory.mktemp("hung"), [])
    try:
        with FaultServer(then=hang()) as api:
            child = made.start("exit", api.url, count=count, exit_timeout=exit_timeout)
            code, seconds = exit_seconds(child)
        yield HungExit(count, exit_timeout, code, seconds, child.stderr())
    finally:
        for child in made.started:
            child.close()


def test_exit_without_a_spool_while_the_api_hangs_is_bounded(hung_exit: HungExit) -> None:
    """A hanging API does not hold the process past exit_timeout (and exit stays clean)."""
    assert hung_exit.code == 0, hung_exit.stderr
    assert hung_exit.seconds < hung_exit.exit_timeout + EXIT_MARGIN, (
        f"exit took {hung_exit.seconds:.2f} s"
    )
    assert "Traceback" not in hung_exit.stderr, hung_exit.stderr


def test_exit_without_a_spool_while_the_api_hangs_warns_how_many_events_were_lost(
    hung_exit: HungExit,
) -> None:
    """The warning at exit states the number of events lost: all 13, none was acknowledged."""
    warnings = [line for line in hung_exit.stderr.splitlines() if "EventRecorder" in line]
    assert warnings, f"no warning on stderr: {hung_exit.stderr!r}"
    stated = [line for line in warnings if re.search(rf"\b{hung_exit.count}\b[^0-9]*event", line)]
    assert stated, (
        f"no warning says {hung_exit.count} events were lost (none was acknowledged); "
        f"stderr: {warnings}"
    )


# -- 4. kill -9 with a spool ---------------------------------------------------------------


@pytest.mark.parametrize("moment", ["none-answered", "right-after-recording", "half-delivered"])
def test_kill_9_loses_no_recorded_event_and_resends_at_most_the_ones_in_flight(
    children: Children, server: FakeEngineServer, tmp_path: Path, moment: str
) -> None:
    """SIGKILL mid-delivery, then a new process on the spool: every recorded event arrives,
    at most ``workers`` of them twice."""
    count = 40
    spool, ids = tmp_path / "spool.db", tmp_path / "ids"
    if moment == "none-answered":
        server.delay_next(1.0, times=WORKERS)  # the first sends are all held
    server.delay_next(0.03, times=count)
    child = children.start("hang", server.url, spool=spool, count=count, ids=ids)
    child.expect("recorded")
    if moment == "none-answered":
        assert server.wait_for_requests(WORKERS, timeout=RUN_SECONDS, include_in_flight=True)
        assert not server.requests
    elif moment == "half-delivered":
        assert server.wait_for_requests(count // 2, timeout=RUN_SECONDS)
    child.kill()
    recorded = read_ids(ids)
    assert len(recorded) == count

    replay(children, server.url, spool)
    settle(server)

    counts = delivered(server)
    missing = [offer for offer in recorded if counts[offer] == 0]
    assert not missing, f"{len(missing)} of {count} recorded events lost after kill -9"
    resent = sum(counts[offer] - 1 for offer in recorded)
    assert resent <= WORKERS, f"{resent} events sent twice, more than the {WORKERS} in flight"
    assert spooled(spool) == 0


# -- 5. fork while the workers are sending -------------------------------------------------


@needs_fork
@pytest.mark.parametrize("with_spool", [False, True], ids=["memory", "spool"])
def test_fork_while_workers_send_each_process_delivers_its_own_events_exactly_once(
    children: Children, server: FakeEngineServer, tmp_path: Path, with_spool: bool
) -> None:
    """Forking mid-delivery: no deadlock, the child sends only its events, each event once."""
    parent_count, child_count = 20, 10
    spool = tmp_path / "spool.db" if with_spool else None
    parent_ids, child_ids = tmp_path / "parent", tmp_path / "child"
    parent_lead, child_lead = str(uuid.uuid4()), str(uuid.uuid4())
    server.delay_next(0.1, times=parent_count)
    helper = children.start(
        "fork", server.url, spool=spool, count=parent_count, ids=parent_ids, lead=parent_lead,
        child_count=child_count, child_ids=child_ids, child_lead=child_lead,
    )  # fmt: skip
    helper.expect("recorded")
    assert server.wait_for_requests(WORKERS, timeout=RUN_SECONDS, include_in_flight=True)
    helper.go()  # fork now: every worker is waiting for an answer

    code = helper.finish()

    child_stats = helper.json_line("child-stats")
    assert code == 0, f"{helper.lines}, {helper.stderr()!r}"
    assert helper.stderr() == ""
    counts = delivered(server)
    assert_exactly_once(counts, read_ids(parent_ids))
    assert_exactly_once(counts, read_ids(child_ids))
    assert len(server.offer_displays) == parent_count + child_count
    assert child_stats["sent"] == child_count
    sent_by_child = [
        request.event
        for request in server.requests
        if request.event is not None
        and str(getattr(request.event, "lead_uuid", "")) == parent_lead
        and request.headers.get("X-Sender", "").startswith("child")
    ]
    assert not sent_by_child, f"the child sent {len(sent_by_child)} of the parent's events"
    if spool is not None:
        assert spooled(spool) == 0


@needs_fork
def test_forked_child_keeps_its_spooled_events_through_a_crash_after_the_parent_exits(
    children: Children, server: FakeEngineServer, tmp_path: Path
) -> None:
    """A child forked from a process that had the spool open, outliving it: its recorded
    events survive its kill -9, even when another process read the spool meanwhile."""
    child_count = 10
    spool, child_ids = tmp_path / "spool.db", tmp_path / "child"
    helper = children.start(
        "fork-parent-exits", server.url, spool=spool, count=5, child_count=child_count,
        child_ids=child_ids,
    )  # fmt: skip
    assert helper.expect("flushed") == "True"
    assert helper.finish() == 0, helper.stderr()  # the parent is gone; its child runs on
    server.fail_next(503, times=100_000)  # the API is down: the child's events stay spooled
    helper.go()
    helper.expect("recorded-1")
    assert spooled(spool) == child_count  # a reader (an operator, `... spool PATH`) looks
    helper.go()
    helper.expect("recorded-2")
    helper.kill()
    recorded = read_ids(child_ids)
    assert len(recorded) == 2 * child_count

    with FakeEngineServer(token=TOKEN) as healthy:
        replay(children, healthy.url, spool)
        counts = delivered(healthy)

    missing = [offer for offer in recorded if counts[offer] == 0]
    assert not missing, (
        f"{len(missing)} of {len(recorded)} events the child recorded were lost after its kill -9"
    )


# -- 6 and 7. processes sharing one spool --------------------------------------------------


@pytest.mark.parametrize("max_queue", [10_000, 8], ids=["in-memory", "through-the-spool"])
def test_three_processes_sharing_a_spool_deliver_every_event_exactly_once(
    children: Children, server: FakeEngineServer, tmp_path: Path, max_queue: int
) -> None:
    """Three processes record at once on one new spool: each event sent once, no error anywhere."""
    count = 30
    spool = tmp_path / "spool.db"
    with start_together(tmp_path / "barrier") as (barrier, release):
        procs = [
            children.start(
                "flush",
                server.url,
                spool=spool,
                count=count,
                ids=tmp_path / f"ids-{n}",
                max_queue=max_queue,
                barrier=barrier,
            )
            for n in range(3)
        ]
        release(procs)

    codes = [proc.finish() for proc in procs]

    stderr = "".join(proc.stderr() for proc in procs)
    assert codes == [0, 0, 0], stderr
    ids = [offer for n in range(3) for offer in read_ids(tmp_path / f"ids-{n}")]
    assert len(ids) == 3 * count
    assert_exactly_once(delivered(server), ids)
    assert len(server.offer_displays) == 3 * count
    assert spooled(spool) == 0
    assert stderr == "", stderr


def test_a_spool_locked_when_first_opened_still_keeps_the_events_recorded_once_it_is_free(
    children: Children, tmp_path: Path
) -> None:
    """A new spool another process holds locked at the first event (as when several processes
    create it at once) is not given up for good: later events are committed to it."""
    count = 5
    spool, ids = tmp_path / "spool.db", tmp_path / "ids"
    with refused_url() as down:
        other = sqlite3.connect(spool, isolation_level=None)
        try:
            other.execute("BEGIN")  # a read transaction: the new file cannot switch to WAL
            other.execute("SELECT count(*) FROM sqlite_master").fetchall()
            child = children.start("hang", down, spool=spool, count=count, ids=ids, rounds=2)
            child.expect("recorded")  # after the busy timeout, kept in memory: acceptable
        finally:
            other.execute("COMMIT")
            other.close()
        child.go()  # the spool is free now
        child.expect("recorded")
        child.kill()
    second_round = read_ids(ids)[count:]

    assert len(second_round) == count
    assert spooled(spool) >= count, (
        f"{count} events recorded after the spool was free, {spooled(spool)} in it "
        f"after kill -9: lost; stderr: {child.stderr()!r}"
    )


def test_a_live_process_takes_over_the_spooled_events_of_one_killed_beside_it(
    children: Children, server: FakeEngineServer, tmp_path: Path
) -> None:
    """Two processes on one spool; one is killed with its events unsent: the other, running
    all along, delivers them with its own, each exactly once."""
    count = 20
    spool, dead_ids, live_ids = tmp_path / "spool.db", tmp_path / "dead", tmp_path / "live"
    with refused_url() as down:
        dying = children.start("hang", down, spool=spool, count=count, ids=dead_ids)
        dying.expect("recorded")
        living = children.start("flush", server.url, spool=spool, count=5, ids=live_ids, rounds=2)
        living.expect("recorded")  # its spool is open, its workers run
        dying.kill()
    living.go()

    stats = living.json_line("stats")
    assert living.finish() == 0, living.stderr()

    assert_exactly_once(delivered(server), read_ids(dead_ids) + read_ids(live_ids))
    assert len(server.offer_displays) == count + 10
    assert stats["sent"] == count + 10
    assert living.stderr() == ""
    assert spooled(spool) == 0


def test_two_processes_replaying_one_spool_at_once_deliver_each_event_exactly_once(
    children: Children, server: FakeEngineServer, tmp_path: Path
) -> None:
    """Events left in a spool, two processes flush it at the same time: each event sent once."""
    count = 40
    spool, ids = tmp_path / "spool.db", tmp_path / "ids"
    leave_in_spool(children, spool, ids, count)
    with start_together(tmp_path / "barrier") as (barrier, release):
        replayers = [
            children.start("flush", server.url, spool=spool, count=0, max_queue=4, barrier=barrier)
            for _ in range(2)
        ]
        release(replayers)

    sent = 0
    for proc in replayers:
        sent += proc.json_line("stats")["sent"]
        assert proc.finish() == 0, proc.stderr()
        assert proc.stderr() == "", proc.stderr()

    assert_exactly_once(delivered(server), read_ids(ids))
    assert len(server.offer_displays) == count
    assert sent == count
    assert spooled(spool) == 0


# -- 8. no thread before the first event ---------------------------------------------------


@needs_fork
@pytest.mark.parametrize("with_spool", [False, True], ids=["memory", "spool"])
def test_a_recorder_that_records_nothing_starts_no_thread_and_its_forked_child_delivers(
    children: Children, server: FakeEngineServer, tmp_path: Path, with_spool: bool
) -> None:
    """Like a gunicorn master: no worker thread before the first event; a forked child records."""
    child_count = 10
    spool = tmp_path / "spool.db" if with_spool else None
    child_ids = tmp_path / "child"
    helper = children.start(
        "idle-fork", server.url, spool=spool, child_count=child_count, child_ids=child_ids
    )

    assert helper.json_line("threads") == []
    assert helper.json_line("threads-after-fork") == []
    child_threads = helper.json_line("child-threads")
    child_stats = helper.json_line("child-stats")
    assert helper.expect("child-exit") == "0", helper.stderr()
    assert helper.json_line("threads-at-end") == []
    assert helper.finish() == 0, helper.stderr()

    assert f"{THREAD_PREFIX}0" in child_threads  # the child's own senders, numbered afresh
    assert set(child_threads) <= {f"{THREAD_PREFIX}{n}" for n in range(WORKERS)}
    assert child_stats["sent"] == child_count
    assert_exactly_once(delivered(server), read_ids(child_ids))
    assert len(server.offer_displays) == child_count
    assert helper.stderr() == ""


# -- 9. the operator's command -------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openapi_client", *args],
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )


def test_spool_command_shows_what_is_left_and_delivers_it(
    children: Children, server: FakeEngineServer, tmp_path: Path
) -> None:
    """``python -m openapi_client spool PATH`` counts by kind with the oldest age; --deliver sends."""
    if " spool " not in _cli("--help").stdout.replace("\n", " "):
        pytest.skip("python -m openapi_client has no spool command")
    count = 12
    spool, ids = tmp_path / "spool.db", tmp_path / "ids"
    leave_in_spool(children, spool, ids, count)

    shown = _cli("spool", str(spool))
    assert shown.returncode == 0, shown.stderr
    assert re.search(rf"offer_display\D*\b{count}\b", shown.stdout), shown.stdout
    assert "oldest" in shown.stdout, shown.stdout

    sent = _cli("spool", str(spool), "--deliver", "--host", server.url, "--token", TOKEN)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert_exactly_once(delivered(server), read_ids(ids))
    assert len(server.offer_displays) == count

    after = _cli("spool", str(spool))
    assert after.returncode == 0, after.stderr
    assert re.search(r"\b0 event", after.stdout), after.stdout
