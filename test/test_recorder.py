"""``EventRecorder`` delivery against real loopback servers: what is sent, what is retried, and
what fails at once.

Rules under test (no idempotency key): connect failures, a stale keep-alive connection, 408,
429, 502, 503 and 504 are retried (backoff from the client's ``RetryPolicy``, ``Retry-After``
honoured) until ``delivery_timeout``; ambiguous failures (500, read timeout, a response broken
off, a new connection closed without an answer) fail at once unless ``retry_ambiguous=True``;
any other 4xx and an invalid 2xx fail at once. Queue, spool and backoff-as-a-whole tests are in
``test_recorder_queue.py``; close, input and secrets in ``test_recorder_lifecycle.py``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import socket
import threading
import time
import uuid
from typing import Any

import pytest
from faultserver import (
    Behaviour,
    Connection,
    FaultServers,
    answer,
    close_without_answer,
    created_for_path,
    hang,
    held,
    keep_alive,
    refused_url,
    reset,
    reset_mid_body,
)
from recorder_support import (
    TOKEN,
    WAIT,
    Failures,
    Recorders,
    failures_into,
    offer,
    recorder_threads,
    wait_until,
)

from openapi_client.exceptions import (
    ApiConnectionError,
    ApiException,
    ApiResponseValidationError,
    ApiStatusError,
    ApiTimeoutError,
    BadRequestException,
    ConflictException,
    ForbiddenException,
    NotFoundException,
    RecorderError,
    ServiceException,
    UnauthorizedException,
    UnprocessableEntityException,
)
from openapi_client.models import OfferDisplay, SessionInit
from openapi_client.recorder import RecordedEvent
from openapi_client.testing.server import FakeEngineServer


def statuses(engine: FakeEngineServer) -> list[int | None]:
    return [request.status for request in engine.requests]


# -- delivered, exactly once ---------------------------------------------------------------------


def test_many_offer_displays_are_each_delivered_exactly_once(
    engine: FakeEngineServer, recorders: Recorders
) -> None:
    """200 offer displays: each recorded once by the server, each future holds its own model."""
    recorder = recorders(engine.url)
    events = [recorder.record_offer_display(offer()) for _ in range(200)]

    _, not_done = concurrent.futures.wait(events, timeout=WAIT)

    assert not not_done
    for event in events:
        assert isinstance(event, concurrent.futures.Future)
        result = event.result()
        assert isinstance(result, OfferDisplay)
        assert result.offer_uuid == event.request.offer_uuid
        assert result.lead_uuid == event.request.lead_uuid
    received = collections.Counter(display.offer_uuid for display in engine.offer_displays)
    assert received == collections.Counter(event.request.offer_uuid for event in events)
    assert set(received.values()) == {1}
    assert len(engine.requests) == 200
    assert recorder.flush(timeout=WAIT)
    stats = recorder.stats()
    assert (stats.enqueued, stats.sent, stats.pending, stats.failed, stats.dropped) == (
        200, 200, 0, 0, 0,
    )  # fmt: skip
    assert stats.retried == 0


def test_recorded_event_works_with_the_futures_toolkit(
    engine: FakeEngineServer, recorders: Recorders
) -> None:
    """``as_completed`` and ``add_done_callback`` work on what ``record_*`` returns."""
    recorder = recorders(engine.url)
    called: list[RecordedEvent[Any, Any]] = []
    called_lock = threading.Lock()

    def callback(future: concurrent.futures.Future[Any]) -> None:
        with called_lock:
            called.append(future)  # type: ignore[arg-type]

    events = [recorder.record_offer_display(offer()) for _ in range(10)]
    for event in events:
        event.add_done_callback(callback)

    completed = list(concurrent.futures.as_completed(events, timeout=WAIT))

    assert sorted(map(id, completed)) == sorted(map(id, events))
    assert recorder.flush(timeout=WAIT)
    assert sorted(map(id, called)) == sorted(map(id, events))


# -- retried when safe ---------------------------------------------------------------------------


def test_a_503_outage_then_recovery_loses_nothing(
    engine: FakeEngineServer, recorders: Recorders
) -> None:
    """Eight 503s, then success: every event ends sent exactly once, each 503 retried."""
    engine.fail_next(503, times=8)
    failures: Failures = []
    recorder = recorders(engine.url, on_error=failures_into(failures))
    events = [recorder.record_offer_display(offer()) for _ in range(40)]

    assert recorder.flush(timeout=WAIT)

    assert all(event.exception(timeout=0) is None for event in events)
    received = collections.Counter(display.offer_uuid for display in engine.offer_displays)
    assert received == collections.Counter(event.request.offer_uuid for event in events)
    assert collections.Counter(statuses(engine)) == {503: 8, 201: 40}
    stats = recorder.stats()
    assert (stats.sent, stats.failed, stats.pending) == (40, 0, 0)
    assert stats.retried == 8
    assert failures == []


@pytest.mark.parametrize("status", [408, 429, 502, 504])
def test_other_try_again_statuses_are_retried(
    engine: FakeEngineServer, recorders: Recorders, status: int
) -> None:
    """408, 429, 502 and 504 are retried like 503."""
    engine.fail_next(status, times=2)
    recorder = recorders(engine.url, workers=1)

    event = recorder.record_offer_display(offer())

    assert event.result(timeout=WAIT).offer_uuid == event.request.offer_uuid
    assert statuses(engine) == [status, status, 201]
    assert recorder.stats().retried == 2


def test_an_unreachable_api_gets_every_event_once_it_is_back(recorders: Recorders) -> None:
    """Nothing listens on the port, then a server starts there: all events arrive, once each."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # bound, not listening: refused
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    try:
        recorder = recorders(f"http://127.0.0.1:{port}", workers=2, delivery_timeout=30.0)
        events = [recorder.record_offer_display(offer()) for _ in range(20)]
        wait_until(lambda: recorder.stats().retried >= 2)  # refused, and tried again
        assert not any(event.done() for event in events)
    finally:
        holder.close()

    with FakeEngineServer(port=port, token=TOKEN) as engine:
        assert recorder.flush(timeout=WAIT)

        for event in events:
            assert event.result(timeout=0).offer_uuid == event.request.offer_uuid
        received = collections.Counter(display.offer_uuid for display in engine.offer_displays)
        assert received == collections.Counter(event.request.offer_uuid for event in events)
    stats = recorder.stats()
    assert (stats.sent, stats.failed, stats.dropped, stats.pending) == (20, 0, 0, 0)


