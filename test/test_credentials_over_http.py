"""No credential goes over plain ``http://`` to a host beyond this machine, however it is spelt.

A call carrying a credential (the configured token; an ``Authorization``, ``Proxy-Authorization``
or ``Cookie`` header in any letter case, per call or by default; any ``_request_auth``) to an
``http://`` host that is not loopback raises ``ApiValueError`` before connecting, unless
``allow_insecure_http=True``. Proxy-Authorization is counted as a credential: sent to the origin
over clear text it is as exposed as Authorization.

Nothing here leaves the machine. The "remote" host is this machine's own non-loopback address
(the SDK must treat it as remote; the kernel keeps the traffic local), with a server listening
on it that counts connections; or a remote-looking name reached through a loopback proxy.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from echo_server import EchoServer, RawRequest, local_lan_address, session_init_created

from openapi_client import ApiClient, Configuration, UIEventsApi
from openapi_client.exceptions import ApiValueError

SECRET = "cred-over-http-0f3a9c2e7b"
FAST = 1.0
"""A refusal comes before any connection: far sooner than this many seconds."""


@dataclass(frozen=True)
class Credential:
    """One way a call can carry a credential, and how to find it in the request received."""

    name: str
    settings: Callable[[], dict[str, Any]] = dict
    options: Callable[[], dict[str, Any]] = dict
    client: Callable[[ApiClient], None] = lambda client: None
    client_args: Callable[[], dict[str, Any]] = dict


# The old code already refused the configured token, "Cookie" as spelt so, and query or cookie
# _request_auth: those cases pin the policy; every other spelling got through.
CREDENTIALS = [
    Credential("configured access_token", settings=lambda: {"access_token": SECRET}),
    Credential(
        "_headers authorization",
        options=lambda: {"_headers": {"authorization": f"Bearer {SECRET}"}},
    ),
    Credential(
        "_headers AUTHORIZATION",
        options=lambda: {"_headers": {"AUTHORIZATION": f"Bearer {SECRET}"}},
    ),
    Credential("_headers cookie", options=lambda: {"_headers": {"cookie": f"sid={SECRET}"}}),
    Credential(
        "_headers Proxy-Authorization",
        options=lambda: {"_headers": {"Proxy-Authorization": f"Basic {SECRET}"}},
    ),
    Credential(
        "set_default_header authorization",
        client=lambda c: c.set_default_header("authorization", f"Bearer {SECRET}"),
    ),
    Credential(
        "set_default_header cookie",
        client=lambda c: c.set_default_header("cookie", f"sid={SECRET}"),
    ),
    Credential("ApiClient(cookie=...)", client_args=lambda: {"cookie": f"sid={SECRET}"}),
    Credential(
        "ApiClient(header_name='authorization')",
        client_args=lambda: {"header_name": "authorization", "header_value": f"Bearer {SECRET}"},
    ),
    Credential(
        "_request_auth header X-Api-Key",
        options=lambda: {"_request_auth": {"in": "header", "key": "X-Api-Key", "value": SECRET}},
    ),
    Credential(
        "_request_auth query",
        options=lambda: {"_request_auth": {"in": "query", "key": "api_key", "value": SECRET}},
    ),
    Credential(
        "_request_auth cookie",
        options=lambda: {"_request_auth": {"in": "cookie", "key": "session", "value": SECRET}},
    ),
]


def _call(credential: Credential, **settings: Any) -> Callable[[], Any]:
    config = Configuration(retries=0, timeout=(2, 2), **{**settings, **credential.settings()})
    client = ApiClient(config, **credential.client_args())
    credential.client(client)
    options = credential.options()

    def call() -> Any:
        with client:
            return UIEventsApi(client).create_session_init(**options)

    return call


def _carried(request: RawRequest) -> bool:
    """The request shows the credential (in a header or the query)."""
    return SECRET in request.raw_head.decode("latin-1")


@pytest.fixture
def lan_server() -> Iterator[EchoServer]:
    """A server on this machine's own non-loopback address: remote to the SDK, local in fact."""
    address = local_lan_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    with EchoServer(session_init_created, host=address) as server:
        yield server


@pytest.fixture
def loopback_proxy() -> Iterator[EchoServer]:
    with EchoServer(session_init_created) as server:
        yield server


@pytest.mark.parametrize("credential", CREDENTIALS, ids=lambda c: c.name)
def test_credential_to_a_remote_http_host_is_refused_before_connecting(
    credential: Credential, lan_server: EchoServer
) -> None:
    """Any credential, any spelling: ``ApiValueError`` at once, and no connection is made."""
    call = _call(credential, host=lan_server.url)
    started = time.monotonic()
    with pytest.raises(ApiValueError) as caught:
        call()
    assert time.monotonic() - started < FAST
    assert lan_server.connections == 0
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("credential", CREDENTIALS, ids=lambda c: c.name)
def test_credential_to_a_remote_http_host_through_a_proxy_is_refused(
    credential: Credential, loopback_proxy: EchoServer
) -> None:
    """Through a proxy too: the proxy in front of ``http://10.255.255.1:9`` sees nothing."""
    call = _call(credential, host="http://10.255.255.1:9", proxy=loopback_proxy.url)
    started = time.monotonic()
    with pytest.raises(ApiValueError):
        call()
    assert time.monotonic() - started < FAST
    assert loopback_proxy.connections == 0


def _ipv6_loopback_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize("credential", CREDENTIALS, ids=lambda c: c.name)
@pytest.mark.parametrize("loopback", ["127.0.0.1", "localhost", "::1"])
def test_credential_to_a_loopback_http_host_is_sent(credential: Credential, loopback: str) -> None:
    """Pins the policy (holds today): loopback ``http://`` stays allowed for every credential."""
    if loopback == "::1" and not _ipv6_loopback_works():
        pytest.skip("no IPv6 loopback")
    family = socket.AF_INET6 if loopback == "::1" else socket.AF_INET
    bind = "127.0.0.1" if loopback == "localhost" else loopback
    in_url = f"[{loopback}]" if loopback == "::1" else loopback
    with EchoServer(session_init_created, host=bind, family=family) as server:
        _call(credential, host=f"http://{in_url}:{server.port}")()
        (request,) = server.requests
    assert _carried(request)


@pytest.mark.parametrize("credential", CREDENTIALS, ids=lambda c: c.name)
def test_allow_insecure_http_sends_any_credential_to_a_remote_http_host(
    credential: Credential, lan_server: EchoServer
) -> None:
    """Pins the policy (holds today): after opting in, the call is made as asked."""
    _call(credential, host=lan_server.url, allow_insecure_http=True)()
    (request,) = lan_server.requests
    assert _carried(request)


def test_call_without_any_credential_is_refused_locally(lan_server: EchoServer) -> None:
    """No token at all would only earn a 401: refused before connecting, naming access_token."""
    with (
        ApiClient(Configuration(host=lan_server.url, retries=0)) as client,
        pytest.raises(ApiValueError, match="access_token"),
    ):
        UIEventsApi(client).create_session_init(_headers={"X-Trace-Id": "abc123"})
    assert len(lan_server.requests) == 0
