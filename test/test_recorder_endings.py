"""How an ``EventRecorder``'s events and threads end in the awkward cases (issue 14): ``flush``
and ``close`` called from the recorder's own threads, a credential the API refuses, waiters
that give up, recorders dropped without ``close``, threads that cannot start, workers killed
mid-send, ``close`` racing ``record_*``, idle recorders on a spool others left events in, and
what is said about loss at exit.

Public behaviour only: the recorder's methods, ``stats()``, futures, ``on_error``, logs, thread
names, the rows of the spool file (read with ``sqlite3``) and what loopback servers received.
Processes are real (``sys.executable``; the child imports the same ``openapi_client`` as this
process), and so is the peer that locks a spool (the ``sqlite3`` shell).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import gc
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from faultserver import (
    FaultServer,
    FaultServers,
    answer,
    created_for_path,
    hang,
    held,
    refused_url,
)
from recorder_support import (
    THREAD_PREFIX,
    TOKEN,
    WAIT,
    Recorders,
    offer,
    offer_uuids,
    offer_uuids_received,
    recorder_threads,
    wait_until,
)
from sqlite_shell import needs_shell, shell_lock

import openapi_client
from openapi_client import EventRecorder
from openapi_client.exceptions import (
    ForbiddenException,
    OpenApiException,
    RecorderClosedError,
    RecorderError,
    RecorderSpooledError,
    UnauthorizedException,
)
from openapi_client.models import OfferDisplay
from openapi_client.recorder import RecordedEvent
from openapi_client.testing import FakeEngineServer

CHILD_SECONDS = 30.0
"""Far more than any child process here needs; past it the child is killed and the test fails."""
HELPER = str(Path(__file__).with_name("recorder_child.py"))
PACKAGE_ROOT = str(Path(openapi_client.__file__).resolve().parents[1])
"""Where this process found ``openapi_client``: child processes import the same one."""

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX processes and select() on pipes")


# -- helpers ---------------------------------------------------------------------------------------


def spool_rows(path: Path) -> list[dict[str, Any]]:
    """The bodies (JSON, as sent) of the events in the spool file, whoever holds them."""
    db = sqlite3.connect(path, timeout=5)
    try:
        if not db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'events'").fetchone()[0]:
            return []
        bodies = [row[0] for row in db.execute("SELECT body FROM events")]
    finally:
        db.close()
    return [json.loads(body) for body in bodies]


def spooled_offer_uuids(path: Path) -> collections.Counter[str]:
    return collections.Counter(body["offerUuid"] for body in spool_rows(path))


def delivered(engine: FakeEngineServer) -> collections.Counter[str]:
    """How many times the fake Engine stored each ``offerUuid``."""
    return collections.Counter(str(display.offer_uuid) for display in engine.offer_displays)


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this process's ``openapi_client`` first on its path,
    no API host or token from the outer environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("ENGINE_API_HOST", "BEARER_TOKEN")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def run_child(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` to its end (killed, and the test failed, after ``CHILD_SECONDS``)."""
    try:
        return subprocess.run(
            [sys.executable, *args],
            capture_output=True,
            text=True,
            timeout=CHILD_SECONDS,
            check=False,
            cwd=cwd,
            env=child_env(**env),
        )
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(
            f"child {args[:2]} still running after {CHILD_SECONDS} s: killed (wedged?); "
            f"stdout {expired.stdout!r}, stderr {expired.stderr!r}"
        ) from None


def leave_in_spool(spool: Path, tmp_path: Path, count: int) -> list[str]:
    """A process records ``count`` events into ``spool`` while the API refuses connections and
    exits (so it is gone): the events wait in the file. Returns their ``offerUuid``s."""
    ids = tmp_path / f"ids-{uuid.uuid4().hex}"
    with refused_url() as down:
        child = run_child(
            [HELPER, "exit", "--host", down, "--token", TOKEN, "--spool", str(spool),
             "--count", str(count), "--ids", str(ids), "--exit-timeout", "0.3"],
            tmp_path,
        )  # fmt: skip
    assert child.returncode == 0, child.stderr
    recorded = ids.read_text().split()
    assert len(recorded) == count
    assert spooled_offer_uuids(spool) == collections.Counter(recorded)
    return recorded


# -- item 2: flush() and close() from the recorder's own threads -----------------------------------

