"""A failure before any byte of the request was written is ``kind == "connect"``, and retried.

Issue 14 item 1. Until the request's first byte goes to the socket the server cannot have seen
it, whatever failed: the TCP connect, the TLS handshake (stalled, or answered with something
that is not TLS), or a proxy's ``CONNECT`` tunnel (refused, answered 502, closed). Such a
failure is ``connect`` (``ApiTimeoutError`` when it ran out of time, ``ApiConnectionError``
otherwise), which the default ``RetryPolicy`` retries: never an ambiguous ``timeout`` or
``dropped``, which would leave an event unrecorded for no reason. The one exception is a
certificate the client rejects (``test_configuration.py``): ``tls``, not retried, since another
attempt meets the same certificate. Once the request was written the old rules hold: a server
that read it and went silent is an ambiguous ``timeout``, not retried by default.

What each server received is checked byte by byte: before the handshake completes a TLS client
can only send handshake (22) and alert (21) records, never application data (23), so a
listener that saw only those got nothing of the request.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from faultserver import FaultServers, hang, loopback_tls, refused_url
from rawserver import RawServer
from recorder_support import WAIT, Failures, Recorders, failures_into, offer, wait_until
from samples import OFFER_BODY

from openapi_client import ApiClient, Configuration, RetryPolicy, UIEventsApi
from openapi_client.exceptions import ApiConnectionError, ApiTimeoutError

TOKEN = "pk_test_connect_phase"
STALL = (0.3, 2.0)
"""Connect limit 0.3 s (it bounds the TLS handshake too), a budget of 2.3 s: room for three
stalled handshakes."""
RETRIED = RetryPolicy(max_retries=2, initial_backoff=0.01, max_backoff=0.02)
TLS_HANDSHAKE, TLS_ALERT = 22, 21


class Listener(RawServer):
    """Accepts connections and keeps every byte each one sent; ``reply`` says what to do with
    the first bytes of a connection: ``None`` keep reading and never answer (until the client
    leaves), else send the bytes it returns (maybe none) and close."""

    def __init__(self, reply: Callable[[bytes], bytes] | None = None, scheme: str = "https"):
        super().__init__(scheme=scheme, name="connect-phase")
        self._reply = reply
        self._received: dict[int, bytes] = {}
        self._ended: set[int] = set()

    def received(self, count: int) -> list[bytes]:
        """What each connection sent, in the order they were accepted, once ``count`` of them
        have ended (the client does not wait for the server to read what it sent)."""
        wait_until(lambda: self.ended >= count)
        with self._lock:
            return [self._received[n] for n in sorted(self._ended)]

    @property
    def ended(self) -> int:
        with self._lock:
            return len(self._ended)

    def _keep(self, number: int, data: bytes) -> None:
        with self._lock:
            self._received[number] = self._received.get(number, b"") + data

    def _handle(self, sock: socket.socket, number: int) -> None:
        self._keep(number, b"")
        try:
            self._serve_one(sock, number)
        finally:
            with self._lock:
                self._ended.add(number)

    def _serve_one(self, sock: socket.socket, number: int) -> None:
        first = sock.recv(65536)
        self._keep(number, first)
        if self._reply is not None:
            if first:
                sock.sendall(self._reply(first))
            return
        while not self.released.is_set():
            chunk = sock.recv(65536)
            if not chunk:
                return
            self._keep(number, chunk)


def tls_record_types(data: bytes) -> list[int]:
    """The content type of every TLS record in ``data`` (a cut-off last record counts too)."""
    types = []
    while len(data) >= 5:
        types.append(data[0])
        data = data[5 + int.from_bytes(data[3:5], "big") :]
    return types


@pytest.fixture
def listeners() -> Iterator[Callable[..., Listener]]:
    started: list[Listener] = []

    def start(reply: Callable[[bytes], bytes] | None = None, scheme: str = "https") -> Listener:
        listener = Listener(reply, scheme).start()
        started.append(listener)
        return listener

    yield start
    for listener in started:
        listener.stop()
    errors = [error for listener in started for error in listener.errors]
    assert not errors, f"listener failed: {errors!r}"


@pytest.fixture
def clients() -> Iterator[list[ApiClient]]:
    made: list[ApiClient] = []
    yield made
    for client in made:
        client.close()


def api_for(clients: list[ApiClient], url: str, **settings: Any) -> UIEventsApi:
    settings.setdefault("timeout", STALL)
    client = ApiClient(Configuration(host=url, access_token=TOKEN, **settings))
    clients.append(client)
    return UIEventsApi(client)


def connections_seen(listener: RawServer, count: int) -> int:
    """Connections the listener accepted, once it accepted ``count`` (the client does not wait
    for the accept loop)."""
    wait_until(lambda: listener.connections >= count)
    return listener.connections


def assert_nothing_of_the_request(listener: Listener, count: int) -> None:
    """Each of the first ``count`` connections began a TLS handshake and sent no application
    data: nothing of the request."""
    for number, data in enumerate(listener.received(count), 1):
        types = tls_record_types(data)
        assert types, f"connection {number} sent {data[:40]!r}"
        assert types[0] == TLS_HANDSHAKE, f"connection {number} sent {data[:40]!r}"
        assert set(types) <= {TLS_HANDSHAKE, TLS_ALERT}, f"connection {number}: records {types}"


# -- a TLS handshake that stalls ----------------------------------------------------------------


def test_a_stalled_tls_handshake_is_a_connect_timeout_not_an_ambiguous_one(
    listeners: Callable[..., Listener], clients: list[ApiClient]
) -> None:
    """Issue 14 item 1: an https URL whose listener accepts and never answers the ClientHello."""
    listener = listeners()
    api = api_for(clients, listener.url, retries=0)

    with pytest.raises(ApiTimeoutError) as caught:
        api.create_offer_display(OFFER_BODY)

    assert caught.value.kind == "connect", caught.value.reason
    assert caught.value.retries == 0
    assert "before the request was sent" in (caught.value.reason or "")
    assert connections_seen(listener, 1) == 1
    assert_nothing_of_the_request(listener, 1)


def test_a_stalled_tls_handshake_is_retried_by_the_default_rules(
    listeners: Callable[..., Listener], clients: list[ApiClient]
) -> None:
    """Issue 14 item 1: nothing was written, so each stall is retried (3 handshakes for
    ``max_retries=2``), and the listener got no byte of any request."""
    listener = listeners()
    api = api_for(clients, listener.url, retries=RETRIED)

    with pytest.raises(ApiTimeoutError) as caught:
        api.create_offer_display(OFFER_BODY)

    assert caught.value.kind == "connect", caught.value.reason
    assert caught.value.retries == 2
    assert connections_seen(listener, 3) == 3
    assert_nothing_of_the_request(listener, 3)


# -- an https URL pointed at a plain-HTTP port ----------------------------------------------------


def answer_400(_: bytes) -> bytes:
    return b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def close_at_once(_: bytes) -> bytes:
    return b""


@pytest.mark.parametrize(
    "reply", [answer_400, close_at_once], ids=["answers 400", "closes without answer"]
)
def test_an_https_url_on_a_plain_http_port_is_a_connect_failure_and_retried(
    listeners: Callable[..., Listener], clients: list[ApiClient], reply: Callable[[bytes], bytes]
) -> None:
    """Issue 14 item 1: a plain HTTP server reads the ClientHello as a bad request and answers
    400 (the client sees "wrong version number") or just closes. Either way the handshake failed
    before the request was written: ``connect`` (not ``tls``: only a rejected certificate is),
    retried like any other connect failure."""
    listener = listeners(reply)
    api = api_for(clients, listener.url, retries=RETRIED)

    with pytest.raises(ApiConnectionError) as caught:
        api.create_offer_display(OFFER_BODY)

    assert not isinstance(caught.value, ApiTimeoutError)
    assert caught.value.kind == "connect", caught.value.reason
    assert caught.value.retries == 2
    assert connections_seen(listener, 3) == 3
    assert_nothing_of_the_request(listener, 3)


# -- a proxy whose CONNECT tunnel fails -----------------------------------------------------------


def bad_gateway(_: bytes) -> bytes:
    return b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize(
    "reply", [bad_gateway, close_at_once], ids=["CONNECT answered 502", "CONNECT unanswered"]
)
def test_a_failed_proxy_tunnel_is_a_connect_failure_and_retried(
    listeners: Callable[..., Listener], clients: list[ApiClient], reply: Callable[[bytes], bytes]
) -> None:
    """Issue 14 item 1: for an https origin the proxy is asked to ``CONNECT`` first; when it
    refuses (502) or hangs up, the origin never got a byte: ``connect``, retried. (An unanswered
    CONNECT used to be ``dropped``, as if the origin might have recorded the event.)"""
    origin = listeners()
    proxy = listeners(reply, scheme="http")
    api = api_for(clients, origin.url, retries=RETRIED, proxy=proxy.url)

    with pytest.raises(ApiConnectionError) as caught:
        api.create_offer_display(OFFER_BODY)

    assert caught.value.kind == "connect", caught.value.reason
    assert caught.value.retries == 2
    assert connections_seen(proxy, 3) == 3
    for asked in proxy.received(3):
        assert asked.startswith(f"CONNECT 127.0.0.1:{origin.port} ".encode()), asked
    assert origin.connections == 0


def test_a_proxy_that_refuses_connections_is_a_connect_failure(clients: list[ApiClient]) -> None:
    """Issue 14 item 1: the proxy's port refuses: nothing went anywhere, ``connect``."""
    with refused_url() as proxy:
        api = api_for(clients, "https://127.0.0.1:9", retries=RETRIED, proxy=proxy)
        with pytest.raises(ApiConnectionError) as caught:
            api.create_offer_display(OFFER_BODY)

    assert caught.value.kind == "connect", caught.value.reason
    assert caught.value.retries == 2


