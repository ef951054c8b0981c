"""A POST that reached the server is not retried silently.

A connection closed before any byte of the answer is retried only when it was a *reused*
keep-alive connection (one that already carried a complete exchange): that is the stale
connection, closed by the server while the request was on its way, so the server never
processed it (``kind == "stale"``). On a *new* connection the server has read the request when
it hangs up (FIN or RST), so the event may be recorded: that is ``kind == "dropped"``, raised
without a retry unless ``RetryPolicy(retry_ambiguous=True)``.

The server counts what it received (``attempts``, ``requests``) apart from what it processed,
i.e. answered in full (``processed``), and names the connection each request came on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from faultserver import (
    Behaviour,
    FaultServer,
    FaultServers,
    Request,
    close_without_answer,
    created_for_path,
    keep_alive,
    reset,
)
from samples import OFFER_BODY

from openapi_client import ApiClient, Configuration, RetryPolicy, UIEventsApi
from openapi_client.exceptions import ApiConnectionError, ApiException

FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.02)
AMBIGUOUS_RETRIED = RetryPolicy(initial_backoff=0.01, max_backoff=0.02, retry_ambiguous=True)
TOKEN = "pk_test_retry_safety"
TIMEOUT = (2.0, 2.0)

HANG_UPS = [
    pytest.param(close_without_answer(), id="FIN"),
    pytest.param(reset(), id="RST"),
]


@pytest.fixture
def clients() -> Iterator[list[ApiClient]]:
    made: list[ApiClient] = []
    yield made
    for client in made:
        client.close()


def api_for(clients: list[ApiClient], server: FaultServer, retries: object = FAST) -> UIEventsApi:
    client = ApiClient(Configuration(host=server.url, access_token=TOKEN, retries=retries))
    clients.append(client)
    return UIEventsApi(client)


def new_call() -> str:
    """An id for one call, sent as ``X-Test-Call`` so that the server can tell its requests
    apart (a header, as a server that closes early may not have read the body)."""
    return str(uuid.uuid4())


def carrying(requests: list[Request], call: str) -> list[Request]:
    """The requests among ``requests`` that belong to ``call``."""
    return [request for request in requests if request.headers.get("x-test-call") == call]


def post(api: UIEventsApi, call: str) -> Any:
    return api.create_offer_display_with_http_info(
        OFFER_BODY, _request_timeout=TIMEOUT, _headers={"X-Test-Call": call}
    )


def failure_of(api: UIEventsApi, call: str) -> ApiException:
    with pytest.raises(ApiException) as caught:
        post(api, call)
    return caught.value


# -- a new connection closed after the server read the request: ambiguous -------------------------


@pytest.mark.parametrize("hang_up", HANG_UPS)
def test_new_connection_closed_after_the_request_is_not_retried(
    servers: FaultServers, clients: list[ApiClient], hang_up: Behaviour
) -> None:
    """A new connection closed without a byte of answer after the server read the request is
    raised as ``dropped`` after one attempt: the event may have been recorded."""
    server = servers(then=hang_up)
    error = failure_of(api_for(clients, server), new_call())
    assert server.attempts == 1, f"the server received the POST {server.attempts} times"
    assert type(error) is ApiConnectionError, repr(error)
    assert error.kind == "dropped"
    assert error.retries == 0


@pytest.mark.parametrize("hang_up", HANG_UPS)
def test_new_connection_closed_after_the_request_is_retried_when_ambiguous_allowed(
    servers: FaultServers, clients: list[ApiClient], hang_up: Behaviour
) -> None:
    """With ``retry_ambiguous=True`` the same hang-up is retried (twice, by default)."""
    server = servers(then=hang_up)
    error = failure_of(api_for(clients, server, AMBIGUOUS_RETRIED), new_call())
    assert server.attempts == 3
    assert type(error) is ApiConnectionError, repr(error)
    assert error.kind == "dropped"
    assert error.retries == 2


# -- a reused keep-alive connection closed under the request: stale, safe to retry ----------------

STALE = [
    pytest.param(close_without_answer(), False, id="FIN-body-unread"),
    pytest.param(close_without_answer(), True, id="FIN-body-read"),
    pytest.param(reset(), True, id="RST-body-read"),
]


@pytest.mark.parametrize(("hang_up", "read_body"), STALE)
def test_stale_keep_alive_connection_is_retried_once_on_a_new_connection(
    servers: FaultServers, clients: list[ApiClient], hang_up: Behaviour, read_body: bool
) -> None:
    """A reused keep-alive connection closed under the request is retried on a new
    connection, and the server processes that request exactly once."""
    server = servers(keep_alive(hang_up, read_body=read_body), then=created_for_path())
    api = api_for(clients, server)
    warm_up, call = new_call(), new_call()
    post(api, warm_up)

    response = post(api, call)

    assert response.status_code == 201
    sent = carrying(server.requests, call)
    assert [request.connection for request in sent] == [1, 2], "stale on 1, retried on a new one"
    processed = carrying(server.processed, call)
    assert len(processed) == 1
    assert processed[0].connection == 2
    assert server.connections == 2


def test_stale_retry_dropped_on_a_new_connection_is_not_retried_again(
    servers: FaultServers, clients: list[ApiClient]
) -> None:
    """After the stale connection's retry, a new connection that drops the request is
    ambiguous again: no third attempt, ``dropped`` raised."""
    server = servers(keep_alive(close_without_answer()), then=close_without_answer())
    api = api_for(clients, server)
    post(api, new_call())
    call = new_call()

    error = failure_of(api, call)

    sent = carrying(server.requests, call)
    assert [request.connection for request in sent] == [1, 2], (
        f"the POST went out {len(sent)} times, on connections {[r.connection for r in sent]}"
    )
    assert type(error) is ApiConnectionError, repr(error)
    assert error.kind == "dropped"
    assert carrying(server.processed, call) == []


def test_stale_keep_alive_failure_is_reported_as_stale(
    servers: FaultServers, clients: list[ApiClient]
) -> None:
    """With retries off, a stale connection either is reconnected once transparently or is
    raised as ``stale`` (never ``dropped``: the server did not process the request)."""
    server = servers(keep_alive(close_without_answer(), read_body=False), then=created_for_path())
    api = api_for(clients, server, 0)
    post(api, new_call())
    call = new_call()

    failure: ApiConnectionError | None = None
    try:
        post(api, call)
    except ApiConnectionError as error:
        failure = error

    if failure is not None:
        assert failure.kind == "stale", f"stale keep-alive connection reported as {failure.kind!r}"
        assert [request.connection for request in carrying(server.requests, call)] == [1]
    else:
        processed = carrying(server.processed, call)
        assert [request.connection for request in processed] == [2]
