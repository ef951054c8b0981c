"""Waiting on the fake: when a wait returns, the request, its status and its event are visible.

The application under test often sends from another thread (a worker, a background queue).
These tests send from a thread, wait, then read at once: no sleeps, many times over. Before
a request was stored together with its event, ``wait_for_requests`` returned on arrival and
``offer_displays`` was still empty in most runs of the first test. ``fake_engine`` and
``fake_engine_api`` are the SDK's own pytest fixtures, as its users get them.
"""

from __future__ import annotations

import http.client
import threading

import pytest
from samples import LEAD, OFFER, OFFER_BODY

from openapi_client import (
    ApiConnectionError,
    OfferDisplay,
    ServiceException,
    SessionInit,
    UIEventsApi,
    UnauthorizedException,
)
from openapi_client.testing import FakeEngineServer

ITERATIONS = 200


def in_thread(target: object) -> threading.Thread:
    thread = threading.Thread(target=target)  # type: ignore[arg-type]
    thread.start()
    return thread


def test_after_wait_for_requests_the_event_is_visible_every_time(
    fake_engine: FakeEngineServer, fake_engine_api: UIEventsApi
) -> None:
    for done in range(1, ITERATIONS + 1):
        thread = in_thread(lambda: fake_engine_api.create_offer_display(OFFER_BODY))

        assert fake_engine.wait_for_requests(done)
        assert len(fake_engine.offer_displays) == done
        assert fake_engine.requests[-1].status == 201
        assert fake_engine.requests[-1].event == fake_engine.offer_displays[-1]
        thread.join()


def test_after_wait_for_events_the_requests_that_made_them_are_visible_every_time(
    fake_engine: FakeEngineServer, fake_engine_api: UIEventsApi
) -> None:
    for done in range(1, ITERATIONS + 1):
        thread = in_thread(fake_engine_api.create_session_init)

        sessions = fake_engine.wait_for_events("session_init", done)
        assert len(sessions) == done
        assert len(fake_engine.requests) == done
        assert fake_engine.requests[-1].event == sessions[-1]
        thread.join()


def test_the_client_that_has_the_answer_sees_the_request_recorded(
    fake_engine: FakeEngineServer, fake_engine_api: UIEventsApi
) -> None:
    for done in range(1, ITERATIONS + 1):
        fake_engine_api.create_session_init()
        assert len(fake_engine.requests) == done
        assert fake_engine.requests[-1].status == 201


def test_wait_for_events_takes_the_model_class_and_returns_typed_copies(
    fake_engine: FakeEngineServer, fake_engine_api: UIEventsApi
) -> None:
    thread = in_thread(lambda: fake_engine_api.create_offer_display(OFFER_BODY))

    (display,) = fake_engine.wait_for_events(OfferDisplay, 1)
    thread.join()
    assert isinstance(display, OfferDisplay)
    assert display.offer_uuid == OFFER
    display.offer_uuid = LEAD  # a copy: the record is unchanged
    assert fake_engine.offer_displays[0].offer_uuid == OFFER
    assert fake_engine.wait_for_events(SessionInit, 0) == []


def test_wait_for_events_timeout_says_what_was_recorded_and_answered(
    fake_engine: FakeEngineServer,
) -> None:
    no_token = fake_engine.client(access_token=None, retries=0)
    no_bearer = {"in": "cookie", "key": "session", "value": "no-bearer-token"}
    with no_token as api_client, pytest.raises(UnauthorizedException):
        UIEventsApi(api_client).create_offer_display(OFFER_BODY, _request_auth=no_bearer)

    with pytest.raises(AssertionError) as caught:
        fake_engine.wait_for_events("offer_display", 1, timeout=0)

    message = str(caught.value)
    assert "waited 0 s for 1 offer displays; 0 recorded" in message
    assert "POST /uiEvent/offerDisplays -> 401, recorded nothing" in message


def test_wait_for_events_refuses_an_unknown_kind(fake_engine: FakeEngineServer) -> None:
    for kind in ("offer_displays", "OfferDisplay", dict):
        with pytest.raises(ValueError, match="unknown event kind"):
            fake_engine.wait_for_events(kind, 1, timeout=0)  # type: ignore[call-overload]


def test_a_request_held_by_a_delay_counts_only_when_in_flight_ones_are_included(
    fake_engine: FakeEngineServer,
) -> None:
    fake_engine.delay_next(60)  # cut short when the server stops
    conn = http.client.HTTPConnection("127.0.0.1", fake_engine.port, timeout=30)
    conn.request("POST", "/uiEvent/sessionInits", headers={"Authorization": "Bearer t"})

    assert fake_engine.wait_for_requests(1, include_in_flight=True)
    assert fake_engine.wait_for_requests(1, timeout=0) is False
    assert fake_engine.requests == []
    fake_engine.stop()
    conn.close()
    (request,) = fake_engine.requests
    assert request.status is None
    assert request.event is None


def test_requests_record_their_status_and_event(fake_engine: FakeEngineServer) -> None:
    with fake_engine.client(retries=0) as api_client:
        api = UIEventsApi(api_client)
        display = api.create_offer_display(OFFER_BODY)
        fake_engine.drop_next()
        with pytest.raises(ApiConnectionError):
            api.create_session_init()
        fake_engine.fail_next(503)
        with pytest.raises(ServiceException):
            api.create_session_init()

    created, dropped, failed = fake_engine.requests
    assert (created.status, created.event) == (201, display)
    assert (dropped.status, dropped.event) == (None, None)
    assert (failed.status, failed.event) == (503, None)
    assert "recorded offer display id=1" in created.describe()
