"""``EventRecorder``'s life in one process: lazy worker threads, ``close`` (and ``with``), bad
input refused at once, ``on_error`` that raises, cancelled futures, and no token in anything
it hands back or logs. Real loopback servers throughout.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from faultserver import (
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
    assert_stats_add_up,
    failures_into,
    offer,
    offer_uuids,
    offer_uuids_received,
    recorder_threads,
    wait_until,
)

from openapi_client import ApiClient, Configuration, EventRecorder
from openapi_client.exceptions import (
    ApiConnectionError,
    ApiTypeError,
    ApiValueError,
    BadRequestException,
    OpenApiException,
    RecorderClosedError,
    RecorderSpooledError,
)
from openapi_client.models import OfferDisplay, OfferDisplayCreateData
from openapi_client.recorder import RecordedEvent
from openapi_client.recorder import _recorder as recorder_module
from openapi_client.testing.server import FakeEngineServer

# -- worker threads ------------------------------------------------------------------------------


def test_no_thread_starts_before_the_first_event(
    engine: FakeEngineServer, recorders: Recorders
) -> None:
    """Creating a recorder, ``stats()`` and ``flush()`` start no thread; the first event
    starts a sender thread, ``openapi_client-recorder-0``, which starts a spare to wait for
    the next (more start only while every sender is busy)."""
    before = set(threading.enumerate())
    recorder = recorders(engine.url, workers=3)
    recorder.stats()
    assert recorder.flush(timeout=0.1)
    assert set(threading.enumerate()) == before

    event = recorder.record_offer_display(offer())

    started = recorder_threads() - before
    names = sorted(t.name for t in started)
    assert names in (["openapi_client-recorder-0"], [f"openapi_client-recorder-{n}" for n in range(2)])
    assert all(t.daemon for t in started)
    assert isinstance(event.result(timeout=WAIT), OfferDisplay)


def test_close_ends_the_worker_threads(engine: FakeEngineServer, recorders: Recorders) -> None:
    """After ``close()`` this recorder's worker threads end (they do not linger)."""
    before = recorder_threads()
    recorder = recorders(engine.url, workers=2)
    recorder.record_offer_display(offer())
    workers = recorder_threads() - before
    assert 1 <= len(workers) <= 2

    recorder.close()

    for thread in workers:
        thread.join(2.0)
    assert [t.name for t in workers if t.is_alive()] == []


# -- close -----------------------------------------------------------------------------------------


def test_close_delivers_what_was_recorded_then_refuses_more(
    engine: FakeEngineServer, recorders: Recorders
) -> None:
    """``close()`` flushes (all 20 events at the server when it returns), then ``record_*``
    raises RecorderClosedError; a second ``close()`` is harmless."""
    recorder = recorders(engine.url)
    events = [recorder.record_offer_display(offer()) for _ in range(20)]

    recorder.close()

    assert all(event.done() for event in events)
    received = collections.Counter(d.offer_uuid for d in engine.offer_displays)
    assert received == collections.Counter(event.request.offer_uuid for event in events)
    with pytest.raises(RecorderClosedError):
        recorder.record_offer_display(offer())
    with pytest.raises(RecorderClosedError):
        recorder.record_session_init()
    recorder.close()
    recorder.close(timeout=0)
    stats = recorder.stats()
    assert (stats.enqueued, stats.sent, stats.pending) == (20, 20, 0)
    assert len(engine.requests) == 20


def test_with_statement_closes_the_recorder(engine: FakeEngineServer) -> None:
    """``with EventRecorder(...)`` delivers everything on the way out, then takes no more."""
    with engine.client(access_token=TOKEN) as client:
        with EventRecorder(client) as recorder:
            events = [recorder.record_offer_display(offer()) for _ in range(5)]
            session = recorder.record_session_init()

        assert all(event.done() for event in [*events, session])
        assert len(engine.offer_displays) == 5
        assert [s.session_uuid for s in engine.session_inits] == [session.request.session_uuid]
        with pytest.raises(RecorderClosedError):
            recorder.record_offer_display(offer())


