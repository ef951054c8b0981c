"""The fake's assertion helpers: what was recorded, which token was sent, and their messages.

``fake_engine`` and ``fake_engine_api`` are the SDK's own pytest fixtures, as its users get them.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid

import pytest
import urllib3
from samples import LEAD, OFFER, RATE_TABLE, SESSION

from openapi_client import (
    OfferDisplayCreateData,
    RetryPolicy,
    ServiceException,
    SessionInitCreateData,
    UIEventsApi,
    UnauthorizedException,
)
from openapi_client.testing import CLIENT_TOKEN, FakeEngineServer, RecordedRequest

pytest_plugins = ["pytester"]

OTHER_OFFER = "5b0f1f4e-8b3c-4d7a-9a51-2f3f0c9d7e11"

NO_BEARER = {"in": "cookie", "key": "session", "value": "no-bearer-token"}
"""A credential that is not a bearer token: the SDK sends the call, the fake answers 401."""


def offer(offer_uuid: str = OFFER) -> dict[str, str]:
    return {"leadUuid": LEAD, "rateTableUuid": RATE_TABLE, "offerUuid": offer_uuid}


# -- assert_recorded -------------------------------------------------------------------------


def test_assert_recorded_passes_on_fields_in_any_order_and_any_spelling(
    fake_engine: FakeEngineServer, fake_engine_api: UIEventsApi
) -> None:
    fake_engine_api.create_offer_display(offer(OTHER_OFFER))
    fake_engine_api.create_offer_display(offer())
    fake_engine_api.create_session_init({"sessionUuid": SESSION})

    fake_engine.assert_recorded(
        offer_displays=[
            {"offer_uuid": uuid.UUID(OFFER)},  # Python name, uuid.UUID
            OfferDisplayCreateData(
                lead_uuid=LEAD, rate_table_uuid=RATE_TABLE, offer_uuid=OTHER_OFFER
            ),
        ],
        session_inits=[{"sessionUuid": SESSION.upper()}],  # JSON name, upper case
    )
    fake_engine.assert_recorded(offer_displays=2, session_inits=[SessionInitCreateData()])
    fake_engine.assert_recorded(session_inits=1)  # offer displays not checked


def test_a_missing_event_is_reported_with_what_was_recorded_and_the_nearest_miss(
    fake_engine: FakeEngineServer, fake_engine_api: UIEventsApi
) -> None:
    fake_engine_api.create_offer_display(offer())
    fake_engine_api.create_offer_display(offer(OTHER_OFFER))

    with pytest.raises(AssertionError) as caught:
        fake_engine.assert_recorded(
            offer_displays=[{"offer_uuid": OFFER}, {"offer_uuid": LEAD}],
            session_inits=0,
        )

    message = str(caught.value)
    assert "offer displays: expected 2, recorded 2: MISMATCH" in message
    assert f"ok       expected #1 {{offer_uuid='{OFFER}'}}: recorded offer display id=1" in message
    assert f"MISSING  expected #2 {{offer_uuid='{LEAD}'}}" in message
    assert f"nearest (id=2): offer_uuid: expected '{LEAD}', recorded '{OTHER_OFFER}'" in message
    assert f"EXTRA    not expected: recorded offer display id=2 lead_uuid={LEAD}" in message
    assert "session inits: as expected (0 recorded)" in message


def test_a_failure_lists_the_requests_that_recorded_nothing(fake_engine: FakeEngineServer) -> None:
    with (
        fake_engine.client(access_token=None, retries=0) as api_client,
        pytest.raises(UnauthorizedException),
    ):
        UIEventsApi(api_client).create_offer_display(offer(), _request_auth=NO_BEARER)
    fake_engine.fail_next(503)
    with fake_engine.client(retries=0) as api_client, pytest.raises(ServiceException):
        UIEventsApi(api_client).create_offer_display(offer())

    with pytest.raises(AssertionError) as caught:
        fake_engine.assert_recorded(offer_displays=[offer()])

    message = str(caught.value)
    assert "MISSING  expected #1" in message
    assert "nothing of this kind was recorded" in message
    assert "requests that recorded nothing (oldest first):" in message
    assert "POST /uiEvent/offerDisplays -> 401, recorded nothing" in message
    assert "POST /uiEvent/offerDisplays -> 503, recorded nothing" in message


def test_expecting_the_same_event_twice_needs_two_events(
    fake_engine: FakeEngineServer, fake_engine_api: UIEventsApi
) -> None:
    fake_engine_api.create_offer_display(offer())

    with pytest.raises(AssertionError, match="fits, but is paired with another item"):
        fake_engine.assert_recorded(offer_displays=[offer(), offer()])


def test_a_count_mismatch_lists_what_was_recorded(
    fake_engine: FakeEngineServer, fake_engine_api: UIEventsApi
) -> None:
    fake_engine_api.create_session_init({"sessionUuid": SESSION})

    with pytest.raises(AssertionError) as caught:
        fake_engine.assert_recorded(session_inits=2)

    assert "session inits: expected 2, recorded 1: MISMATCH" in str(caught.value)
    assert f"recorded session init id=1 session_uuid={SESSION}" in str(caught.value)


def test_assert_recorded_can_wait_for_a_thread(
    fake_engine: FakeEngineServer, fake_engine_api: UIEventsApi
) -> None:
    thread = threading.Thread(target=lambda: fake_engine_api.create_offer_display(offer()))
    thread.start()

    fake_engine.assert_recorded(offer_displays=[offer()], timeout=10)
    thread.join()


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({}, ValueError),
        ({"offer_displays": [{"offer": OFFER}]}, ValueError),
        ({"session_inits": [{"lead_uuid": LEAD}]}, ValueError),
        ({"offer_displays": "1"}, TypeError),
        ({"offer_displays": [OFFER]}, TypeError),
    ],
)
def test_assert_recorded_refuses_expectations_it_cannot_check(
    fake_engine: FakeEngineServer, arguments: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        fake_engine.assert_recorded(**arguments)  # type: ignore[arg-type]


# -- the token -------------------------------------------------------------------------------


def unique_token() -> str:
    return f"pk_secret_{uuid.uuid4().hex}"


def test_assert_token_passes_when_every_api_request_sent_it(fake_engine: FakeEngineServer) -> None:
    token = unique_token()
    with fake_engine.client(access_token=token) as api_client:
        api = UIEventsApi(api_client)
        api.create_session_init()
        api.create_offer_display(offer())
        urllib3.request("GET", api.offer_display_pixel_url(LEAD, RATE_TABLE, OFFER), timeout=5)

    fake_engine.assert_token(token)
    assert all(request.token_matches(token) for request in fake_engine.requests[:2])
    assert not fake_engine.requests[0].token_matches(token + "x")
    assert not fake_engine.requests[2].token_matches(token)  # the pixel carries none


def test_assert_token_names_the_requests_with_another_token_but_never_a_token(
    fake_engine: FakeEngineServer,
) -> None:
    sent, expected = unique_token(), unique_token()
    with fake_engine.client(access_token=sent) as api_client:
        UIEventsApi(api_client).create_session_init()
    with (
        fake_engine.client(access_token=None, retries=0) as api_client,
        pytest.raises(UnauthorizedException),
    ):
        UIEventsApi(api_client).create_session_init(_request_auth=NO_BEARER)

    with pytest.raises(AssertionError) as caught:
        fake_engine.assert_token(expected)

    message = str(caught.value)
    assert "1 carried another bearer token" in message
    assert "1 carried no bearer token" in message
    assert "POST /uiEvent/sessionInits -> 201" in message
    assert sent not in message
    assert expected not in message


def test_assert_token_fails_when_no_request_needed_a_token(fake_engine: FakeEngineServer) -> None:
    with pytest.raises(AssertionError, match="no request reached the routes that need a token"):
        fake_engine.assert_token("pk_anything")
    with pytest.raises(ValueError, match="non-empty"):
        fake_engine.assert_token("")


def test_the_token_is_in_no_repr_field_or_log_of_a_recorded_request(
    fake_engine: FakeEngineServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = unique_token()
    with fake_engine.client(access_token=token) as api_client:
        UIEventsApi(api_client).create_session_init()

    (request,) = fake_engine.requests
    assert request.token_matches(token)
    shown = [repr(request), str(dataclasses.asdict(request)), request.describe(), caplog.text]
    assert not any(token in text for text in shown)
    assert request.headers["Authorization"] == "Bearer [REDACTED]"


def test_a_credential_in_the_query_string_stays_out_of_the_fakes_log_and_messages(
    fake_engine: FakeEngineServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="openapi_client.testing")
    secret = unique_token()
    auth = {"in": "query", "key": "token", "value": secret}  # replaces the bearer token: 401
    with fake_engine.client(retries=0) as api_client, pytest.raises(UnauthorizedException):
        UIEventsApi(api_client).create_session_init(_request_auth=auth)

    (request,) = fake_engine.requests
    assert secret in request.path  # the record keeps what was sent ...
    assert "/uiEvent/sessionInits?... " in caplog.text  # ... the log does not
    assert secret not in caplog.text
    assert secret not in request.describe()


def test_a_request_made_by_hand_matches_no_token() -> None:
    request = RecordedRequest("POST", "/uiEvent/sessionInits", {}, b"")
    assert not request.token_matches("pk_anything")


# -- client() and the fixture ----------------------------------------------------------------


def test_client_points_at_the_fake_with_its_token_and_fast_retries() -> None:
    with FakeEngineServer(token="pk_only") as engine, engine.client() as api_client:
        configuration = api_client.configuration
        assert configuration.host == engine.url
        assert configuration.retries.initial_backoff == 0.01
        engine.fail_next(503, times=2)  # no Retry-After: the policy's own backoff applies

        UIEventsApi(api_client).create_session_init()

        engine.assert_token("pk_only")
        assert [request.status for request in engine.requests] == [503, 503, 201]


def test_client_settings_win_over_its_defaults(fake_engine: FakeEngineServer) -> None:
    fake_engine.fail_next(503)
    with fake_engine.client(retries=0) as api_client, pytest.raises(ServiceException):
        UIEventsApi(api_client).create_session_init()
    with fake_engine.client() as api_client:
        UIEventsApi(api_client).create_session_init()
    fake_engine.assert_token(CLIENT_TOKEN)  # what client() sends to a server that takes any token
    policy = RetryPolicy(max_retries=5)
    with fake_engine.client(retries=policy) as api_client:
        assert api_client.configuration.retries == policy


def test_on_request_reports_every_finished_request_and_survives_its_own_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[RecordedRequest] = []

    def report(request: RecordedRequest) -> None:
        seen.append(request)
        if request.status == 404:
            raise RuntimeError("a broken callback")

    with FakeEngineServer(on_request=report) as engine, engine.client() as api_client:
        assert urllib3.request("GET", engine.url + "/nowhere", timeout=5).status == 404
        UIEventsApi(api_client).create_session_init()

    # Each callback runs in its handler thread after the response went out, so two requests'
    # callbacks may run in either order.
    assert sorted((request.path, request.status) for request in seen) == [
        ("/nowhere", 404),
        ("/uiEvent/sessionInits", 201),
    ]
    assert "on_request callback failed" in caplog.text


def test_fake_engine_api_fixture_is_ready_to_call(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["openapi_client.testing.pytest_plugin"]\n')
    pytester.makepyfile(
        f"""
        def test_fixture(fake_engine, fake_engine_api):
            fake_engine.fail_next(503, times=2)
            fake_engine_api.create_session_init({{"sessionUuid": "{SESSION}"}})
            fake_engine.assert_recorded(session_inits=[{{"session_uuid": "{SESSION}"}}])
            assert fake_engine_api.api_client.configuration.host == fake_engine.url
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
