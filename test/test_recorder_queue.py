"""``EventRecorder``'s memory queue, spool, shared backoff, ``flush`` and ``stats``, against real
loopback servers.

A full memory queue without a spool drops events visibly (future, ``on_error``, count, one
warning); with a spool they wait on disk and are delivered. During an outage the recorder backs
off as a whole (one probe at a time) and resumes with every worker once the API answers.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import re
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from faultserver import (
    Behaviour,
    Connection,
    FaultServers,
    answer,
    created_for_path,
    held,
    refused_url,
)
from recorder_support import (
    FAST,
    TOKEN,
    WAIT,
    Failures,
    Recorders,
    failures_into,
    offer,
    offer_uuids,
    offer_uuids_received,
    wait_until,
)

from openapi_client import ApiClient, Configuration, EventRecorder, RetryPolicy
from openapi_client.exceptions import (
    OpenApiException,
    RecorderError,
    RecorderFullError,
    ServiceException,
)
from openapi_client.models import OfferDisplay
from openapi_client.recorder import RecordedEvent, RecorderStats
from openapi_client.recorder import _dispatcher as dispatcher_module
from openapi_client.recorder import _spool as spool_module
from openapi_client.recorder._gate import DeliveryGate
from openapi_client.recorder._spool import Spool
from openapi_client.testing.server import FakeEngineServer

# -- a full queue --------------------------------------------------------------------------------


def test_a_full_queue_without_spool_drops_visibly(
    servers: FaultServers,
    recorders: Recorders,
    release: threading.Event,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``max_queue=1``, one worker held by the server: further events fail with
    RecorderFullError, are counted, reported to on_error, and warned about once with a count;
    ``record_*`` raises nothing and the events it kept are delivered."""
    server = servers(held(release, created_for_path()), then=created_for_path())
    failures: Failures = []
    recorder = recorders(server.url, max_queue=1, workers=1, on_error=failures_into(failures))
    caplog.set_level(logging.WARNING, logger="openapi_client")
    sending = recorder.record_offer_display(offer())
    assert server.wait_for_attempts(1, timeout=WAIT)  # the only worker waits on the server
    queued = recorder.record_offer_display(offer())  # the one place in memory

    extra = [recorder.record_offer_display(offer()) for _ in range(5)]

    for event in extra:
        assert event.done()
        assert isinstance(event.exception(timeout=0), RecorderFullError)
    assert [event for event, _ in failures] == extra
    assert [error for _, error in failures] == [event.exception(timeout=0) for event in extra]
    stats = recorder.stats()
    assert (stats.enqueued, stats.dropped, stats.pending, stats.failed) == (7, 5, 2, 0)
    drop_warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "dropped" in r.getMessage()
    ]
    assert len(drop_warnings) == 1, [r.getMessage() for r in drop_warnings]
    count = re.search(r"dropped (\d+) event", drop_warnings[0].getMessage())
    assert count is not None
    assert 1 <= int(count.group(1)) <= 5
    release.set()
    assert recorder.flush(timeout=WAIT)
    assert offer_uuids_received(server) == offer_uuids([sending, queued])
    assert isinstance(queued.result(timeout=0), OfferDisplay)
    stats = recorder.stats()
    assert (stats.sent, stats.dropped, stats.pending) == (2, 5, 0)


