"""Header names are case-insensitive everywhere: one header per name goes on the wire.

Per-call ``_headers`` replace default headers (the SDK's own, ``set_default_header`` ones and
the configured token's ``Authorization``) whatever the letter case of either. The raw request
bytes are read by a raw-socket server, since an HTTP server library would merge or hide
duplicates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from echo_server import EchoServer, RawRequest, session_init_created

from openapi_client import ApiClient, Configuration, UIEventsApi

TOKEN = "configured-token-5d1e"


@pytest.fixture
def server() -> Iterator[EchoServer]:
    with EchoServer(session_init_created) as started:
        yield started


@dataclass(frozen=True)
class Case:
    """Headers set in some letter case, and the one value that must be sent for ``name``."""

    id: str
    name: str
    expected: str | None
    """The value the request must carry; None: any, as long as there is exactly one."""
    options: dict[str, Any]
    setup: Callable[[ApiClient], None] = lambda client: None
    client_args: Callable[[], dict[str, Any]] = dict


CASES = [
    Case("_headers user-agent", "user-agent", "mine/1.0", {"_headers": {"user-agent": "mine/1.0"}}),
    Case(
        "_headers authorization over the configured token",
        "authorization",
        "Bearer other",
        {"_headers": {"authorization": "Bearer other"}},
    ),
    Case(
        "_headers AUTHORIZATION over the configured token",
        "authorization",
        "Bearer shouted",
        {"_headers": {"AUTHORIZATION": "Bearer shouted"}},
    ),
    Case(
        "_headers accept",
        "accept",
        "application/json, text/plain",
        {"_headers": {"accept": "application/json, text/plain"}},
    ),
    Case(
        "_headers content-type",
        "content-type",
        "application/json; charset=utf-8",
        {"_headers": {"content-type": "application/json; charset=utf-8"}},
    ),
    Case(
        "set_default_header user-agent",
        "user-agent",
        "mine/2.0",
        {},
        setup=lambda client: client.set_default_header("user-agent", "mine/2.0"),
    ),
    Case(
        "set_default_header accept",
        "accept",
        "application/vnd.engine+json",
        {},
        setup=lambda client: client.set_default_header("accept", "application/vnd.engine+json"),
    ),
    Case(
        "ApiClient(header_name='user-agent')",
        "user-agent",
        "mine/3.0",
        {},
        client_args=lambda: {"header_name": "user-agent", "header_value": "mine/3.0"},
    ),
    Case(
        "_headers x-trace-id over set_default_header X-Trace-Id",
        "x-trace-id",
        "per-call",
        {"_headers": {"x-trace-id": "per-call"}},
        setup=lambda client: client.set_default_header("X-Trace-Id", "default"),
    ),
    Case(
        "_headers User-Agent over set_default_header user-agent",
        "user-agent",
        "per-call/1.0",
        {"_headers": {"User-Agent": "per-call/1.0"}},
        setup=lambda client: client.set_default_header("user-agent", "default/1.0"),
    ),
    Case(
        "set_default_header authorization beside the configured token",
        "authorization",
        None,
        {},
        setup=lambda client: client.set_default_header("authorization", "Bearer default"),
    ),
    Case(  # holds today (pinned): _request_auth starts from the headers without the token
        "_request_auth authorization over the configured token",
        "authorization",
        "Bearer per-call",
        {"_request_auth": {"in": "header", "key": "authorization", "value": "Bearer per-call"}},
    ),
]


def _send(server: EchoServer, case: Case) -> RawRequest:
    config = Configuration(host=server.url, access_token=TOKEN, retries=0)
    with ApiClient(config, **case.client_args()) as client:
        case.setup(client)
        UIEventsApi(client).create_session_init(**case.options)
    (request,) = server.requests
    return request


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_one_header_per_name_goes_on_the_wire_with_the_winning_value(
    server: EchoServer, case: Case
) -> None:
    """Whatever the case of either spelling, the request carries the name once, with the winner."""
    request = _send(server, case)
    values = request.header_values(case.name)
    head = request.raw_head.decode("latin-1")
    assert len(values) == 1, f"{case.name} sent {len(values)} times:\n{head}"
    if case.expected is not None:
        assert values == [case.expected], head
    repeated = {name: n for name, n in Counter(request.header_names()).items() if n > 1}
    assert repeated == {}, head


def test_user_agent_reads_a_default_header_set_in_any_case() -> None:
    """``ApiClient.user_agent`` is the User-Agent that is sent, however its name was spelt."""
    client = ApiClient(Configuration())
    client.set_default_header("user-agent", "mine/4.0")
    assert client.user_agent == "mine/4.0"
    sent = [v for k, v in client.default_headers.items() if k.lower() == "user-agent"]
    assert sent == ["mine/4.0"]