REENTRY_TIMEOUT = 4.0
"""The timeout given to flush()/close() called from a callback: raising at once must not wait it."""


@pytest.mark.parametrize("call", ["flush", "close"])
@pytest.mark.parametrize("inside", ["on_error", "done_callback"])
def test_flush_or_close_from_the_recorders_own_thread_raises_at_once_and_every_event_ends(
    servers: FaultServers,
    recorders: Recorders,
    release: threading.Event,
    inside: str,
    call: str,
) -> None:
    """Issue 14 item 2: ``flush()``/``close()`` called inside ``on_error`` (a 400 answer) or
    inside a done-callback that a worker runs raise RecorderError at once (not a RuntimeError,
    no wait for their timeout); every other queued event still ends: after the main thread's
    own flush and close every future is done and nothing is pending."""
    first_answer = (
        answer(400, [{"message": "refused"}]) if inside == "on_error" else created_for_path()
    )
    server = servers(held(release, first_answer), then=created_for_path())
    raised: list[object] = []
    seconds: list[float] = []
    threads: list[str] = []

    def reenter() -> None:
        threads.append(threading.current_thread().name)
        started = time.monotonic()
        try:
            getattr(recorder, call)(timeout=REENTRY_TIMEOUT)
        except BaseException as error:
            raised.append(error)
        else:
            raised.append(f"{call}() returned instead of raising")
        seconds.append(time.monotonic() - started)

    def on_error(event: RecordedEvent[Any, Any], error: OpenApiException) -> None:
        if event is first:
            reenter()

    recorder = recorders(server.url, workers=2, on_error=on_error if inside == "on_error" else None)
    first = recorder.record_offer_display(offer())
    assert server.wait_for_attempts(1, timeout=WAIT)  # held by the server: not done yet
    if inside == "done_callback":
        first.add_done_callback(lambda _: reenter())
    others = [recorder.record_offer_display(offer()) for _ in range(10)]

    release.set()

    wait_until(lambda: bool(seconds), timeout=WAIT + REENTRY_TIMEOUT)
    assert threads[0].startswith(THREAD_PREFIX), threads  # it did run in a worker
    assert isinstance(raised[0], RecorderError), (
        f"{call}() inside {inside} gave {raised[0]!r}, not a RecorderError"
    )
    assert seconds[0] < REENTRY_TIMEOUT, f"{call}() waited {seconds[0]:.1f} s before raising"

    recorder.flush(timeout=WAIT)
    recorder.close(timeout=WAIT)

    _, not_done = concurrent.futures.wait([first, *others], timeout=WAIT)
    assert not not_done, f"{len(not_done)} of {1 + len(others)} events never ended"
    stats = recorder.stats()
    assert stats.pending == 0, stats
    assert stats.enqueued == stats.sent + stats.failed + stats.dropped + stats.pending, stats


# -- item 4: a credential the API refuses ----------------------------------------------------------

_CREDENTIAL_WORDS = re.compile(r"credential|token|unauthori[sz]ed|forbidden|\b40[13]\b", re.I)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_credential_keeps_spooled_events_until_a_good_token_delivers_them(
    servers: FaultServers,
    recorders: Recorders,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    status: int,
) -> None:
    """Issue 14 item 4: with a spool, a 401/403 fails no event: the rows stay in the file, the
    events stay pending, a warning names the credential problem; a later recorder with a
    token the API accepts delivers each of them exactly once."""
    caplog.set_level(logging.WARNING, logger="openapi_client")
    spool = tmp_path / "spool.db"
    refusing = servers(then=answer(status, [{"message": "Access token is invalid"}]))
    first = recorders(refusing.url, spool=spool)
    events = [first.record_offer_display(offer()) for _ in range(3)]

    def warned() -> bool:
        return any(
            r.levelno >= logging.WARNING and _CREDENTIAL_WORDS.search(r.getMessage())
            for r in caplog.records
        )

    assert refusing.wait_for_attempts(1, timeout=WAIT)
    wait_until(lambda: warned() or any(event.done() for event in events))

    failed = {
        event.request.offer_uuid: event.exception(timeout=0)
        for event in events
        if event.done() and event.exception(timeout=0) is not None
    }
    assert not failed, f"events failed on a {status} although the spool keeps them: {failed}"
    assert warned(), f"no warning names the credential problem: {caplog.messages}"
    stats = first.stats()
    assert (stats.failed, stats.pending) == (0, 3), stats
    # On disk now, or moments later: record_* never waits for the file, so an event recorded
    # while this process's own sender held it is written by the sender.
    wait_until(lambda: spooled_offer_uuids(spool) == offer_uuids(events))

    first.close(timeout=0.5)

    for event in events:
        error = event.exception(timeout=WAIT)
        assert isinstance(error, RecorderSpooledError), repr(error)
    assert spooled_offer_uuids(spool) == offer_uuids(events)

    with FakeEngineServer(token=TOKEN) as engine:
        second = recorders(engine.url, spool=spool)
        assert second.flush(timeout=WAIT)
        assert delivered(engine) == offer_uuids(events)
    assert spool_rows(spool) == []