def test_close_during_an_outage_settles_every_event(recorders: Recorders) -> None:
    """API unreachable, ``close(timeout=0.3)``: no future is left pending (each fails with
    RecorderClosedError or the connection error), on_error once per event, stats add up."""
    failures: Failures = []
    with refused_url() as url:
        recorder = recorders(url, workers=2, on_error=failures_into(failures))
        events = [recorder.record_offer_display(offer()) for _ in range(10)]

        recorder.close(timeout=0.3)

        _, not_done = concurrent.futures.wait(events, timeout=2.0)
    assert not not_done, f"{len(not_done)} of 10 futures never settled after close()"
    for event in events:
        assert isinstance(event.exception(timeout=0), RecorderClosedError | ApiConnectionError)
    assert sorted(map(id, (event for event, _ in failures))) == sorted(map(id, events))
    assert recorder.stats().pending == 0
    assert_stats_add_up(recorder)


def test_events_left_by_a_closed_recorder_go_to_the_next_one_on_the_spool(
    recorders: Recorders, tmp_path: Path
) -> None:
    """Closed during an outage, a spooling recorder leaves its events on disk, free: the next
    recorder on that spool (same process) delivers all of them at its first flush."""
    spool = tmp_path / "spool.db"
    with refused_url() as url:
        first = recorders(url, workers=2, spool=spool)
        events = [first.record_offer_display(offer()) for _ in range(6)]
        first.close(timeout=0.3)
        assert first.stats().spooled == 6

    with FakeEngineServer(token=TOKEN) as engine:
        second = recorders(engine.url, spool=spool)

        assert second.flush(timeout=3.0)

        received = collections.Counter(d.offer_uuid for d in engine.offer_displays)
        left = second.stats().spooled
        assert left == 0, f"{left} of 6 events still in the spool, out of the next recorder's reach"
        assert received == collections.Counter(event.request.offer_uuid for event in events)


def test_recording_while_another_thread_closes(engine: FakeEngineServer) -> None:
    """Threads record until ``record_*`` raises RecorderClosedError while ``close()`` runs:
    every event it accepted settles (delivered or failed visibly), none is left pending."""
    with engine.client(access_token=TOKEN) as client:
        recorder = EventRecorder(client, workers=2)
        accepted: list[RecordedEvent[Any, Any]] = []
        lock = threading.Lock()
        enough = threading.Event()
        errors: list[BaseException] = []

        def record() -> None:
            try:
                while True:
                    event = recorder.record_offer_display(offer())
                    with lock:
                        accepted.append(event)
                        if len(accepted) >= 100:
                            enough.set()
            except RecorderClosedError:
                return
            except BaseException as error:
                errors.append(error)
                enough.set()

        threads = [threading.Thread(target=record) for _ in range(4)]
        for thread in threads:
            thread.start()
        assert enough.wait(WAIT)
        recorder.close(timeout=WAIT)
        for thread in threads:
            thread.join(WAIT)

        assert errors == []
        _, not_done = concurrent.futures.wait(accepted, timeout=5.0)
        assert not not_done, f"{len(not_done)} accepted event(s) never settled"
        assert recorder.stats().pending == 0
        assert_stats_add_up(recorder)
        delivered = [e for e in accepted if e.exception(timeout=0) is None]
        assert len(engine.offer_displays) == len(delivered)


# -- cancel ----------------------------------------------------------------------------------------


def test_cancel_does_not_unrecord_an_event(
    servers: FaultServers, recorders: Recorders, release: threading.Event
) -> None:
    """Issue 14 item 6: a recorded event is a commitment. ``cancel()`` on a queued event
    returns False and the event is still sent, with the others."""
    server = servers(held(release, created_for_path()), then=created_for_path())
    recorder = recorders(server.url, workers=1)
    sending = recorder.record_offer_display(offer())
    assert server.wait_for_attempts(1, timeout=WAIT)
    kept = recorder.record_offer_display(offer())
    assert kept.cancel() is False
    after = recorder.record_offer_display(offer())

    release.set()

    assert recorder.flush(timeout=WAIT)
    assert not kept.cancelled()
    for event in (sending, kept, after):
        assert isinstance(event.result(timeout=0), OfferDisplay)
    assert server.attempts == 3
    assert recorder.stats().pending == 0