def test_on_error_that_raises_for_a_drop_does_not_reach_the_caller(
    servers: FaultServers,
    recorders: Recorders,
    release: threading.Event,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """on_error raising inside ``record_*`` (a drop): logged, ``record_*`` still returns."""
    server = servers(held(release, created_for_path()), then=created_for_path())
    calls: list[RecordedEvent[Any, Any]] = []

    def on_error(event: RecordedEvent[Any, Any], error: OpenApiException) -> None:
        calls.append(event)
        raise RuntimeError("on_error broke")

    recorder = recorders(server.url, max_queue=1, workers=1, on_error=on_error)
    recorder.record_offer_display(offer())
    assert server.wait_for_attempts(1, timeout=WAIT)
    recorder.record_offer_display(offer())

    dropped = recorder.record_offer_display(offer())

    assert calls == [dropped]
    assert isinstance(dropped.exception(timeout=0), RecorderFullError)
    assert "on_error broke" in caplog.text


def test_a_full_queue_with_a_spool_keeps_every_event(
    servers: FaultServers, recorders: Recorders, release: threading.Event, tmp_path: Path
) -> None:
    """The same full queue with a spool: nothing dropped, the overflow waits on disk and is
    delivered once the server answers; every future resolves with its model."""
    server = servers(held(release, created_for_path()), then=created_for_path())
    failures: Failures = []
    recorder = recorders(
        server.url,
        max_queue=1,
        workers=1,
        spool=tmp_path / "spool.db",
        on_error=failures_into(failures),
    )
    events = [recorder.record_offer_display(offer())]
    assert server.wait_for_attempts(1, timeout=WAIT)

    events += [recorder.record_offer_display(offer()) for _ in range(4)]

    assert not any(event.done() for event in events[1:])
    stats = recorder.stats()
    assert (stats.dropped, stats.pending, stats.spooled) == (0, 5, 5)
    release.set()
    assert recorder.flush(timeout=WAIT)
    assert offer_uuids_received(server) == offer_uuids(events)
    assert all(isinstance(event.result(timeout=0), OfferDisplay) for event in events)
    stats = recorder.stats()
    assert (stats.sent, stats.dropped, stats.failed, stats.pending, stats.spooled) == (
        5, 0, 0, 0, 0,
    )  # fmt: skip
    assert failures == []


def test_a_spooled_backlog_drains_as_fast_as_the_api_answers(
    servers: FaultServers, recorders: Recorders, release: threading.Event, tmp_path: Path
) -> None:
    """Thirty events overflowed to disk behind a small memory queue: once the API answers
    (in milliseconds), ``flush(timeout=5)`` sees them all delivered, not one per poll."""
    server = servers(held(release, created_for_path()), then=created_for_path())
    recorder = recorders(server.url, max_queue=1, workers=1, spool=tmp_path / "spool.db")
    events = [recorder.record_offer_display(offer())]
    assert server.wait_for_attempts(1, timeout=WAIT)
    events += [recorder.record_offer_display(offer()) for _ in range(30)]
    release.set()

    flushed = recorder.flush(timeout=5.0)

    stats = recorder.stats()
    assert flushed, f"after 5 s: {stats.sent} of 31 sent, {stats.spooled} still in the spool"
    assert offer_uuids_received(server) == offer_uuids(events)


# -- many threads ----------------------------------------------------------------------------------


def test_sixteen_threads_recording_at_once_lose_and_duplicate_nothing() -> None:
    """16 threads x 50 events started together: each delivered once, stats add up."""
    with FakeEngineServer(token=TOKEN) as engine, engine.client() as client:
        recorder = EventRecorder(client)
        start = threading.Barrier(16)
        recorded: list[list[RecordedEvent[Any, Any]]] = [[] for _ in range(16)]
        errors: list[BaseException] = []

        def record(index: int) -> None:
            try:
                start.wait(timeout=WAIT)
                for _ in range(50):
                    recorded[index].append(recorder.record_offer_display(offer()))
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=record, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        try:
            assert errors == []
            events = [event for events in recorded for event in events]
            assert len(events) == 800
            assert recorder.flush(timeout=30.0)
            received = collections.Counter(d.offer_uuid for d in engine.offer_displays)
            assert received == offer_uuids(events)
            assert set(received.values()) == {1}
            assert all(e.result(timeout=0).offer_uuid == e.request.offer_uuid for e in events)
            stats = recorder.stats()
            assert (stats.enqueued, stats.sent, stats.failed, stats.dropped, stats.pending) == (
                800, 800, 0, 0, 0,
            )  # fmt: skip
        finally:
            recorder.close(timeout=1.0)


# -- the recorder backs off as a whole -----------------------------------------------------------


class Outage:
    """A server script: 503 (each held 20 ms) until ``end()``, then 201s.

    Watches concurrency: how many outage requests numbered above ``first_wave`` were waiting
    for their answer at once (a recorder that backs off as a whole sends one probe at a time),
    and how many successful requests were open as each arrived after the outage (a ramp: the
    probe alone, then more, up to every worker). Each success is held 20 ms.
    """

    def __init__(self, workers: int, first_wave: int) -> None:
        self._workers = workers
        self._first_wave = first_wave
        self._changed = threading.Condition()
        self._over = False
        self._arrived = 0
        self._open_probes: set[int] = set()
        self.outage_attempts = 0
        self.max_open_probes = 0
        self._open_ok = 0
        self.max_open_ok = 0
        self.open_at_arrival: list[int] = []
        self.delivered: list[str] = []

    def end(self) -> None:
        with self._changed:
            self._over = True

    def behaviour(self) -> Behaviour:
        return Behaviour("503 until the outage ends, then 201", self._run)

    def _run(self, conn: Connection) -> None:
        assert conn.request is not None
        with self._changed:
            self._arrived += 1
            number, over = self._arrived, self._over
            if not over:
                self.outage_attempts += 1
                if number > self._first_wave:
                    self._open_probes.add(number)
                    self.max_open_probes = max(self.max_open_probes, len(self._open_probes))
            else:
                self._open_ok += 1
                self.open_at_arrival.append(self._open_ok)
                self.max_open_ok = max(self.max_open_ok, self._open_ok)
        if not over:
            conn.released.wait(0.02)
            with self._changed:
                self._open_probes.discard(number)  # before the answer: the next probe may follow
            answer(503).run(conn)
            return
        conn.released.wait(0.02)
        with self._changed:
            self._open_ok -= 1
            self.delivered.append(json.loads(conn.request.body)["offerUuid"])
        created_for_path().run(conn)


def test_an_outage_gets_one_probe_at_a_time_then_full_speed(
    servers: FaultServers, recorders: Recorders
) -> None:
    """workers=4, 40 events, the API answering 503: after the first failures, attempts go out
    one at a time (never two outage probes at once); when it answers again, sending ramps up
    (the probe alone, then at most two, …) to all four workers at once; every event is
    delivered exactly once."""
    workers = 4
    outage = Outage(workers, first_wave=2 * workers)
    server = servers(then=outage.behaviour())
    recorder = recorders(server.url, workers=workers)
    events = [recorder.record_offer_display(offer()) for _ in range(40)]

    assert server.wait_for_attempts(3 * workers + 4, timeout=WAIT)
    outage.end()

    assert recorder.flush(timeout=WAIT)
    assert outage.max_open_probes == 1, (
        f"{outage.max_open_probes} attempts were out at once during the outage"
    )
    assert outage.open_at_arrival[:2] == [1, 1], (
        f"the first answers after the outage came {outage.open_at_arrival[:2]} at once: no ramp"
    )
    assert outage.max_open_ok == workers, (
        f"after the outage at most {outage.max_open_ok} of {workers} workers sent at once"
    )
    assert collections.Counter(outage.delivered) == offer_uuids(events)
    stats = recorder.stats()
    assert (stats.sent, stats.failed, stats.pending) == (40, 0, 0)
    assert stats.retried == outage.outage_attempts


def test_while_a_probe_is_out_no_other_event_is_sent(
    servers: FaultServers, recorders: Recorders, release: threading.Event
) -> None:
    """After a 503, the retry is a probe; while the server holds it, events recorded meanwhile
    wait (four idle workers notwithstanding), then all go out once it is answered."""
    server = servers(answer(503), held(release, created_for_path()), then=created_for_path())
    recorder = recorders(server.url, workers=4)
    first = recorder.record_offer_display(offer())
    assert server.wait_for_attempts(2, timeout=WAIT)  # the 503, then the probe, held

    others = [recorder.record_offer_display(offer()) for _ in range(3)]

    assert recorder.flush(timeout=0.3) is False
    assert server.attempts == 2
    release.set()
    assert recorder.flush(timeout=WAIT)
    sent = [json.loads(request.body)["offerUuid"] for request in server.requests]
    assert sent[:2] == [first.request.offer_uuid] * 2
    assert collections.Counter(sent[2:]) == offer_uuids(others)
    assert all(isinstance(event.result(timeout=0), OfferDisplay) for event in [first, *others])


# -- delivery_timeout with a spool ---------------------------------------------------------------


def test_with_a_spool_an_event_past_delivery_timeout_is_parked_not_failed(
    recorders: Recorders, tmp_path: Path
) -> None:
    """API down past ``delivery_timeout``: the events stay in the spool (not failed, no
    on_error); once the API is back a flush delivers them and resolves their futures."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # bound, not listening: refused
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    failures: Failures = []
    try:
        recorder = recorders(
            f"http://127.0.0.1:{port}",
            workers=2,
            delivery_timeout=0.3,
            spool=tmp_path / "spool.db",
            on_error=failures_into(failures),
        )
        events = [recorder.record_offer_display(offer()) for _ in range(3)]
        # Given up on, for now: back in the spool, free for a later try (and still pending).
        wait_until(lambda: Spool(str(tmp_path / "spool.db"), register=False).summary().waiting == 3)

        stats = recorder.stats()
        assert (stats.failed, stats.dropped, stats.spooled, stats.pending) == (0, 0, 3, 3)
        assert not any(event.done() for event in events)
        assert failures == []
    finally:
        holder.close()
    with FakeEngineServer(port=port, token=TOKEN) as engine:
        assert recorder.flush(timeout=WAIT)

        received = collections.Counter(d.offer_uuid for d in engine.offer_displays)
    assert received == offer_uuids(events)
    for event in events:
        assert event.result(timeout=0).offer_uuid == event.request.offer_uuid
    assert recorder.stats().spooled == 0


# -- stats and flush -------------------------------------------------------------------------------


def test_stats_fields_are_ints_and_spooled_counts_rows(
    recorders: Recorders, tmp_path: Path
) -> None:
    """``stats()``: the seven counts of the first release (ints), then the adopted count, the
    counts by reason, the oldest pending event's age, and the concurrency limit with what is in
    flight and the latency; ``spooled`` is the rows in the file."""
    with refused_url() as url:
        plain = recorders(url)
        assert dataclasses.replace(plain.stats(), concurrency_limit=0) == RecorderStats(
            0, 0, 0, 0, 0, 0, 0
        )
        assert 1 <= plain.stats().concurrency_limit <= 100
        spooling = recorders(url, spool=tmp_path / "spool.db")

        for _ in range(3):
            spooling.record_offer_display(offer())
        spooling.record_session_init()

        stats = spooling.stats()
        assert [f.name for f in dataclasses.fields(stats)] == [
            "enqueued", "sent", "failed", "dropped", "retried", "pending", "spooled", "adopted",
            "dropped_by_reason", "failed_by_reason", "oldest_pending_age", "last_failure",
            "spool_error", "concurrency_limit", "in_flight", "latency",
        ]  # fmt: skip
        assert all(type(value) is int for value in dataclasses.astuple(stats)[:8])
        assert (stats.enqueued, stats.spooled, stats.pending) == (4, 4, 4)
        assert plain.stats().spooled == 0


def test_flush_is_false_while_events_are_pending_and_true_once_delivered(
    servers: FaultServers, recorders: Recorders, release: threading.Event
) -> None:
    """``flush(timeout)``: False when the timeout comes first (within a bound), True later."""
    server = servers(held(release, created_for_path()), then=created_for_path())
    recorder = recorders(server.url)
    assert recorder.flush(timeout=0.1)  # nothing recorded: nothing pending
    event = recorder.record_offer_display(offer())
    assert server.wait_for_attempts(1, timeout=WAIT)

    started = time.monotonic()
    assert recorder.flush(timeout=0.2) is False
    assert time.monotonic() - started < 2.0
    assert recorder.stats().pending == 1

    release.set()
    assert recorder.flush(timeout=WAIT) is True
    assert event.done()
    assert recorder.stats().pending == 0


# -- the spool's heartbeat, and flush in sync mode -------------------------------------------------


def test_a_recorder_stuck_in_an_outage_keeps_showing_it_is_alive(
    servers: FaultServers,
    recorders: Recorders,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its worker waits out a long ``Retry-After`` for the whole ``delivery_timeout``: the
    recorder's heartbeat in the spool goes on meanwhile (the interval shortened to 50 ms here,
    15 s in production), so no other process takes its events for a dead owner's and sends
    them a second time."""
    monkeypatch.setattr(spool_module, "HEARTBEAT_SECONDS", 0.05)
    monkeypatch.setattr(dispatcher_module, "HEARTBEAT_SECONDS", 0.05)
    server = servers(then=answer(503, b"", {"Retry-After": "60"}))
    spool = tmp_path / "spool.db"
    recorder = recorders(server.url, workers=1, spool=spool, delivery_timeout=60.0)
    recorder.record_offer_display(offer())
    assert server.wait_for_attempts(1, timeout=WAIT)
    failed_at = time.time()

    def heartbeat() -> float:
        with sqlite3.connect(spool) as db:
            return float(db.execute("SELECT max(heartbeat) FROM owners").fetchone()[0])

    wait_until(lambda: heartbeat() > failed_at + 0.5)
    assert server.attempts == 1  # still waiting out the Retry-After


def test_flush_in_sync_mode_starts_nothing_after_its_timeout(
    servers: FaultServers, tmp_path: Path
) -> None:
    """``sync=True``: ``flush(timeout)`` delivers the spool in the caller's thread, one event
    at a time, and starts no attempt after its timeout: with the API answering 503, only the
    first event is tried (until the flush's timeout, not its own delivery_timeout), then it
    waits on disk with the others."""
    spool = tmp_path / "spool.db"
    left = Spool(str(spool))
    for _ in range(3):
        left.add("offer_display", json.dumps(offer()).encode(), time.time(), queued=False)
    left.release()
    server = servers(then=answer(503, b""))
    config = Configuration(host=server.url, access_token=TOKEN, retries=FAST)
    with ApiClient(config) as client:
        recorder = EventRecorder(client, spool=spool, sync=True, delivery_timeout=2.0)

        assert not recorder.flush(timeout=0.3)

        tried = {json.loads(request.body)["offerUuid"] for request in server.requests}
        assert len(tried) == 1, f"{len(tried)} events tried, one after another"
        assert Spool(str(spool), register=False).summary().waiting == 3
        recorder.close(timeout=0.1)


def test_an_answer_to_a_request_sent_before_a_429_does_not_cut_its_wait() -> None:
    """The gate: a 429 with ``Retry-After: 30`` shuts it; a success of a request that was
    already in flight proves nothing about now and keeps it shut; a probe once the wait is
    over opens it."""
    gate = DeliveryGate(RetryPolicy(initial_backoff=0.01, max_backoff=0.05))
    assert gate.enter(time.monotonic() + 1, lambda: False) is False
    assert gate.enter(time.monotonic() + 1, lambda: False) is False

    gate.leave(False, healthy=False, retry_after=30.0)  # one request: 429
    gate.leave(False, healthy=True)  # the other, sent before: 201

    assert not gate.healthy
    assert gate.enter(time.monotonic() + 0.05, lambda: False) is None  # still waiting
    gate.leave(True, healthy=True)  # a probe that went out (as after the wait) and succeeded
    assert gate.healthy


def test_an_event_kept_out_by_a_500_is_told_of_it(
    servers: FaultServers, recorders: Recorders
) -> None:
    """A 500 (not retried: the server may have stored the event) also shuts the gate, here for
    its ``Retry-After``; the next event, never sent before its ``delivery_timeout``, fails
    with a RecorderError whose cause is that 500."""
    server = servers(answer(500, b"", {"Retry-After": "30"}), then=created_for_path())
    recorder = recorders(server.url, workers=1, delivery_timeout=0.3)
    first = recorder.record_offer_display(offer())
    second = recorder.record_offer_display(offer())

    first_error = first.exception(timeout=WAIT)
    second_error = second.exception(timeout=WAIT)

    assert isinstance(first_error, ServiceException)
    assert type(second_error) is RecorderError
    assert second_error.__cause__ is first_error
    assert server.attempts == 1