@pytest.mark.parametrize(
    ("status", "error_class"), [(401, UnauthorizedException), (403, ForbiddenException)]
)
def test_without_a_spool_a_refused_credential_fails_the_event(
    servers: FaultServers, recorders: Recorders, status: int, error_class: type[Exception]
) -> None:
    """Issue 14 item 4 (regression guard): without a spool a 401/403 fails the event with
    UnauthorizedException/ForbiddenException, as before."""
    server = servers(then=answer(status, [{"message": "Access token is invalid"}]))
    recorder = recorders(server.url)

    event = recorder.record_offer_display(offer())

    assert isinstance(event.exception(timeout=WAIT), error_class)
    assert recorder.stats().failed == 1


def _spool_cli(
    path: Path, host: str, token: str, cwd: Path, wait: float
) -> subprocess.CompletedProcess[str]:
    args = ["spool", str(path), "--deliver", "--wait", str(wait), "--host", host]
    return run_child(["-m", "openapi_client", *args], cwd, BEARER_TOKEN=token)


def test_spool_deliver_with_a_stale_token_deletes_nothing_and_a_good_token_delivers_all(
    recorders: Recorders, tmp_path: Path
) -> None:
    """Issue 14 item 4: ``spool PATH --deliver`` with a token the API refuses deletes nothing,
    exits non-zero and says the credential was refused; with the right token ($BEARER_TOKEN)
    it delivers every event exactly once."""
    spool = tmp_path / "spool.db"
    with refused_url() as down:
        left = recorders(down, spool=spool)
        events = [left.record_offer_display(offer()) for _ in range(4)]
        left.close(timeout=0.3)
    assert spooled_offer_uuids(spool) == offer_uuids(events)

    with FakeEngineServer(token=TOKEN) as engine:
        stale = _spool_cli(spool, engine.url, "pk_test_stale", tmp_path, wait=2)

        assert spooled_offer_uuids(spool) == offer_uuids(events), (
            f"events deleted after the API refused the token: {stale.stdout!r} {stale.stderr!r}"
        )
        assert stale.returncode != 0
        assert _CREDENTIAL_WORDS.search(stale.stdout + stale.stderr), (stale.stdout, stale.stderr)
        assert engine.offer_displays == []

        good = _spool_cli(spool, engine.url, TOKEN, tmp_path, wait=WAIT)

        assert good.returncode == 0, (good.stdout, good.stderr)
        assert delivered(engine) == offer_uuids(events)
    assert spool_rows(spool) == []


# -- item 6: cancel() and waiters that give up -----------------------------------------------------


@pytest.mark.parametrize("with_spool", [False, True], ids=["memory", "spool"])
def test_cancel_returns_false_for_every_recorded_event_and_each_is_sent(
    servers: FaultServers,
    recorders: Recorders,
    release: threading.Event,
    tmp_path: Path,
    with_spool: bool,
) -> None:
    """Issue 14 item 6: ``cancel()`` is False for an event being sent, one queued in memory and
    (with a spool) one waiting on disk: none is cancelled, each is delivered once."""
    server = servers(held(release, created_for_path()), then=created_for_path())
    options: dict[str, Any] = {"spool": tmp_path / "spool.db", "max_queue": 1} if with_spool else {}
    recorder = recorders(server.url, workers=1, **options)
    sending = recorder.record_offer_display(offer())
    assert server.wait_for_attempts(1, timeout=WAIT)
    waiting = [recorder.record_offer_display(offer()) for _ in range(3)]

    refused = {event.request.offer_uuid: event.cancel() for event in [sending, *waiting]}

    assert not any(refused.values()), f"cancel() said True: {refused}"
    release.set()
    assert recorder.flush(timeout=WAIT)
    for event in [sending, *waiting]:
        assert not event.cancelled()
        assert isinstance(event.result(timeout=0), OfferDisplay)
    assert offer_uuids_received(server) == offer_uuids([sending, *waiting])