# -- on_error ------------------------------------------------------------------------------------


def test_on_error_that_raises_is_logged_and_delivery_goes_on(
    engine: FakeEngineServer, recorders: Recorders, caplog: pytest.LogCaptureFixture
) -> None:
    """on_error raising: logged with its traceback, called exactly once per failed event,
    and the other events are still delivered by the same worker."""
    engine.fail_next(400, times=3)
    calls: list[tuple[RecordedEvent[Any, Any], OpenApiException]] = []

    def on_error(event: RecordedEvent[Any, Any], error: OpenApiException) -> None:
        calls.append((event, error))
        raise RuntimeError("on_error is broken")

    recorder = recorders(engine.url, workers=1, on_error=on_error)
    caplog.set_level(logging.ERROR, logger="openapi_client")
    events = [recorder.record_offer_display(offer()) for _ in range(10)]

    assert recorder.flush(timeout=WAIT)

    assert [event for event, _ in calls] == events[:3]
    assert all(isinstance(error, BadRequestException) for _, error in calls)
    assert [event.exception(timeout=0) for event in events[:3]] == [e for _, e in calls]
    assert all(isinstance(event.result(timeout=0), OfferDisplay) for event in events[3:])
    raised = [
        r for r in caplog.records if r.exc_info and "on_error is broken" in str(r.exc_info[1])
    ]
    assert len(raised) == 3
    stats = recorder.stats()
    assert (stats.failed, stats.sent, stats.pending) == (3, 7, 0)


def test_on_error_is_not_called_for_delivered_events(
    engine: FakeEngineServer, recorders: Recorders
) -> None:
    """Only failures reach on_error."""
    failures: Failures = []
    recorder = recorders(engine.url, on_error=failures_into(failures))
    for _ in range(10):
        recorder.record_offer_display(offer())
    assert recorder.flush(timeout=WAIT)
    assert failures == []


# -- bad input -------------------------------------------------------------------------------------

_LEAD, _RATE, _OFFER = (str(uuid.uuid4()) for _ in range(3))
_GOOD = {"leadUuid": _LEAD, "rateTableUuid": _RATE, "offerUuid": _OFFER}


@pytest.mark.parametrize(
    ("body", "error_class", "names"),
    [
        pytest.param({**_GOOD, "leadUuid": "not-a-uuid"}, ApiValueError, "leadUuid", id="bad-uuid"),
        pytest.param({**_GOOD, "offerUuid": 42}, ApiTypeError, "offerUuid", id="int-uuid"),
        pytest.param({**_GOOD, "colour": "red"}, ApiValueError, "colour", id="unknown-key"),
        pytest.param(
            {"leadUuid": _LEAD, "offerUuid": _OFFER}, ApiValueError, "rateTableUuid", id="missing"
        ),
        pytest.param([_LEAD, _RATE, _OFFER], ApiTypeError, "offer_display_create_data", id="list"),
        pytest.param(None, ApiValueError, "offer_display_create_data", id="none"),
        pytest.param(
            OfferDisplayCreateData.model_construct(
                lead_uuid="bad", rate_table_uuid=_RATE, offer_uuid=_OFFER
            ),
            ApiValueError,
            "lead_uuid",
            id="unvalidated-model",
        ),
    ],
)
def test_bad_offer_display_is_refused_at_once_and_nothing_is_queued(
    engine: FakeEngineServer,
    recorders: Recorders,
    body: Any,
    error_class: type[OpenApiException],
    names: str,
) -> None:
    """A bad body raises (naming the field) in ``record_offer_display``; nothing is queued,
    no thread starts, the server sees nothing."""
    before = recorder_threads()
    recorder = recorders(engine.url)

    with pytest.raises(error_class) as raised:
        recorder.record_offer_display(body)

    assert names in str(raised.value)
    assert recorder.stats().enqueued == 0
    assert recorder_threads() == before
    assert recorder.flush(timeout=1.0)
    assert engine.requests == []


