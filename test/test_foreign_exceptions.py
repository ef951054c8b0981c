"""No exception from outside ``openapi_client.exceptions`` escapes a call.

Inputs that today reach urllib3, the socket layer, pydantic's serializer or ``float()``
unchecked: a ``Retry-After`` of Unicode digits, a pool resized while calls are in flight, and
bodies built without validation (``model_construct``, ``model_copy``). Each must end in an SDK
exception (or a success), and a refused body must not reach the server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from faultserver import FaultServers, answer, created_for_path
from samples import LEAD, OFFER, OFFER_BODY, RATE_TABLE, offer_display_answer, session_init_answer
from support import RecordingServer, race

from openapi_client import (
    ApiClient,
    Configuration,
    OfferDisplay,
    OfferDisplayCreateData,
    RetryPolicy,
    SessionInitCreateData,
    UIEventsApi,
)
from openapi_client.exceptions import ApiValueError, OpenApiException, ServiceException

FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.02)


# -- Retry-After -----------------------------------------------------------------------------------


@pytest.mark.parametrize("retry_after", ["²", "1³", "¹"])
@pytest.mark.parametrize("retries", [FAST, 0], ids=["retrying", "no retries"])
def test_retry_after_in_unicode_digits_is_treated_as_invalid(
    servers: FaultServers, retry_after: str, retries: RetryPolicy | int
) -> None:
    """``Retry-After: ²`` is no number of seconds: the call retries or ends in ServiceException."""
    server = servers(
        answer(503, [{"message": "busy"}], {"Retry-After": retry_after}),
        then=answer(201, offer_display_answer()),
    )
    config = Configuration(host=server.url, access_token="token-123", retries=retries)
    outcome: Any
    with ApiClient(config) as client:
        try:
            outcome = UIEventsApi(client).create_offer_display(OFFER_BODY)
        except Exception as error:
            outcome = error
    if retries == 0:
        assert isinstance(outcome, ServiceException), repr(outcome)
        assert server.attempts == 1
    else:
        assert isinstance(outcome, OfferDisplay | ServiceException), repr(outcome)
        assert server.attempts == (2 if isinstance(outcome, OfferDisplay) else 1)


# -- settings that used to fail only at call time --------------------------------------------------


@pytest.mark.parametrize(
    "setting",
    [{"access_token": "tok☃"}, {"socket_options": "x"}, {"socket_options": [("a", "b", "c")]}],
    ids=["access_token outside Latin-1", "socket_options='x'", "socket_options of strings"],
)
def test_bad_setting_never_escapes_as_a_foreign_exception(
    servers: FaultServers, setting: dict[str, Any]
) -> None:
    """Refused when set, or the call raises an SDK exception: never UnicodeEncodeError/TypeError."""
    server = servers(then=answer(201, session_init_answer()))
    outcome: BaseException | None
    try:
        config = Configuration(host=server.url, retries=0, **setting)
        with ApiClient(config) as client:
            UIEventsApi(client).create_session_init()
    except Exception as error:
        outcome = error
    else:
        outcome = None
    assert isinstance(outcome, OpenApiException), repr(outcome)
    assert server.attempts == 0


# -- a pool resized under load ---------------------------------------------------------------------

CHURN_SECONDS = 6.0
"""How long 64 threads call while the pool size changes (less once a foreign error shows)."""
CALLS_PER_RESIZE = 64
"""The size changes once per this many finished calls: each pool lives long enough to fill up
and be shared, then is closed while calls are still returning connections to it."""


def test_resizing_the_pool_during_calls_raises_only_sdk_exceptions(
    recording_server: RecordingServer,
) -> None:
    """64 threads call while another changes ``connection_pool_maxsize``: SDK errors only."""
    config = Configuration(
        host=recording_server.url, access_token="token-123", retries=0, connection_pool_maxsize=2
    )
    client = ApiClient(config)
    api = UIEventsApi(client)
    stop = threading.Event()
    finished = threading.Condition()
    foreign: list[BaseException] = []
    outcomes = {"ok": 0, "sdk error": 0, "resized": 0}

    def finished_calls() -> int:
        return outcomes["ok"] + outcomes["sdk error"]

    def reached(calls: int) -> Callable[[], bool]:
        return lambda: stop.is_set() or finished_calls() >= calls

    def resize() -> None:
        size = 1
        while not stop.is_set():
            size = size % 3 + 1
            config.connection_pool_maxsize = size
            with finished:
                outcomes["resized"] += 1
                finished.wait_for(reached(finished_calls() + CALLS_PER_RESIZE))

    def call() -> None:
        while not stop.is_set():
            try:
                api.create_session_init()
                outcome = "ok"
            except OpenApiException:
                outcome = "sdk error"
            except Exception as error:
                foreign.append(error)
                stop.set()
                outcome = "sdk error"
            with finished:
                outcomes[outcome] += 1
                finished.notify_all()

    def wake_resize() -> None:
        with finished:
            finished.notify_all()

    threads = [threading.Thread(target=resize)]
    threads += [threading.Thread(target=call) for _ in range(64)]
    try:
        race(threads, stop, CHURN_SECONDS, wake=wake_resize)
    finally:
        client.close()

    described = [f"{type(e).__module__}.{type(e).__name__}: {e}" for e in foreign]
    assert described == [], f"{outcomes}: {described[:3]}"
    assert outcomes["ok"] > 0
    assert outcomes["resized"] > 1


# -- bodies built without validation ---------------------------------------------------------------


def _construct_bad_uuid() -> Any:
    return OfferDisplayCreateData.model_construct(
        lead_uuid="not-a-uuid", rate_table_uuid=RATE_TABLE, offer_uuid=OFFER
    )


def _copy_with_bad_uuid() -> Any:
    valid = OfferDisplayCreateData(lead_uuid=LEAD, rate_table_uuid=RATE_TABLE, offer_uuid=OFFER)
    return valid.model_copy(update={"lead_uuid": "nope"})


def _construct_missing_field() -> Any:
    return OfferDisplayCreateData.model_construct(lead_uuid=LEAD, rate_table_uuid=RATE_TABLE)


def _construct_wrong_type() -> Any:
    return OfferDisplayCreateData.model_construct(
        lead_uuid=LEAD,
        rate_table_uuid=RATE_TABLE,
        offer_uuid=12345,  # type: ignore[arg-type]  # the point: model_construct checks nothing
    )


def _construct_bad_session_uuid() -> Any:
    return SessionInitCreateData.model_construct(session_uuid="not-a-uuid")


def _copy_with_bad_session_uuid() -> Any:
    return SessionInitCreateData().model_copy(update={"session_uuid": "not-a-uuid"})


UNVALIDATED: list[tuple[str, Callable[[], Any], tuple[str, str]]] = [
    ("model_construct with a bad UUID", _construct_bad_uuid, ("lead_uuid", "leadUuid")),
    ("model_copy(update=) with a bad UUID", _copy_with_bad_uuid, ("lead_uuid", "leadUuid")),
    ("model_construct missing a field", _construct_missing_field, ("offer_uuid", "offerUuid")),
    ("model_construct with a wrong type", _construct_wrong_type, ("offer_uuid", "offerUuid")),
    ("session model_construct", _construct_bad_session_uuid, ("session_uuid", "sessionUuid")),
    ("session model_copy(update=)", _copy_with_bad_session_uuid, ("session_uuid", "sessionUuid")),
]


@pytest.mark.parametrize(
    ("build", "field_names"),
    [(build, names) for _, build, names in UNVALIDATED],
    ids=[name for name, _, _ in UNVALIDATED],
)
def test_body_built_without_validation_is_refused_before_sending(
    servers: FaultServers, build: Callable[[], Any], field_names: tuple[str, str]
) -> None:
    """An unvalidated ``...CreateData``: ApiValueError naming the field; nothing sent."""
    server = servers(then=created_for_path())
    body = build()
    config = Configuration(host=server.url, access_token="token-123", retries=0)
    with ApiClient(config) as client:
        api = UIEventsApi(client)
        send = (
            api.create_offer_display
            if isinstance(body, OfferDisplayCreateData)
            else api.create_session_init
        )
        try:
            send(body)
        except Exception as error:
            raised: BaseException | None = error
        else:
            raised = None
    assert server.connections == 0, f"the server received {server.requests}"
    assert isinstance(raised, ApiValueError), repr(raised)
    assert any(name in str(raised) for name in field_names), str(raised)


def test_a_validated_body_is_still_sent(servers: FaultServers) -> None:
    """Pins the policy (holds today): a model built normally goes out as before."""
    server = servers(then=answer(201, offer_display_answer()))
    body = OfferDisplayCreateData(lead_uuid=LEAD, rate_table_uuid=RATE_TABLE, offer_uuid=OFFER)
    config = Configuration(host=server.url, access_token="token-123", retries=0)
    with ApiClient(config) as client:
        UIEventsApi(client).create_offer_display(body.model_copy())
    assert server.attempts == 1