@pytest.mark.parametrize("with_spool", [False, True], ids=["memory", "spool"])
def test_an_asyncio_waiter_that_times_out_never_unrecords_the_event(
    servers: FaultServers, recorders: Recorders, tmp_path: Path, with_spool: bool
) -> None:
    """Issue 14 item 6: ``asyncio.wait_for(asyncio.wrap_future(event), 0.05)`` timing out (the
    server holds the request before it) does not un-record the event: it is still sent once
    the server lets go, and with a spool its row is still in the file when it is sent."""
    first_go, second_go = threading.Event(), threading.Event()
    server = servers(
        held(first_go, created_for_path()),
        held(second_go, created_for_path()),
        then=created_for_path(),
    )
    spool = tmp_path / "spool.db"
    try:
        recorder = recorders(server.url, workers=1, spool=spool if with_spool else None)
        blocking = recorder.record_offer_display(offer())
        assert server.wait_for_attempts(1, timeout=WAIT)
        event = recorder.record_offer_display(offer())

        async def wait_briefly() -> None:
            await asyncio.wait_for(asyncio.wrap_future(event), 0.05)

        with pytest.raises(asyncio.TimeoutError):  # TimeoutError itself from 3.11 on
            asyncio.run(wait_briefly())
        assert not event.cancelled()

        first_go.set()
        assert server.wait_for_attempts(2, timeout=WAIT), "the event was never sent"
        if with_spool:
            assert spooled_offer_uuids(spool)[event.request.offer_uuid] == 1, (
                "the event's row left the spool before the API acknowledged it"
            )
        second_go.set()

        assert isinstance(event.result(timeout=WAIT), OfferDisplay)
        assert isinstance(blocking.result(timeout=WAIT), OfferDisplay)
        assert offer_uuids_received(server) == offer_uuids([blocking, event])
    finally:
        first_go.set()
        second_go.set()


# -- item 10: recorders dropped without close() ----------------------------------------------------


@pytest.mark.slow
def test_recorders_dropped_without_close_deliver_and_end_their_threads(
    engine: FakeEngineServer,
) -> None:
    """Issue 14 item 10: 50 memory-only recorders, one event each, dropped without ``close()``
    and garbage collected: every event reaches the server and the recorders' worker threads
    end (their count falls back to what it was before)."""
    before = len(recorder_threads())
    events: list[RecordedEvent[Any, Any]] = []
    with engine.client(access_token=TOKEN) as client:
        for _ in range(50):
            recorder = EventRecorder(client, workers=2)
            events.append(recorder.record_offer_display(offer()))
            del recorder
        gc.collect()

        engine.wait_for_events("offer_display", 50, timeout=CHILD_SECONDS)
        assert delivered(engine) == offer_uuids(events)
        for event in events:
            assert isinstance(event.result(timeout=WAIT), OfferDisplay)
        del events, event  # nothing of the recorders is left to keep them alive
        gc.collect()
        try:
            wait_until(lambda: len(recorder_threads()) <= before, timeout=CHILD_SECONDS)
        except AssertionError:
            left = sorted(t.name for t in recorder_threads())
            raise AssertionError(
                f"{len(left) - before} worker threads of dropped recorders still run "
                f"{CHILD_SECONDS} s later"
            ) from None


# -- item 11: worker threads that cannot start -----------------------------------------------------