def test_a_stale_keep_alive_connection_is_retried(
    servers: FaultServers, recorders: Recorders
) -> None:
    """A reused connection the server closed before reading the request: sent again, once."""
    server = servers(keep_alive(close_without_answer()), then=created_for_path())
    recorder = recorders(server.url, workers=1)
    first = recorder.record_offer_display(offer())
    first.result(timeout=WAIT)

    second = recorder.record_offer_display(offer())

    assert isinstance(second.result(timeout=WAIT), OfferDisplay)
    requests = server.requests
    assert [request.connection for request in requests] == [1, 1, 2]
    assert requests[1].body == requests[2].body
    assert recorder.stats().retried == 1


# -- ambiguous: not retried unless allowed -------------------------------------------------------


def test_a_500_fails_at_once_and_is_reported(
    engine: FakeEngineServer, recorders: Recorders
) -> None:
    """A 500: one attempt, the future holds a ServiceException, on_error once, failed 1."""
    engine.fail_next(500)
    failures: Failures = []
    recorder = recorders(engine.url, on_error=failures_into(failures))

    event = recorder.record_offer_display(offer())

    error = event.exception(timeout=WAIT)
    assert isinstance(error, ServiceException)
    assert error.status == 500
    assert recorder.flush(timeout=WAIT)
    assert statuses(engine) == [500]
    assert failures == [(event, error)]
    stats = recorder.stats()
    assert (stats.failed, stats.sent, stats.retried, stats.pending) == (1, 0, 0, 0)


AMBIGUOUS = [
    pytest.param(answer(500, [{"message": "boom"}]), ServiceException, None, id="500"),
    pytest.param(close_without_answer(), ApiConnectionError, "dropped", id="new-connection-FIN"),
    pytest.param(reset(), ApiConnectionError, "dropped", id="new-connection-RST"),
    pytest.param(hang(), ApiTimeoutError, "timeout", id="read-timeout"),
    pytest.param(
        reset_mid_body(201, {"id": 1, "padding": "x" * 200}),
        ApiConnectionError,
        "broken",
        id="broken-off",
    ),
]