@pytest.mark.parametrize(
    ("body", "error_class", "names"),
    [
        pytest.param({"sessionUuid": "nope"}, ApiValueError, "sessionUuid", id="bad-uuid"),
        pytest.param({"sessionUuid": 7}, ApiTypeError, "sessionUuid", id="int-uuid"),
        pytest.param(
            {"sessionUuid": str(uuid.uuid4()), "x": 1}, ApiValueError, "x:", id="unknown-key"
        ),
        pytest.param("sessionUuid", ApiTypeError, "session_init_create_data", id="str"),
    ],
)
def test_bad_session_init_is_refused_at_once_and_nothing_is_queued(
    engine: FakeEngineServer,
    recorders: Recorders,
    body: Any,
    error_class: type[OpenApiException],
    names: str,
) -> None:
    """A bad session init body raises (naming the field) in ``record_session_init``; nothing
    is queued or sent."""
    recorder = recorders(engine.url)

    with pytest.raises(error_class) as raised:
        recorder.record_session_init(body)

    assert names in str(raised.value)
    assert recorder.stats().enqueued == 0
    assert recorder.flush(timeout=1.0)
    assert engine.requests == []


# -- no token anywhere -----------------------------------------------------------------------------


def test_no_token_in_failures_callbacks_or_logs(
    servers: FaultServers, caplog: pytest.LogCaptureFixture
) -> None:
    """Failures whose answers echo the token (401 body, header and reason; a 500 body; an
    invalid 2xx; a 400 error array; 503s past delivery_timeout): the token is in no future's
    exception (str, repr, attributes), no on_error argument, and no log record at DEBUG."""
    token = f"pk_test_{uuid.uuid4().hex}"
    server = servers(
        answer(
            401,
            [{"message": f"token {token} is not valid"}],
            {"WWW-Authenticate": f'Bearer realm="{token}"'},
            reason=f"Unauthorized {token}",
        ),
        answer(500, f"internal error while handling Bearer {token}", content_type="text/plain"),
        answer(201, {"echo": token}),
        answer(400, [{"message": f"Authorization: Bearer {token}", "attribute": token}]),
        then=answer(503, f"busy, come back with {token}", content_type="text/plain"),
    )
    caplog.set_level(logging.DEBUG)
    failures: Failures = []
    client = ApiClient(Configuration(host=server.url, access_token=token, retries=FAST))
    recorder = EventRecorder(
        client, workers=1, delivery_timeout=0.5, on_error=failures_into(failures)
    )
    try:
        events = [recorder.record_offer_display(offer()) for _ in range(5)]
        _, not_done = concurrent.futures.wait(events, timeout=WAIT)
        assert not not_done
    finally:
        recorder.close(timeout=1.0)
        client.close()

    assert len(failures) == 5
    seen: list[str] = [caplog.text]
    for event in events:
        error = event.exception(timeout=0)
        assert error is not None
        seen += [str(error), repr(error), repr(vars(error)), str(event), repr(event.request)]
    for event, error in failures:
        seen += [str(event), repr(event), str(error), repr(error), repr(vars(error))]
    assert server.attempts >= 6
    assert "HTTP request" in caplog.text  # the client logged at DEBUG: its records were seen
    leaks = [text for text in seen if token in text]
    assert leaks == []


# -- close racing record_* -------------------------------------------------------------------------