_NO_THREADS_CHILD = r"""
import atexit, json, os, sys, threading, time

from openapi_client import ApiClient, Configuration, EventRecorder, RetryPolicy
from openapi_client.exceptions import RecorderError

mode, host, token, lead, rate_table, offer_uuid = sys.argv[1:7]
events = []


def say(**fields):
    os.write(1, (json.dumps(fields) + "\n").encode())


def describe(error):
    if error is None:
        return None
    return {"type": type(error).__name__, "recorder_error": isinstance(error, RecorderError),
            "repr": repr(error)}


def report_at_the_very_end():
    for event in events:
        done = event.done()
        error = None
        if done:
            error = event.exception(timeout=0) if not event.cancelled() else RuntimeError("cancelled")
        say(step="final", done=done, error=describe(error))


atexit.register(report_at_the_very_end)  # registered before the recorder's: runs after it
client = ApiClient(Configuration(host=host, access_token=token,
                                 retries=RetryPolicy(initial_backoff=0.01, max_backoff=0.05)))
recorder = EventRecorder(client, exit_timeout=2.0)


def record(close):
    def refuse(self):  # what 3.12+ says at interpreter shutdown (or a thread limit)
        raise RuntimeError("can't create new thread at interpreter shutdown")

    threading.Thread.start = refuse
    try:
        events.append(recorder.record_offer_display(
            {"leadUuid": lead, "rateTableUuid": rate_table, "offerUuid": offer_uuid}))
        say(step="recorded", error=None)
    except BaseException as error:
        say(step="recorded", error=describe(error))
    if close:
        started = time.monotonic()
        try:
            recorder.close(timeout=2.0)
            say(step="closed", error=None, seconds=time.monotonic() - started)
        except BaseException as error:
            say(step="closed", error=describe(error), seconds=time.monotonic() - started)


if mode == "main":
    record(close=True)
else:  # registered after the recorder's exit handler: runs before it
    atexit.register(record, close=(mode == "atexit-close"))
say(step="returning")
"""
CLOSE_BOUND = 2.0 + 3.0
"""close(timeout=2.0) plus what a busy machine may add."""


@posix_only
@pytest.mark.parametrize("mode", ["main", "atexit-close", "atexit"])
def test_a_worker_thread_that_cannot_start_never_raises_foreign_errors_nor_wedges(
    engine: FakeEngineServer, tmp_path: Path, mode: str
) -> None:
    """Issue 14 item 11: ``threading.Thread.start`` refuses (as at interpreter shutdown on
    3.12+, or at a thread limit) when the first event is recorded: from main then ``close()``,
    from an exit handler that runs before the recorder's (then ``close()``, or not):
    ``record_*`` raises at most a RecorderError, ``close()`` returns without raising, nothing
    on stderr about joining a thread never started, and the event is delivered or its future
    failed with a RecorderError, never left pending."""
    body = offer()
    child = run_child(
        ["-c", _NO_THREADS_CHILD, mode, engine.url, TOKEN,
         body["leadUuid"], body["rateTableUuid"], body["offerUuid"]],
        tmp_path,
    )  # fmt: skip

    steps = [json.loads(line) for line in child.stdout.splitlines() if line.startswith("{")]
    by_step = {step["step"]: step for step in steps}
    context = f"stdout {child.stdout!r}, stderr {child.stderr!r}"
    assert child.returncode == 0, context
    assert "cannot join thread before it is started" not in child.stderr, context
    assert "Traceback" not in child.stderr, context
    recorded = by_step["recorded"]["error"]
    assert recorded is None or recorded["recorder_error"], f"record_* raised {recorded}; {context}"
    if mode != "atexit":
        closed = by_step["closed"]
        assert closed["error"] is None, f"close() raised {closed['error']}; {context}"
        assert closed["seconds"] < CLOSE_BOUND, context
    if recorded is None:
        final = by_step.get("final")
        assert final is not None, f"no report at the end; {context}"
        assert final["done"], f"the event was left pending; {context}"
        if final["error"] is None:
            assert delivered(engine)[body["offerUuid"]] == 1, context
        else:
            assert final["error"]["recorder_error"], f"the event failed with {final['error']}"


# -- item 12: a worker killed while it holds the delivery gate's probe -----------------------------


class WorkerKilled(BaseException):
    """What a greenlet kill or a ``SystemExit`` raised in user code looks like to a worker."""