# -- once the request was written, silence stays ambiguous ----------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_silence_after_the_whole_request_stays_an_ambiguous_timeout(
    servers: FaultServers, clients: list[ApiClient], tls: bool
) -> None:
    """Issue 14 item 1 (regression): the server read the whole request, then said nothing. It
    may have recorded the event, so this is ``timeout``, not retried by default, over a plain
    connection and over TLS (whose handshake completed before the request went out)."""
    loopback = loopback_tls() if tls else None
    server = servers(then=hang(), tls=loopback.server_context if loopback else None)
    settings: dict[str, Any] = {"ca_cert_data": loopback.ca_pem} if loopback else {}
    api = api_for(clients, server.url, retries=RETRIED, timeout=(1.0, 0.3), **settings)

    with pytest.raises(ApiTimeoutError) as caught:
        api.create_offer_display(OFFER_BODY)

    assert caught.value.kind == "timeout", caught.value.reason
    assert caught.value.retries == 0
    assert server.attempts == 1
    assert json.loads(server.requests[0].body) == OFFER_BODY  # the whole request went out


# -- the recorder ---------------------------------------------------------------------------------


def test_the_recorder_keeps_retrying_a_stalled_handshake_until_delivery_timeout(
    listeners: Callable[..., Listener], recorders: Recorders
) -> None:
    """Issue 14 item 1: for the recorder a stalled handshake is a safe ``connect`` failure, so
    it tries again until ``delivery_timeout`` instead of failing the event at the first
    attempt; ``on_error`` then gets the last attempt's error."""
    listener = listeners()
    failures: Failures = []
    delivery_timeout = 1.5
    recorder = recorders(
        listener.url,
        timeout=STALL,
        delivery_timeout=delivery_timeout,
        on_error=failures_into(failures),
    )

    started = time.monotonic()
    event = recorder.record_offer_display(offer())
    wait_until(lambda: bool(failures))
    failed_after = time.monotonic() - started

    (failed_event, error), *rest = failures
    assert not rest
    assert failed_event is event
    assert isinstance(error, ApiTimeoutError)
    assert error.kind == "connect", error.reason
    assert failed_after >= delivery_timeout, "gave up before delivery_timeout"
    assert connections_seen(listener, 2) >= 2
    assert_nothing_of_the_request(listener, 2)
    assert event.exception(timeout=WAIT) is error