@pytest.mark.parametrize(("behaviour", "error_class", "kind"), AMBIGUOUS)
def test_ambiguous_failures_are_not_retried_by_default(
    servers: FaultServers,
    recorders: Recorders,
    behaviour: Behaviour,
    error_class: type[ApiException],
    kind: str | None,
) -> None:
    """The server may have stored the event: one attempt, the error in the future, on_error."""
    server = servers(behaviour, then=created_for_path())
    failures: Failures = []
    recorder = recorders(server.url, timeout=(2.0, 0.3), on_error=failures_into(failures))

    event = recorder.record_offer_display(offer())

    error = event.exception(timeout=WAIT)
    assert isinstance(error, error_class)
    if kind is not None:
        assert isinstance(error, ApiConnectionError)
        assert error.kind == kind
    assert recorder.flush(timeout=WAIT)
    assert server.attempts == 1
    assert failures == [(event, error)]
    assert (recorder.stats().failed, recorder.stats().retried) == (1, 0)


@pytest.mark.parametrize(("behaviour", "error_class", "kind"), AMBIGUOUS)
def test_ambiguous_failures_are_retried_when_allowed(
    servers: FaultServers,
    recorders: Recorders,
    behaviour: Behaviour,
    error_class: type[ApiException],
    kind: str | None,
) -> None:
    """With ``retry_ambiguous=True`` the same failure is tried again and the event delivered."""
    server = servers(behaviour, then=created_for_path())
    failures: Failures = []
    recorder = recorders(
        server.url, timeout=(2.0, 0.3), retry_ambiguous=True, on_error=failures_into(failures)
    )

    event = recorder.record_offer_display(offer())

    assert isinstance(event.result(timeout=WAIT), OfferDisplay)
    assert server.attempts == 2
    assert recorder.stats().retried == 1
    assert failures == []


# -- fails at once -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, BadRequestException),
        (401, UnauthorizedException),
        (403, ForbiddenException),
        (404, NotFoundException),
        (409, ConflictException),
        (422, UnprocessableEntityException),
    ],
)
def test_other_4xx_fail_at_once(
    engine: FakeEngineServer, recorders: Recorders, status: int, error_class: type[ApiStatusError]
) -> None:
    """A 4xx that is not 408/429: one attempt, the status's exception, on_error once."""
    engine.fail_next(status)
    failures: Failures = []
    recorder = recorders(engine.url, on_error=failures_into(failures))

    event = recorder.record_offer_display(offer())

    error = event.exception(timeout=WAIT)
    assert type(error) is error_class
    assert recorder.flush(timeout=WAIT)
    assert statuses(engine) == [status]
    assert failures == [(event, error)]
    stats = recorder.stats()
    assert (stats.failed, stats.retried, stats.sent) == (1, 0, 0)


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(answer(201, {"id": "not an offer display"}), id="wrong-model"),
        pytest.param(answer(201, b"{not json"), id="not-json"),
        pytest.param(answer(200, b"<html></html>", content_type="text/html"), id="html"),
    ],
)
def test_an_invalid_2xx_fails_at_once(
    servers: FaultServers, recorders: Recorders, behaviour: Behaviour
) -> None:
    """A 2xx that is not the promised model: ApiResponseValidationError after one attempt."""
    server = servers(behaviour, then=created_for_path())
    failures: Failures = []
    recorder = recorders(server.url, on_error=failures_into(failures))

    event = recorder.record_offer_display(offer())

    error = event.exception(timeout=WAIT)
    assert isinstance(error, ApiResponseValidationError)
    assert recorder.flush(timeout=WAIT)
    assert server.attempts == 1
    assert failures == [(event, error)]
    assert (recorder.stats().failed, recorder.stats().retried) == (1, 0)


# -- session inits ---------------------------------------------------------------------------------