class _KillTheNextSend(logging.Handler):
    """Once armed, raises ``WorkerKilled`` in the next recorder worker that logs an HTTP request
    (the client logs it at DEBUG just before sending, inside the recorder's delivery gate)."""

    def __init__(self, server: FaultServer) -> None:
        super().__init__(logging.DEBUG)
        self.armed = threading.Event()
        self.fired = threading.Event()
        self.attempts_before = -1
        self._server = server

    def emit(self, record: logging.LogRecord) -> None:
        if (
            self.armed.is_set()
            and not self.fired.is_set()
            and threading.current_thread().name.startswith(THREAD_PREFIX)
            and record.getMessage().startswith("HTTP request")
        ):
            self.attempts_before = self._server.attempts
            self.fired.set()
            raise WorkerKilled("killed mid-send")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_worker_killed_while_probing_does_not_keep_the_gate_shut(
    servers: FaultServers, recorders: Recorders, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14 item 12: the API answers 503 (the delivery gate closes, one probe at a time);
    the worker sending the probe dies of a BaseException before the probe's outcome: events
    recorded afterwards are still delivered by the other worker once the API is healthy
    (the gate is not left "probing" forever)."""
    unhealthy = 5
    server = servers(*[answer(503) for _ in range(unhealthy)], then=created_for_path())
    killer = _KillTheNextSend(server)
    caplog.set_level(logging.DEBUG, logger="openapi_client")
    logging.getLogger("openapi_client").addHandler(killer)  # removed after the test (conftest)
    recorder = recorders(server.url, workers=2)
    recorder.record_offer_display(offer())

    wait_until(lambda: recorder.stats().retried >= 1)  # a 503 came back: the gate is shut
    killer.armed.set()
    assert killer.fired.wait(WAIT), "no recorder worker sent again after the 503"
    assert killer.attempts_before < unhealthy, "the gate had reopened: the kill proves nothing"
    later = [recorder.record_offer_display(offer()) for _ in range(3)]

    _, not_sent = concurrent.futures.wait(later, timeout=WAIT)
    assert not not_sent, (
        f"{len(not_sent)} of {len(later)} events recorded after the kill not sent in {WAIT} s: "
        f"the gate stays shut, waiting for the dead worker's probe; server saw {server.attempts}"
    )
    for event in later:
        assert isinstance(event.result(timeout=0), OfferDisplay)
    assert offer_uuids_received(server) >= offer_uuids(later)


# -- item 13: record_* racing close() --------------------------------------------------------------


@pytest.mark.parametrize(
    "spool_state",
    ["memory", "new-spool", pytest.param("spool-with-leftovers", marks=posix_only)],
)
def test_events_recorded_while_close_runs_are_refused_or_counted(
    engine: FakeEngineServer, recorders: Recorders, tmp_path: Path, spool_state: str
) -> None:
    """Issue 14 item 13: eight threads record until ``record_*`` raises RecorderClosedError
    while another thread closes the recorder. At every ``stats()`` taken meanwhile and after,
    enqueued == sent + failed + dropped + pending and sent <= enqueued; no other exception;
    every event ``record_*`` returned is counted in ``enqueued`` (with events another recorder
    left in the spool, delivered by a ``flush()`` first, those are counted too, as
    ``adopted``)."""
    # A small queue: the overflow goes to disk, or (memory only) is dropped at once, counted;
    # close() then has little to deliver however fast the threads record.
    options: dict[str, Any] = {"workers": 2, "max_queue": 64}
    spool = tmp_path / "spool.db"
    leftovers = 0
    if spool_state != "memory":
        options.update(spool=spool, max_queue=16)
    if spool_state == "spool-with-leftovers":
        leftovers = 20
        leave_in_spool(spool, tmp_path, leftovers)
    recorder = recorders(engine.url, **options)
    if leftovers:
        assert recorder.flush(timeout=WAIT)  # takes the other process's events over
        assert len(engine.offer_displays) == leftovers
    returned: list[RecordedEvent[Any, Any]] = []
    errors: list[BaseException] = []
    broken: list[str] = []  # the first few stats that did not add up
    broken_count = 0
    lock = threading.Lock()
    enough = threading.Event()
    done_watching = threading.Event()

    def check(stats: Any) -> None:
        nonlocal broken_count
        total = stats.sent + stats.failed + stats.dropped + stats.pending
        if stats.enqueued != total or stats.sent > stats.enqueued:
            broken_count += 1
            if len(broken) < 3:
                broken.append(repr(stats))

    def record() -> None:
        try:
            while True:
                event = recorder.record_offer_display(offer())
                with lock:
                    returned.append(event)
                    if len(returned) >= 200:
                        enough.set()
        except RecorderClosedError:
            return
        except BaseException as error:
            errors.append(error)
            enough.set()

    def watch() -> None:
        while not done_watching.wait(0.001):  # a sample every millisecond or so
            check(recorder.stats())

    recording_threads = [threading.Thread(target=record) for _ in range(8)]
    watcher = threading.Thread(target=watch)
    watcher.start()
    for thread in recording_threads:
        thread.start()
    try:
        assert enough.wait(WAIT)
        recorder.close(timeout=WAIT)
    finally:
        for thread in recording_threads:
            thread.join(WAIT)
        done_watching.set()
        watcher.join(WAIT)

    assert errors == []
    _, not_done = concurrent.futures.wait(returned, timeout=WAIT)
    assert not not_done, f"{len(not_done)} returned event(s) never ended"
    stats = recorder.stats()
    assert stats.sent <= stats.enqueued, f"more sent than enqueued: {stats}"
    assert stats.enqueued == stats.sent + stats.failed + stats.dropped + stats.pending, stats
    assert broken == [], f"{broken_count} stats() meanwhile did not add up, the first: {broken}"
    if leftovers:
        assert stats.adopted == leftovers, stats
        assert stats.enqueued == len(returned) + stats.adopted, stats
    else:
        assert stats.enqueued == len(returned), stats


# -- item 14: an idle recorder on a spool others left events in ------------------------------------


@posix_only
def test_close_of_a_recorder_that_recorded_nothing_leaves_other_processes_events_alone(
    engine: FakeEngineServer,
    recorders: Recorders,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 14 item 14: 5 events left in the spool by a process that is gone; a new recorder on
    it that records nothing starts no thread at ``close()``, the 5 rows stay in the file and the
    server gets nothing; ``flush()`` on another new recorder delivers them."""
    spool = tmp_path / "spool.db"
    left = leave_in_spool(spool, tmp_path, 5)
    started: list[str] = []
    start = threading.Thread.start

    def spying_start(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", spying_start)

    idle = recorders(engine.url, spool=spool)
    idle.close(timeout=2.0)

    workers = [name for name in started if name.startswith(THREAD_PREFIX)]
    assert workers == [], f"close() of a recorder that recorded nothing started {workers}"
    assert spooled_offer_uuids(spool) == collections.Counter(left)
    assert engine.requests == []
    monkeypatch.undo()

    deliverer = recorders(engine.url, spool=spool)
    assert deliverer.flush(timeout=WAIT)
    assert delivered(engine) == collections.Counter(left)
    assert spool_rows(spool) == []


# -- item 22: what is said about loss --------------------------------------------------------------


@posix_only
def test_events_lost_at_interpreter_exit_are_one_warning_line_with_one_number(
    tmp_path: Path,
) -> None:
    """Issue 14 item 22: a process exits with 100 events it cannot deliver (the API never
    answers, no spool): its stderr is one warning line about the loss, and the only number in
    it is 100."""
    with FaultServer(then=hang()) as api:
        child = run_child(
            [HELPER, "exit", "--host", api.url, "--token", TOKEN, "--count", "100",
             "--exit-timeout", "1.0"],
            tmp_path,
        )  # fmt: skip

    assert child.returncode == 0, child.stderr
    lines = [line for line in child.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"not one line on stderr: {lines}"
    numbers = re.findall(r"\d+(?:\.\d+)?", lines[0])
    assert numbers == ["100"], f"the loss is not stated as one number: {lines[0]!r}"


_LOSS_WORDS = re.compile(r"could not give back|\blost\b|\bloss\b|not delivered|dropped", re.I)


@posix_only
@needs_shell
def test_closing_on_a_spool_a_peer_holds_locked_reports_no_loss_when_nothing_was_lost(
    engine: FakeEngineServer,
    recorders: Recorders,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """Issue 14 item 22: every event delivered, then a peer ``sqlite3`` shell holds the spool's
    write lock while the recorder closes: no log line reads like loss (such as "could not give
    back spooled events")."""
    caplog.set_level(logging.INFO, logger="openapi_client")
    spool = tmp_path / "spool.db"
    recorder = recorders(engine.url, spool=spool)
    events = [recorder.record_offer_display(offer()) for _ in range(3)]
    assert recorder.flush(timeout=WAIT)
    assert delivered(engine) == offer_uuids(events)

    with shell_lock(spool):
        recorder.close(timeout=1.0)

    alarming = [r.getMessage() for r in caplog.records if _LOSS_WORDS.search(r.getMessage())]
    assert alarming == [], f"nothing was lost, yet the log says: {alarming}"
    assert spool_rows(spool) == []
