"""``EventRecorder``'s adaptive concurrency, against a loopback API that takes its time, may
take only so many requests at once, and counts what it sees (``limited_server.py``).

The recorder keeps a limit of requests in flight between 1 and ``workers`` (default 100): it
grows while a backlog waits and answers come back as fast as unloaded, shrinks on busy answers
and when the latency rises, and starts again from one request after an outage. What is checked
here is what an API and an application see: how many requests the server handled at once, in
what order they came, how many connections it accepted, that every event arrived exactly once,
and the recorder's ``stats()``. No assertion is about time: every wait is on a condition.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faultserver import refused_url
from limited_server import LimitedServer
from recorder_support import (
    TOKEN,
    WAIT,
    Recorders,
    assert_stats_add_up,
    offer,
    offer_uuids,
    wait_until,
)
from samples import RATE_TABLE

import openapi_client
from openapi_client import EventRecorder
from openapi_client.exceptions import ApiStatusError, RecorderClosedError, RecorderFullError
from openapi_client.models import OfferDisplay
from openapi_client.recorder import RecordedEvent

PROJECT = str(Path(openapi_client.__file__).resolve().parents[1])
"""Where this process found ``openapi_client``: child processes import the same one."""
CHILD_SECONDS = 30.0
"""Far more than any child here needs; past it the child is killed and the test fails."""
DRAIN = 20.0
"""A generous bound on a flush that delivers a few hundred events."""
OLD_WORKERS = 4
"""The fixed number of requests in flight before the limit adapted."""

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX processes")

Events = list[RecordedEvent[Any, Any]]


@pytest.fixture
def limited() -> Iterator[Callable[..., LimitedServer]]:
    """Start ``LimitedServer``s with ``limited(**options)``; all stopped after the test (and
    a failure in a server's own thread fails the test)."""
    started: list[LimitedServer] = []

    def start(**options: Any) -> LimitedServer:
        server = LimitedServer(**options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    errors = [error for server in started for error in server.errors]
    assert not errors, f"limited server failed: {errors!r}"


def record(recorder: EventRecorder, count: int) -> Events:
    return [recorder.record_offer_display(offer()) for _ in range(count)]


def assert_exactly_once(server: LimitedServer, events: Events) -> None:
    """Each event reached the server and was stored once: none lost, none twice."""
    received = server.delivered()
    expected = offer_uuids(events)
    missing = [key for key in expected if received[key] == 0]
    twice = {key: count for key, count in received.items() if count > 1}
    assert not missing, f"{len(missing)} of {len(expected)} events never delivered"
    assert not twice, f"{len(twice)} events delivered more than once: {twice}"
    assert received == expected


def child_env() -> dict[str, str]:
    """A child's environment: this process's ``openapi_client`` first on its path, no API host
    or token from the outer environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("ENGINE_API_HOST", "BEARER_TOKEN")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PROJECT, env.get("PYTHONPATH")) if p)
    return env


# -- 1. a slow API: the limit grows past the old fixed four ----------------------------------------


def test_a_slow_api_gets_more_than_four_requests_at_once(
    recorders: Recorders, limited: Callable[..., LimitedServer]
) -> None:
    """100 ms an answer, 200 events recorded at once, the default recorder: it sends more than
    the four at once it used to (and never more than its ``workers`` maximum, 100); every event
    is delivered exactly once and the counts add up."""
    server = limited(latency=0.1)
    recorder = recorders(server.url)

    events = record(recorder, 200)

    assert recorder.flush(timeout=DRAIN)
    assert OLD_WORKERS < server.peak <= 100, f"{server.peak} requests at once"
    assert_exactly_once(server, events)
    assert all(isinstance(event.result(timeout=0), OfferDisplay) for event in events)
    assert server.statuses() == {201: 200}
    stats = recorder.stats()
    assert (stats.sent, stats.failed, stats.dropped, stats.pending) == (200, 0, 0, 0)
    assert_stats_add_up(recorder)


# -- 2. exit loses nothing -------------------------------------------------------------------------

EXIT_CHILD = """
import atexit, sys, threading
from openapi_client import ApiClient, Configuration, EventRecorder

host, token, ids, lead, rate_table, no_threads_at_exit = sys.argv[1:]
recorder = EventRecorder(ApiClient(Configuration(host=host, access_token=token)))
if no_threads_at_exit == "1":
    def refuse(thread):
        raise RuntimeError("can't create new thread at interpreter shutdown")

    # Registered after the recorder's exit handler, so it runs first: from then on no thread
    # starts, as Python 3.12.0 to 3.12.2 have it for atexit handlers.
    atexit.register(lambda: setattr(threading.Thread, "start", refuse))
for offer in open(ids).read().split():
    recorder.record_offer_display(
        {"leadUuid": lead, "rateTableUuid": rate_table, "offerUuid": offer}
    )
if no_threads_at_exit == "1":
    recorder.close()  # what the docs advise a script there
print("returning", flush=True)
"""
"""Records every offerUuid of the file as fast as it can and returns from main: no flush, no
close (but where no thread may start at exit), no spool; the default ``exit_timeout`` (2 s)
and ``workers``."""


@posix_only
@pytest.mark.slow
@pytest.mark.parametrize(
    "threads_at_exit",
    [
        pytest.param("as-this-python", id="threads-at-exit-as-this-python"),
        pytest.param("none", id="no-thread-starts-at-exit-as-on-python-3.12.0-and-close"),
    ],
)
def test_a_process_that_records_a_thousand_events_and_exits_delivers_them_all(
    limited: Callable[..., LimitedServer], tmp_path: Path, threads_at_exit: str
) -> None:
    """A child records 1,000 events against a 20 ms API and returns normally: within its exit
    time the recorder delivers every one exactly once (four at a time delivered ~350) and
    says nothing of a loss. Python 3.12.0 to 3.12.2 start no thread in an atexit handler (the
    recorder then has only the senders it had when main returned, a few after a burst): the
    child makes it so in the second case, and calls ``close()`` before its end, as the docs
    advise there."""
    server = limited(latency=0.02)
    offers = [str(uuid.uuid4()) for _ in range(1000)]
    ids = tmp_path / "ids"
    ids.write_text("\n".join(offers))
    lead = str(uuid.uuid4())
    no_threads = "1" if threads_at_exit == "none" else "0"
    args = [server.url, TOKEN, str(ids), lead, RATE_TABLE, no_threads]

    try:
        child = subprocess.run(
            [sys.executable, "-c", EXIT_CHILD, *args],
            capture_output=True,
            text=True,
            timeout=CHILD_SECONDS,
            check=False,
            env=child_env(),
        )
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"child still running after {CHILD_SECONDS} s: killed") from expired

    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["returning"]
    received = server.delivered()
    assert sum(received.values()) == len(offers), (
        f"{len(offers) - len(received)} of {len(offers)} events lost at exit: {child.stderr}"
    )
    assert received == collections.Counter(offers)
    assert child.stderr == ""


# -- 3. the connection pool follows the limit ------------------------------------------------------


def test_the_connection_pool_holds_as_many_connections_as_requests_in_flight(
    recorders: Recorders,
    limited: Callable[..., LimitedServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``workers=16`` with the client's default pool of 10 connections, three bursts of 100
    events (each flushed): more than 10 requests go out at once, yet the server sees at most
    16 connections in all. A pool of 10 would keep 10 of them after each burst, close the
    others, and open new ones for the next burst."""
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    server = limited(latency=0.02)
    recorder = recorders(server.url, workers=16)
    events: Events = []

    for _ in range(3):
        events += record(recorder, 100)
        assert recorder.flush(timeout=DRAIN)

    assert_exactly_once(server, events)
    assert 10 < server.peak <= 16, f"{server.peak} requests at once"
    assert server.connections <= 16, f"{server.connections} connections for 16 at most in flight"
    # The SDK's pool closes a surplus connection itself, without urllib3's warning: the count
    # of connections above is what shows that none was thrown away.
    assert not [r for r in caplog.records if "Connection pool is full" in r.getMessage()]


# -- 4. an API that takes only so many at once -----------------------------------------------------


@pytest.mark.slow
def test_an_api_that_refuses_above_eight_at_once_gets_few_refusals_and_every_event(
    recorders: Recorders, limited: Callable[..., LimitedServer]
) -> None:
    """The API answers 503 with ``Retry-After: 1`` above 8 requests at once (50 ms each), 300
    events recorded at once: each is delivered exactly once, at most a quarter of all the
    requests are refused, and the limit ends near what the API takes (at most 16)."""
    server = limited(latency=0.05, limit=8)
    recorder = recorders(server.url)

    events = record(recorder, 300)

    assert recorder.flush(timeout=DRAIN)
    assert_exactly_once(server, events)
    statuses = server.statuses()
    assert set(statuses) <= {201, 503}
    assert statuses[201] == 300
    refused = statuses[503] / server.arrived
    assert refused <= 0.25, f"{statuses[503]} of {server.arrived} requests refused"
    stats = recorder.stats()
    assert (stats.sent, stats.failed, stats.dropped, stats.pending) == (300, 0, 0, 0)
    assert stats.retried == statuses[503]
    assert stats.concurrency_limit <= 16, stats


def test_never_more_requests_at_once_than_workers(
    recorders: Recorders, limited: Callable[..., LimitedServer]
) -> None:
    """``workers=6``, 200 events at a 20 ms API: the limit grows past its start of four but
    never beyond ``workers``, at the server as in ``stats()``."""
    server = limited(latency=0.02)
    recorder = recorders(server.url, workers=6)

    events = record(recorder, 200)

    assert recorder.flush(timeout=DRAIN)
    assert_exactly_once(server, events)
    assert OLD_WORKERS < server.peak <= 6, f"{server.peak} requests at once"
    assert recorder.stats().concurrency_limit <= 6


# -- 5. one busy answer among successes ------------------------------------------------------------


def test_a_busy_answer_among_successes_makes_only_its_own_event_wait(
    recorders: Recorders, limited: Callable[..., LimitedServer]
) -> None:
    """The 5th request is answered 503 with ``Retry-After: 1``, every other one 201 at once:
    that event waits and is sent again, while the 49 others go on without it (they all arrive
    before its second attempt); each is delivered exactly once."""
    server = limited(script={5: 503})
    recorder = recorders(server.url)

    events = record(recorder, 50)

    assert recorder.flush(timeout=WAIT)
    assert_exactly_once(server, events)
    arrivals = server.arrivals
    assert arrivals[4].status == 503
    busy = arrivals[4].offer_uuid
    order = [arrival.offer_uuid for arrival in arrivals]
    assert order.count(busy) == 2
    second_try = len(order) - 1 - order[::-1].index(busy)
    waited_for_it = set(offer_uuids(events)) - set(order[:second_try])
    assert not waited_for_it, (
        f"{len(waited_for_it)} events were sent only after the busy event's second attempt"
    )
    stats = recorder.stats()
    assert stats.retried >= 1
    assert (stats.sent, stats.failed, stats.pending) == (50, 0, 0)


def test_events_waiting_out_a_busy_answer_do_not_hold_up_the_others(
    recorders: Recorders, limited: Callable[..., LimitedServer]
) -> None:
    """``workers=2``: the 3rd and 4th requests are answered 503 with ``Retry-After: 1``, after
    successes, every other one 201 at once. Both events wait out their second; the other 46
    are sent meanwhile (they all arrive before either second attempt), as a busy answer among
    successes makes only its own event wait."""
    server = limited(script={3: 503, 4: 503})
    recorder = recorders(server.url, workers=2)

    events = record(recorder, 50)

    assert recorder.flush(timeout=WAIT)
    assert_exactly_once(server, events)
    arrivals = server.arrivals
    busy = {arrivals[2].offer_uuid, arrivals[3].offer_uuid}
    assert [arrival.status for arrival in arrivals[:5]] == [201, 201, 503, 503, 201]
    order = [arrival.offer_uuid for arrival in arrivals]
    first_retry = min(i for i, key in enumerate(order) if key in busy and i > 3)
    held_up = set(offer_uuids(events)) - busy - set(order[:first_retry])
    assert not held_up, (
        f"{len(held_up)} of 48 events were sent only after a busy event's second attempt"
    )
    assert recorder.stats().retried == 2


# -- 6. a rising latency shrinks the limit ---------------------------------------------------------


def test_when_the_latency_rises_the_limit_shrinks(
    recorders: Recorders, limited: Callable[..., LimitedServer]
) -> None:
    """A backlog against a 10 ms API grows the limit above 8; the API slows to 300 ms with a
    backlog still waiting: the limit falls below what it was (the API queues the requests:
    more of them at once would not go faster). Back at 10 ms every event is delivered exactly
    once."""
    server = limited(latency=0.01)
    recorder = recorders(server.url)
    events = record(recorder, 300)
    wait_until(lambda: recorder.stats().concurrency_limit > 8)
    grown = recorder.stats().concurrency_limit

    server.latency = 0.3
    events += record(recorder, 200)  # a backlog waits for room
    wait_until(lambda: recorder.stats().concurrency_limit < grown)

    server.latency = 0.01
    assert recorder.flush(timeout=DRAIN)
    assert_exactly_once(server, events)
    stats = recorder.stats()
    assert (stats.sent, stats.failed, stats.retried) == (500, 0, 0)
    assert server.statuses() == {201: 500}


# -- 7. after an outage: one request, then a ramp --------------------------------------------------


@pytest.mark.parametrize("outage", ["refused", "503"])
def test_after_an_outage_sending_starts_alone_and_ramps_up(
    recorders: Recorders, limited: Callable[..., LimitedServer], outage: str
) -> None:
    """The API is down (connections refused, or 503 to everything) while 200 events wait; when
    it is back (20 ms an answer) the first request it answers comes alone, the next few at most
    two at once, and later, with the backlog still there, more than four at once. Every event
    is delivered exactly once."""
    if outage == "refused":
        with refused_url() as url:
            recorder = recorders(url)
            events = record(recorder, 200)
            wait_until(lambda: recorder.stats().retried >= 16)  # probes, one at a time
            port = int(url.rsplit(":", 1)[1])
        server = limited(latency=0.02, port=port)
    else:
        server = limited(latency=0.02, status=503, retry_after=None)
        recorder = recorders(server.url)
        events = record(recorder, 200)
        wait_until(lambda: server.arrived >= 16)
        server.status = 201

    assert recorder.flush(timeout=DRAIN)
    assert_exactly_once(server, events)
    answered = [arrival.open for arrival in server.arrivals if arrival.status == 201]
    seen = f"requests at once as each came after the outage: {answered[:12]}"
    assert answered[0] == 1, seen
    assert max(answered[:4]) <= 2, seen
    assert max(answered) > OLD_WORKERS, f"at most {max(answered)} requests at once after the outage"
    stats = recorder.stats()
    assert (stats.sent, stats.failed, stats.dropped, stats.pending) == (200, 0, 0, 0)


# -- 8. why events fail or are dropped -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"), [(401, "credential"), (403, "credential"), (422, "rejected")]
)
def test_events_the_api_refuses_fail_by_reason(
    recorders: Recorders, limited: Callable[..., LimitedServer], status: int, reason: str
) -> None:
    """Without a spool, a refused credential (401, 403) fails the events as ``credential``;
    another 4xx as ``rejected``. Each is tried once."""
    server = limited(status=status)
    recorder = recorders(server.url)

    events = record(recorder, 5)

    assert recorder.flush(timeout=WAIT)
    for event in events:
        error = event.exception(timeout=0)
        assert isinstance(error, ApiStatusError)
        assert error.status == status
    stats = recorder.stats()
    assert stats.failed_by_reason == {reason: 5}
    assert (stats.sent, stats.failed, stats.dropped, stats.retried) == (0, 5, 0, 0)
    assert server.arrived == 5
    assert_stats_add_up(recorder)


def test_a_full_queue_drops_as_queue_full(
    recorders: Recorders, limited: Callable[..., LimitedServer]
) -> None:
    """``max_queue=1`` while the API holds every request: the events that find the queue full
    are dropped as ``queue_full``; the others are delivered once the API answers."""
    server = limited()
    server.hold()
    recorder = recorders(server.url, max_queue=1)

    events = record(recorder, 30)

    full = [e for e in events if e.done() and isinstance(e.exception(0), RecorderFullError)]
    assert full
    assert recorder.stats().dropped_by_reason == {"queue_full": len(full)}
    server.let_go()
    assert recorder.flush(timeout=WAIT)
    kept = [event for event in events if event not in full]
    assert_exactly_once(server, kept)
    stats = recorder.stats()
    assert (stats.sent, stats.dropped, stats.pending) == (len(kept), len(full), 0)
    assert_stats_add_up(recorder)


def test_events_left_at_close_are_dropped_as_closed(
    recorders: Recorders, limited: Callable[..., LimitedServer]
) -> None:
    """``workers=2``, the API holding both requests, 10 events: ``close`` with a short timeout
    drops the 8 that never went out as ``closed``; the two in flight are delivered once the API
    answers."""
    server = limited()
    server.hold()
    recorder = recorders(server.url, workers=2)
    events = record(recorder, 10)
    wait_until(lambda: server.arrived == 2)

    recorder.close(timeout=0.2)

    stats = recorder.stats()
    assert stats.dropped_by_reason == {"closed": 8}, stats
    assert server.arrived == 2
    dropped = [e for e in events if e.done() and isinstance(e.exception(0), RecorderClosedError)]
    assert len(dropped) == 8
    server.let_go()
    wait_until(lambda: recorder.stats().sent == 2)
    assert_exactly_once(server, [event for event in events if event not in dropped])
    assert_stats_add_up(recorder)


# -- 9. processes sharing a spool, against a limited API ------------------------------------------


SPOOL_CHILD = """
import json, sys, uuid
from openapi_client import ApiClient, Configuration, EventRecorder

host, token, spool, ids, lead, rate_table = sys.argv[1:]
client = ApiClient(Configuration(host=host, access_token=token))
recorder = EventRecorder(client, spool=spool)
with open(ids, "w") as written:
    for _ in range(100):
        offer = str(uuid.uuid4())
        recorder.record_offer_display(
            {"leadUuid": lead, "rateTableUuid": rate_table, "offerUuid": offer}
        )
        written.write(offer + "\\n")
flushed = recorder.flush(timeout=25.0)
recorder.close()
print(json.dumps({"flushed": flushed, "sent": recorder.stats().sent}), flush=True)
"""
"""Records 100 events (offerUuids to a file) into a spool shared with other processes, with
the default ``workers``; flushes, closes, and says whether the flush finished and how many
events this process sent."""


@posix_only
@pytest.mark.slow
def test_processes_sharing_a_spool_deliver_every_event_once_to_a_limited_api(
    limited: Callable[..., LimitedServer], tmp_path: Path
) -> None:
    """Three processes record 100 events each into one spool file (default recorders), against
    an API that takes 4 requests at once (50 ms each, 503 with ``Retry-After: 1`` above), then
    flush and exit: every event arrives exactly once, none lost, none twice."""
    server = limited(latency=0.05, limit=4)
    spool = tmp_path / "spool.db"
    children = []
    for index in range(3):
        args = [server.url, TOKEN, str(spool), str(tmp_path / f"ids-{index}"), str(uuid.uuid4())]
        children.append(
            subprocess.Popen(
                [sys.executable, "-c", SPOOL_CHILD, *args, RATE_TABLE],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=child_env(),
                start_new_session=True,
            )
        )
    try:
        outputs = [child.communicate(timeout=CHILD_SECONDS) for child in children]
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"a child still running after {CHILD_SECONDS} s: killed") from expired
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()

    for index, (child, (stdout, stderr)) in enumerate(zip(children, outputs, strict=True)):
        assert child.returncode == 0, f"child {index}: {stdout!r} {stderr!r}"
    reports = [json.loads(stdout) for stdout, _ in outputs]
    assert all(report["flushed"] for report in reports), reports
    ids = [line for i in range(3) for line in (tmp_path / f"ids-{i}").read_text().split()]
    assert len(ids) == 300
    received = server.delivered()
    missing = [offer for offer in ids if received[offer] == 0]
    twice = {offer: received[offer] for offer in ids if received[offer] > 1}
    assert not missing, f"{len(missing)} of 300 events never delivered"
    assert not twice, f"{len(twice)} events delivered more than once: {twice}"
    assert received == collections.Counter(ids)
    assert sum(report["sent"] for report in reports) == 300