def test_session_init_without_uuid_gets_a_uuid4_known_before_the_answer(
    servers: FaultServers, recorders: Recorders
) -> None:
    """``record_session_init()`` makes a uuid4 at once, and that is the one the server gets."""
    release = threading.Event()
    server = servers(then=held(release, created_for_path()))
    recorder = recorders(server.url)

    event = recorder.record_session_init()
    session_uuid = event.request.session_uuid

    assert session_uuid is not None
    assert uuid.UUID(session_uuid).version == 4
    assert server.wait_for_attempts(1, timeout=WAIT)
    assert not event.done()  # known before the API answered
    release.set()
    assert isinstance(event.result(timeout=WAIT), SessionInit)
    assert [request.body for request in server.requests] == [
        f'{{"sessionUuid":"{session_uuid}"}}'.encode()
    ]


def test_session_inits_each_get_their_own_uuid(
    engine: FakeEngineServer, recorders: Recorders
) -> None:
    """Generated session UUIDs differ, and the server recorded exactly those."""
    recorder = recorders(engine.url)
    events = [recorder.record_session_init() for _ in range(5)] + [
        recorder.record_session_init({}),
        recorder.record_session_init({"sessionUuid": None}),
    ]

    assert recorder.flush(timeout=WAIT)

    sent = [event.request.session_uuid for event in events]
    assert len(set(sent)) == len(sent)
    assert sorted(s.session_uuid for s in engine.session_inits) == sorted(sent)
    for event in events:
        assert event.result(timeout=0).session_uuid == event.request.session_uuid


def test_session_init_with_a_uuid_keeps_it(engine: FakeEngineServer, recorders: Recorders) -> None:
    """A given ``sessionUuid`` is sent as it is (lower-cased like the synchronous call)."""
    given = uuid.uuid4()
    recorder = recorders(engine.url)

    by_text = recorder.record_session_init({"sessionUuid": str(given).upper()})
    by_uuid = recorder.record_session_init({"sessionUuid": given})

    assert by_text.request.session_uuid == by_uuid.request.session_uuid == str(given)
    assert recorder.flush(timeout=WAIT)
    assert [s.session_uuid for s in engine.session_inits] == [str(given), str(given)]
    assert by_text.result(timeout=0).session_uuid == str(given)


# -- sync=True -------------------------------------------------------------------------------------


def test_sync_delivers_before_returning(engine: FakeEngineServer, recorders: Recorders) -> None:
    """``sync=True``: the future is done when ``record_*`` returns and the server has the event."""
    before = recorder_threads()
    recorder = recorders(engine.url, sync=True)

    event = recorder.record_offer_display(offer())

    assert event.done()
    assert [d.offer_uuid for d in engine.offer_displays] == [event.request.offer_uuid]
    assert event.result(timeout=0).offer_uuid == event.request.offer_uuid
    session = recorder.record_session_init()
    assert session.done()
    assert [s.session_uuid for s in engine.session_inits] == [session.request.session_uuid]
    assert recorder_threads() <= before  # delivered in this thread: no worker started
    stats = recorder.stats()
    assert (stats.enqueued, stats.sent, stats.pending) == (2, 2, 0)


def test_sync_retries_a_503_in_the_calling_thread(
    engine: FakeEngineServer, recorders: Recorders
) -> None:
    """``sync=True`` and a 503: retried before ``record_*`` returns, in the caller's thread."""
    before = recorder_threads()
    engine.fail_next(503)
    recorder = recorders(engine.url, sync=True)

    event = recorder.record_offer_display(offer())

    assert event.done()
    assert event.result(timeout=0).offer_uuid == event.request.offer_uuid
    assert statuses(engine) == [503, 201]
    assert recorder.stats().retried == 1
    assert recorder_threads() <= before


def test_sync_failure_reports_in_the_calling_thread(
    engine: FakeEngineServer, recorders: Recorders
) -> None:
    """``sync=True`` and a 400: ``record_*`` does not raise; the future and on_error say it."""
    engine.fail_next(400)
    threads: list[int] = []
    recorder = recorders(
        engine.url, sync=True, on_error=lambda event, error: threads.append(threading.get_ident())
    )

    event = recorder.record_offer_display(offer())

    assert event.done()
    assert isinstance(event.exception(timeout=0), BadRequestException)
    assert threads == [threading.get_ident()]
    assert recorder.stats().failed == 1


# -- Retry-After, delivery_timeout ---------------------------------------------------------------


