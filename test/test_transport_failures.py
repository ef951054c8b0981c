"""Calls that get no usable answer: refused, never answered, hung up on.

Each fault is a raw-socket ``FaultServer`` on 127.0.0.1 (or a port that refuses), started and
stopped by a fixture.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from faultserver import FaultServer, FaultServers, close_without_answer, hang, refused_url
from samples import OFFER_BODY
from support import TOKEN

from openapi_client import (
    ApiClient,
    ApiConnectionError,
    ApiTimeoutError,
    Configuration,
    RetryPolicy,
    UIEventsApi,
)


@pytest.fixture
def silent(servers: FaultServers) -> FaultServer:
    """Reads each request and never answers (until the test ends)."""
    return servers(then=hang())


@pytest.fixture
def hanging_up(servers: FaultServers) -> FaultServer:
    """Reads each request, then closes the connection without a byte of answer."""
    return servers(then=close_without_answer())


@pytest.fixture
def refused() -> Iterator[str]:
    """A loopback URL that refuses connections."""
    with refused_url() as url:
        yield url


def api_for(url: str, **settings: Any) -> UIEventsApi:
    return UIEventsApi(ApiClient(Configuration(host=url, access_token=TOKEN, **settings)))


def test_refused_connection_raises_api_connection_error(refused: str) -> None:
    api = api_for(refused, retries=0)

    with pytest.raises(ApiConnectionError) as caught:
        api.create_session_init()

    assert caught.value.kind == "connect"
    assert caught.value.status == 0
    assert caught.value.retries == 0
    assert not isinstance(caught.value, ApiTimeoutError)
    assert "Cannot connect" in (caught.value.reason or "")
    api.api_client.close()


def test_refused_connection_is_retried_up_to_max_retries(refused: str) -> None:
    policy = RetryPolicy(max_retries=2, initial_backoff=0.01, max_backoff=0.02)
    api = api_for(refused, retries=policy)

    with pytest.raises(ApiConnectionError) as caught:
        api.create_session_init()

    assert caught.value.kind == "connect"
    assert caught.value.retries == 2
    api.api_client.close()


def test_server_that_never_answers_raises_timeout_within_bound(silent: FaultServer) -> None:
    api = api_for(silent.url)  # default retries: a read timeout is not retried

    started = time.monotonic()
    with pytest.raises(ApiTimeoutError) as caught:
        api.create_offer_display(OFFER_BODY, _request_timeout=0.5)
    elapsed = time.monotonic() - started

    assert elapsed < 3
    assert caught.value.kind == "timeout"
    assert caught.value.retries == 0
    assert isinstance(caught.value, ApiConnectionError)
    assert silent.connections == 1
    api.api_client.close()


def test_configured_timeout_bounds_a_call_to_a_silent_server(silent: FaultServer) -> None:
    api = api_for(silent.url, timeout=(0.5, 0.5))

    started = time.monotonic()
    with pytest.raises(ApiTimeoutError):
        api.create_session_init()

    assert time.monotonic() - started < 3
    api.api_client.close()


def test_connection_closed_without_answer_raises_dropped(hanging_up: FaultServer) -> None:
    api = api_for(hanging_up.url, retries=0)

    with pytest.raises(ApiConnectionError) as caught:
        api.create_session_init()

    assert caught.value.kind == "dropped"
    assert not isinstance(caught.value, ApiTimeoutError)
    assert hanging_up.connections == 1
    api.api_client.close()


@pytest.mark.parametrize(
    ("retry_ambiguous", "retries", "connections"),
    [(False, 0, 1), (True, 2, 3)],
    ids=["ambiguous retries off", "ambiguous retries on"],
)
def test_new_connection_closed_without_answer_is_retried_only_when_ambiguous_retries_are_on(
    hanging_up: FaultServer, retry_ambiguous: bool, retries: int, connections: int
) -> None:
    """The server may have recorded the request: no second POST unless ``retry_ambiguous``."""
    policy = RetryPolicy(max_retries=2, initial_backoff=0.01, retry_ambiguous=retry_ambiguous)
    api = api_for(hanging_up.url, retries=policy)

    with pytest.raises(ApiConnectionError) as caught:
        api.create_session_init()

    assert caught.value.kind == "dropped"
    assert caught.value.retries == retries
    assert hanging_up.connections == connections
    api.api_client.close()
