"""Calls that get no usable answer: refused, never answered, hung up on.

Each fault is a small raw socket server on 127.0.0.1, started and stopped by a fixture.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from samples import LEAD
from support import TOKEN

from openapi_client import (
    ApiClient,
    ApiConnectionError,
    ApiTimeoutError,
    Configuration,
    RetryPolicy,
    UIEventsApi,
)


class RawServer:
    """Accepts connections on 127.0.0.1 and hands each to ``behaviour`` in its own thread."""

    def __init__(self, behaviour: Callable[[socket.socket, threading.Event], None]) -> None:
        self._behaviour = behaviour
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepted: list[socket.socket] = []
        self.connections = 0
        self.port = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # listener closed
            self.connections += 1
            self._accepted.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the client went away first
            self._behaviour(conn, self._stop)

    def close(self) -> None:
        self._stop.set()
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._acceptor.join(5)
        for conn in self._accepted:
            conn.close()
        for thread in self._threads:
            thread.join(5)


def read_request_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def never_answer(conn: socket.socket, stop: threading.Event) -> None:
    read_request_head(conn)
    stop.wait(10)


def hang_up(conn: socket.socket, stop: threading.Event) -> None:
    read_request_head(conn)
    conn.shutdown(socket.SHUT_RDWR)
    conn.close()


@pytest.fixture
def raw_server(request: pytest.FixtureRequest) -> Iterator[RawServer]:
    server = RawServer(request.param)
    yield server
    server.close()


def api_for(port: int, **settings: Any) -> UIEventsApi:
    return UIEventsApi(
        ApiClient(Configuration(host=f"http://127.0.0.1:{port}", access_token=TOKEN, **settings))
    )


@pytest.fixture
def free_port() -> int:
    """A port nothing listens on: bound, then closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_refused_connection_raises_api_connection_error(free_port: int) -> None:
    api = api_for(free_port, retries=0)

    with pytest.raises(ApiConnectionError) as caught:
        api.create_session_init()

    assert caught.value.kind == "connect"
    assert caught.value.status == 0
    assert caught.value.retries == 0
    assert not isinstance(caught.value, ApiTimeoutError)
    assert "Cannot connect" in (caught.value.reason or "")
    api.api_client.close()


def test_refused_connection_is_retried_up_to_max_retries(free_port: int) -> None:
    policy = RetryPolicy(max_retries=2, initial_backoff=0.01, max_backoff=0.02)
    api = api_for(free_port, retries=policy)

    with pytest.raises(ApiConnectionError) as caught:
        api.create_session_init()

    assert caught.value.kind == "connect"
    assert caught.value.retries == 2
    api.api_client.close()


@pytest.mark.parametrize("raw_server", [never_answer], indirect=True)
def test_server_that_never_answers_raises_timeout_within_bound(raw_server: RawServer) -> None:
    api = api_for(raw_server.port)  # default retries: a read timeout is not retried

    started = time.monotonic()
    with pytest.raises(ApiTimeoutError) as caught:
        api.create_offer_display(
            {"leadUuid": LEAD, "rateTableUuid": LEAD, "offerUuid": LEAD},
            _request_timeout=0.5,
        )
    elapsed = time.monotonic() - started

    assert elapsed < 3
    assert caught.value.kind == "timeout"
    assert caught.value.retries == 0
    assert isinstance(caught.value, ApiConnectionError)
    assert raw_server.connections == 1
    api.api_client.close()


@pytest.mark.parametrize("raw_server", [never_answer], indirect=True)
def test_configured_timeout_bounds_a_call_to_a_silent_server(raw_server: RawServer) -> None:
    api = api_for(raw_server.port, timeout=(0.5, 0.5))

    started = time.monotonic()
    with pytest.raises(ApiTimeoutError):
        api.create_session_init()

    assert time.monotonic() - started < 3
    api.api_client.close()


@pytest.mark.parametrize("raw_server", [hang_up], indirect=True)
def test_connection_closed_without_answer_raises_dropped(raw_server: RawServer) -> None:
    api = api_for(raw_server.port, retries=0)

    with pytest.raises(ApiConnectionError) as caught:
        api.create_session_init()

    assert caught.value.kind == "dropped"
    assert not isinstance(caught.value, ApiTimeoutError)
    assert raw_server.connections == 1
    api.api_client.close()


@pytest.mark.parametrize("raw_server", [hang_up], indirect=True)
def test_new_connection_closed_without_answer_is_not_retried(raw_server: RawServer) -> None:
    """The server got the request and may have recorded it: no silent second POST."""
    api = api_for(raw_server.port, retries=RetryPolicy(max_retries=2, initial_backoff=0.01))

    with pytest.raises(ApiConnectionError) as caught:
        api.create_session_init()

    assert caught.value.kind == "dropped"
    assert caught.value.retries == 0
    assert raw_server.connections == 1
    api.api_client.close()


@pytest.mark.parametrize("raw_server", [hang_up], indirect=True)
def test_dropped_connection_is_retried_when_ambiguous_retries_are_on(raw_server: RawServer) -> None:
    policy = RetryPolicy(max_retries=2, initial_backoff=0.01, retry_ambiguous=True)
    api = api_for(raw_server.port, retries=policy)

    with pytest.raises(ApiConnectionError) as caught:
        api.create_session_init()

    assert caught.value.kind == "dropped"
    assert caught.value.retries == 2
    assert raw_server.connections == 3
    api.api_client.close()