def timed(behaviour: Behaviour, arrivals: list[float]) -> Behaviour:
    """``behaviour``, noting when each request had arrived in full (monotonic clock)."""

    def run(conn: Connection) -> None:
        arrivals.append(time.monotonic())
        behaviour.run(conn)

    return Behaviour(f"timed {behaviour.name}", run)


@pytest.mark.parametrize("status", [503, 429])
def test_retry_after_is_honoured(servers: FaultServers, recorders: Recorders, status: int) -> None:
    """``Retry-After: 1``: the next attempt reaches the server no sooner than 1 s later."""
    arrivals: list[float] = []
    server = servers(
        timed(answer(status, b"", {"Retry-After": "1"}), arrivals),
        then=timed(created_for_path(), arrivals),
    )
    recorder = recorders(server.url, workers=1)

    event = recorder.record_offer_display(offer())

    assert isinstance(event.result(timeout=WAIT), OfferDisplay)
    assert server.attempts == 2
    assert arrivals[1] - arrivals[0] >= 1.0


def test_delivery_timeout_fails_events_while_the_api_is_unreachable(
    recorders: Recorders,
) -> None:
    """Refused for longer than ``delivery_timeout``: each future fails, with its own
    ApiConnectionError, or, for an event that never got an attempt while the gate was shut, a
    RecorderError caused by the outage (no error object shared between events); on_error once
    each, counted failed; ``flush()`` is then True. Within the timeout + 2 s."""
    failures: Failures = []
    with refused_url() as url:
        recorder = recorders(url, workers=2, delivery_timeout=0.5, on_error=failures_into(failures))
        started = time.monotonic()
        events = [recorder.record_offer_display(offer()) for _ in range(6)]

        _, not_done = concurrent.futures.wait(events, timeout=0.5 + 2.0)

        assert not not_done, (
            f"{len(not_done)} event(s) still pending {time.monotonic() - started:.1f} s on"
        )
        errors = [event.exception(timeout=0) for event in events]
        for error in errors:
            if not isinstance(error, ApiConnectionError):
                assert type(error) is RecorderError, error
                assert "delivery_timeout" in str(error)
                error = error.__cause__
            assert isinstance(error, ApiConnectionError)
            assert error.kind == "connect"
        assert len(set(map(id, errors))) == len(events)
        assert recorder.flush(timeout=1.0)
    assert sorted(map(id, (event for event, _ in failures))) == sorted(map(id, events))
    stats = recorder.stats()
    assert (stats.failed, stats.sent, stats.pending, stats.dropped) == (6, 0, 0, 0)
    assert stats.retried >= 1


def test_an_attempt_the_server_never_answers_ends_with_the_clients_read_timeout(
    servers: FaultServers, recorders: Recorders
) -> None:
    """A server that reads the request and never answers: the attempt ends when the client's
    timeout says (here 0.5 + 0.5 s), and the ambiguous timeout is not retried."""
    server = servers(then=hang())
    failures: Failures = []
    recorder = recorders(
        server.url, timeout=(0.5, 0.5), delivery_timeout=30, on_error=failures_into(failures)
    )

    event = recorder.record_offer_display(offer())

    error = event.exception(timeout=1.0 + 1.5)
    assert isinstance(error, ApiTimeoutError)
    assert error.kind == "timeout"
    assert failures == [(event, error)]
    assert server.attempts == 1


def test_delivery_timeout_does_not_cut_an_attempt_short(
    servers: FaultServers, recorders: Recorders
) -> None:
    """``delivery_timeout`` bounds retrying, not one attempt: a slow success is a success
    (cutting the attempt would make it an ambiguous failure the server had recorded)."""
    release = threading.Event()
    server = servers(held(release, created_for_path()))
    recorder = recorders(server.url, delivery_timeout=0.1)

    event = recorder.record_offer_display(offer())
    assert server.wait_for_attempts(1)
    deadline_passed = threading.Event()
    deadline_passed.wait(0.3)  # well past delivery_timeout while the server still holds it
    done_while_held = event.done()
    release.set()

    assert not done_while_held
    event.result(timeout=WAIT)
    assert recorder.stats().failed == 0
    assert server.attempts == 1