class _CloseDuringRecord:
    """Makes ``close()`` run at the worst moment: after ``record_*`` passed its first "closed?"
    check and before it queued the event (the interleaving another thread would need luck
    for). Patches the recorder module's event class, so ``close()`` runs in its constructor."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, recorder: EventRecorder) -> None:
        original = recorder_module.RecordedEvent

        class Racing(original):  # type: ignore[valid-type, misc]
            def __init__(self, *args: Any) -> None:
                monkeypatch.setattr(recorder_module, "RecordedEvent", original)
                recorder.close(timeout=0.5)
                super().__init__(*args)

        monkeypatch.setattr(recorder_module, "RecordedEvent", Racing)


def test_an_event_recorded_while_close_runs_is_refused_or_settled(
    engine: FakeEngineServer, recorders: Recorders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory only: ``close()`` between the check and the queueing. The event is refused
    (RecorderClosedError), never left in a queue nobody reads: nothing stays pending."""
    recorder = recorders(engine.url)
    assert recorder.record_session_init().result(timeout=WAIT)  # workers running
    _CloseDuringRecord(monkeypatch, recorder)

    with pytest.raises(RecorderClosedError):
        recorder.record_session_init()

    assert recorder.stats().pending == 0
    assert recorder.flush(timeout=0.1)


def test_an_event_recorded_with_a_spool_while_close_runs_is_refused_and_not_written(
    engine: FakeEngineServer,
    recorders: Recorders,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """With a spool, ``close()`` between the check and the write: the event is refused
    (RecorderClosedError) before anything reaches the file, so no row outlives the refusal."""
    spool = tmp_path / "spool.db"
    first = recorders(engine.url, spool=spool)
    _CloseDuringRecord(monkeypatch, first)

    with pytest.raises(RecorderClosedError):
        first.record_offer_display(offer())

    assert first.stats().pending == 0
    second = recorders(engine.url, spool=spool)
    assert second.flush(timeout=WAIT)
    assert second.stats().spooled == 0
    assert engine.offer_displays == []


def test_close_settles_the_futures_of_events_left_in_the_spool(
    servers: FaultServers, recorders: Recorders, release: threading.Event, tmp_path: Path
) -> None:
    """A full memory queue, the overflow on disk, ``close()`` while the server holds the one
    request in flight: each event left on disk has a future that says RecorderSpooledError
    (not a failure: no on_error) and stays pending here, and the next recorder delivers the
    rest exactly once."""
    server = servers(held(release, created_for_path()), then=created_for_path())
    failures: Failures = []
    spool = tmp_path / "spool.db"
    first = recorders(
        server.url, max_queue=1, workers=1, spool=spool, on_error=failures_into(failures)
    )
    sending = first.record_offer_display(offer())
    assert server.wait_for_attempts(1, timeout=WAIT)
    queued = first.record_offer_display(offer())  # the one place in the memory queue
    on_disk = [first.record_offer_display(offer()) for _ in range(4)]

    first.close(timeout=0.2)

    assert first.stats().pending == 6  # one held by the server, five waiting in the spool
    for event in [queued, *on_disk]:
        assert isinstance(event.exception(timeout=0), RecorderSpooledError)
    assert failures == []
    assert first.stats().dropped == 0
    release.set()
    assert isinstance(sending.result(timeout=WAIT), OfferDisplay)
    wait_until(lambda: first.stats().pending == 5)
    second = recorders(server.url, spool=spool)
    assert second.flush(timeout=WAIT)
    assert offer_uuids_received(server) == offer_uuids([sending, queued, *on_disk])


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists open files via /proc")
def test_close_closes_the_spool_file(engine: FakeEngineServer, tmp_path: Path) -> None:
    """After ``close()`` no handle on the spool (or its -wal and -shm) stays open: the file can
    be moved or deleted, and a long-lived process making recorders leaks nothing."""
    spool = tmp_path / "spool.db"

    def open_on_spool() -> list[str]:
        targets = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                targets.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                continue
        return [target for target in targets if target.startswith(str(spool))]

    with engine.client(access_token=TOKEN) as client:
        recorder = EventRecorder(client, spool=spool)
        assert recorder.record_session_init().result(timeout=WAIT)
        assert open_on_spool()

        recorder.close()

        assert open_on_spool() == []
        assert recorder.stats().spooled == 0  # still answers, reading the file
        assert open_on_spool() == []
