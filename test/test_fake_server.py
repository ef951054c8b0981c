"""FakeEngineServer, exercised over real loopback HTTP with http.client and urllib3."""

from __future__ import annotations

import dataclasses
import datetime
import http.client
import json
import logging
import os
import pathlib
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from samples import LEAD, OFFER, OFFER_BODY, RATE_TABLE

from openapi_client.models import OfferDisplay, SessionInit
from openapi_client.testing import TRANSPARENT_GIF, FakeEngineServer, RecordedRequest

pytest_plugins = ["pytester"]

TOKEN = "pk_test_123"
SESSION_INITS = "/uiEvent/sessionInits"
OFFER_DISPLAYS = "/uiEvent/offerDisplays"
PIXEL = f"{OFFER_DISPLAYS}/{LEAD}/{RATE_TABLE}/{OFFER}/pixel.gif"


@dataclasses.dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def send(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | str | dict[str, Any] | list[Any] | None = None,
    token: str | None = TOKEN,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request on an open (keep-alive) connection."""
    all_headers = {"Accept": "application/json"}
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    conn.request(method, path, body=body, headers=all_headers)
    response = conn.getresponse()
    return Reply(response.status, response.headers, response.read())


def call(
    server: FakeEngineServer,
    method: str,
    path: str,
    body: bytes | str | dict[str, Any] | list[Any] | None = None,
    token: str | None = TOKEN,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        return send(conn, method, path, body, token, headers)
    finally:
        conn.close()


@pytest.fixture
def server() -> Iterator[FakeEngineServer]:
    with FakeEngineServer(token=TOKEN) as engine:
        yield engine


def parse_gif(data: bytes) -> dict[str, Any]:
    """Walk a GIF's blocks; return its size, transparent index and the first pixel's codes."""
    assert data[:6] == b"GIF89a"
    width, height, packed, _bg, _aspect = struct.unpack("<HHBBB", data[6:13])
    pos = 13
    if packed & 0x80:
        pos += 3 * (2 << (packed & 0x07))
    transparent: int | None = None
    frames: list[tuple[int, int, list[int]]] = []

    def sub_blocks(start: int) -> tuple[bytes, int]:
        chunks, at = [], start
        while data[at]:
            chunks.append(data[at + 1 : at + 1 + data[at]])
            at += data[at] + 1
        return b"".join(chunks), at + 1

    while data[pos] != 0x3B:
        if data[pos] == 0x21:
            label = data[pos + 1]
            payload, pos = sub_blocks(pos + 2)
            if label == 0xF9 and payload[0] & 0x01:
                transparent = payload[3]
        else:
            assert data[pos] == 0x2C
            _left, _top, w, h, local = struct.unpack("<HHHHB", data[pos + 1 : pos + 10])
            pos += 10 + (3 * (2 << (local & 0x07)) if local & 0x80 else 0)
            code_size = data[pos] + 1
            lzw, pos = sub_blocks(pos + 1)
            bits = int.from_bytes(lzw, "little")
            codes = [(bits >> (i * code_size)) & ((1 << code_size) - 1) for i in range(3)]
            frames.append((w, h, codes))
    assert pos == len(data) - 1, "nothing may follow the trailer"
    return {"size": (width, height), "transparent": transparent, "frames": frames}


# Lifecycle


def test_url_is_loopback_with_a_free_port_picked_by_the_system() -> None:
    with FakeEngineServer() as engine:
        assert engine.port > 0
        assert engine.url == f"http://127.0.0.1:{engine.port}"


def test_context_manager_serves_inside_and_refuses_connections_after() -> None:
    with FakeEngineServer() as engine:
        port = engine.port
        assert call(engine, "POST", SESSION_INITS).status == 201
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_stop_is_idempotent_and_allowed_before_start() -> None:
    never_started = FakeEngineServer()
    never_started.stop()
    engine = FakeEngineServer().start()
    engine.stop()
    engine.stop()


def test_start_twice_is_a_no_op_but_restart_after_stop_is_refused() -> None:
    engine = FakeEngineServer()
    try:
        assert engine.start() is engine
        port = engine.port
        assert engine.start().port == port
    finally:
        engine.stop()
    with pytest.raises(RuntimeError):
        engine.start()


def test_url_before_start_raises() -> None:
    with pytest.raises(RuntimeError, match="start"):
        _ = FakeEngineServer().url


def test_stop_frees_the_port_for_a_new_server() -> None:
    with FakeEngineServer() as first:
        port = first.port
        assert call(first, "POST", SESSION_INITS).status == 201
    with FakeEngineServer(port=port) as second:
        assert second.port == port
        assert call(second, "POST", SESSION_INITS).status == 201


def test_stop_hangs_up_idle_keep_alive_connections() -> None:
    engine = FakeEngineServer().start()
    conn = http.client.HTTPConnection("127.0.0.1", engine.port, timeout=5)
    assert send(conn, "POST", SESSION_INITS).status == 201
    started = time.monotonic()
    engine.stop()
    assert time.monotonic() - started < 2
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        send(conn, "POST", SESSION_INITS)
    conn.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com", ""])
def test_non_loopback_host_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        FakeEngineServer(host=host)


def test_ipv6_loopback_is_served_with_a_bracketed_url() -> None:
    try:
        engine = FakeEngineServer(host="::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with engine:
        assert engine.url == f"http://[::1]:{engine.port}"
        conn = http.client.HTTPConnection("::1", engine.port, timeout=5)
        try:
            assert send(conn, "POST", SESSION_INITS).status == 201
        finally:
            conn.close()


def test_non_loopback_host_is_allowed_when_asked_for() -> None:
    FakeEngineServer(host="0.0.0.0", allow_non_loopback=True)  # constructed, never bound


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_loopback_hosts_are_accepted(host: str) -> None:
    FakeEngineServer(host=host)


@pytest.mark.parametrize(
    "kwargs",
    [{"port": -1}, {"port": 70000}, {"max_body_bytes": -1}, {"token": ""}, {"token": "a b"}],
)
def test_invalid_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        FakeEngineServer(**kwargs)


# POST /uiEvent/sessionInits


@pytest.mark.parametrize("body", [None, b"", b"{}", {"sessionUuid": None}])
def test_session_init_without_session_uuid_gets_one_made_by_the_server(
    server: FakeEngineServer, body: Any
) -> None:
    reply = call(server, "POST", SESSION_INITS, body)
    assert reply.status == 201
    assert reply.headers["Content-Type"] == "application/json"
    document = reply.json()
    assert set(document) == {"id", "uuid", "sessionUuid", "createdAt", "createdBy"}
    assert uuid.UUID(document["sessionUuid"])
    assert document["createdBy"] == server.created_by


def test_session_init_keeps_the_session_uuid_given_in_canonical_lowercase(
    server: FakeEngineServer,
) -> None:
    given = "820CC28F-AE99-55A5-A364-6353EFD4A48B"
    reply = call(server, "POST", SESSION_INITS, {"sessionUuid": given})
    assert reply.status == 201
    assert reply.json()["sessionUuid"] == given.lower()


def test_session_init_answer_parses_as_the_sdk_model_and_is_recorded(
    server: FakeEngineServer,
) -> None:
    reply = call(server, "POST", SESSION_INITS, {})
    answered = SessionInit.from_json(reply.body)
    assert server.session_inits == [answered]
    assert answered.created_at.tzinfo is not None
    assert (
        abs(answered.created_at - datetime.datetime.now(datetime.timezone.utc)).total_seconds() < 60
    )


def test_created_at_is_an_iso_timestamp_with_milliseconds_and_z(server: FakeEngineServer) -> None:
    created_at = call(server, "POST", SESSION_INITS).json()["createdAt"]
    assert len(created_at) == len("2021-05-01T00:00:00.000Z")
    datetime.datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%S.%fZ")


def test_event_ids_increment_across_both_endpoints_and_uuids_differ(
    server: FakeEngineServer,
) -> None:
    first = call(server, "POST", SESSION_INITS).json()
    second = call(server, "POST", OFFER_DISPLAYS, OFFER_BODY).json()
    third = call(server, "POST", SESSION_INITS).json()
    assert [first["id"], second["id"], third["id"]] == [1, 2, 3]
    assert len({first["uuid"], second["uuid"], third["uuid"]}) == 3


def test_created_by_is_fixed_per_server_and_differs_between_servers() -> None:
    with FakeEngineServer() as one, FakeEngineServer() as other:
        answers = [call(one, "POST", SESSION_INITS).json() for _ in range(2)]
        assert {answer["createdBy"] for answer in answers} == {one.created_by}
        assert one.created_by != other.created_by


# POST /uiEvent/offerDisplays


def test_offer_display_echoes_the_offer_and_is_recorded(server: FakeEngineServer) -> None:
    reply = call(server, "POST", OFFER_DISPLAYS, OFFER_BODY)
    assert reply.status == 201
    assert reply.headers["Content-Type"] == "application/json"
    document = reply.json()
    assert {key: document[key] for key in OFFER_BODY} == OFFER_BODY
    assert document["createdBy"] == server.created_by
    assert server.offer_displays == [OfferDisplay.from_json(reply.body)]
    assert server.session_inits == []


def test_keep_alive_connection_serves_many_requests(server: FakeEngineServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        statuses = [send(conn, "POST", OFFER_DISPLAYS, OFFER_BODY).status for _ in range(20)]
    finally:
        conn.close()
    assert statuses == [201] * 20
    assert len(server.offer_displays) == 20


# Authentication


@pytest.mark.parametrize("path", [SESSION_INITS, OFFER_DISPLAYS])
def test_missing_token_is_401_access_token_is_missing(server: FakeEngineServer, path: str) -> None:
    reply = call(server, "POST", path, OFFER_BODY, token=None)
    assert reply.status == 401
    assert reply.json() == [{"message": "Access token is missing"}]
    assert server.session_inits == []
    assert server.offer_displays == []


@pytest.mark.parametrize(
    "authorization", ["Bearer wrong", "Basic cGs6dGVzdA==", f"Token {TOKEN}", "Bearer", TOKEN]
)
def test_wrong_token_or_scheme_is_401_access_token_is_invalid(
    server: FakeEngineServer, authorization: str
) -> None:
    reply = call(
        server,
        "POST",
        OFFER_DISPLAYS,
        OFFER_BODY,
        token=None,
        headers={"Authorization": authorization},
    )
    assert reply.status == 401
    assert reply.json() == [{"message": "Access token is invalid"}]


def test_bearer_scheme_is_case_insensitive(server: FakeEngineServer) -> None:
    reply = call(
        server, "POST", SESSION_INITS, token=None, headers={"Authorization": f"bearer {TOKEN}"}
    )
    assert reply.status == 201


def test_without_a_configured_token_any_non_empty_bearer_token_is_accepted() -> None:
    with FakeEngineServer() as engine:
        assert engine.token is None
        assert call(engine, "POST", SESSION_INITS, token="anything").status == 201
        assert call(engine, "POST", SESSION_INITS, token=None).status == 401


def test_authentication_is_checked_before_the_body(server: FakeEngineServer) -> None:
    reply = call(server, "POST", OFFER_DISPLAYS, b"not json", token="wrong")
    assert reply.status == 401


# Body validation


def _errors_by_attribute(reply: Reply) -> dict[str | None, str]:
    assert reply.status == 400
    assert reply.headers["Content-Type"] == "application/json"
    errors = reply.json()
    assert isinstance(errors, list)
    assert errors
    assert all(isinstance(error["message"], str) and error["message"] for error in errors)
    return {error.get("attribute"): error["type"] for error in errors}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {"rateTableUuid": RATE_TABLE, "offerUuid": OFFER},
            {"leadUuid": "missing"},
            id="missing-required-field",
        ),
        pytest.param(
            {**OFFER_BODY, "rateTableUuid": "not-a-uuid"},
            {"rateTableUuid": "string_pattern_mismatch"},
            id="malformed-uuid",
        ),
        pytest.param(
            {**OFFER_BODY, "offerUuid": 12},
            {"offerUuid": "string_type"},
            id="uuid-not-a-string",
        ),
        pytest.param(
            {**OFFER_BODY, "colour": "blue"},
            {"colour": "extra_forbidden"},
            id="unknown-field",
        ),
        pytest.param(
            {"lead_uuid": LEAD, "rateTableUuid": RATE_TABLE, "offerUuid": OFFER},
            {"leadUuid": "missing", "lead_uuid": "extra_forbidden"},
            id="python-name-instead-of-wire-name",
        ),
        pytest.param(
            b"",
            {"leadUuid": "missing", "rateTableUuid": "missing", "offerUuid": "missing"},
            id="empty-body",
        ),
        pytest.param(b"{not json", {None: "json_invalid"}, id="not-json"),
        pytest.param(b"\xff\xfe", {None: "json_invalid"}, id="not-utf8"),
        pytest.param([OFFER_BODY], {None: "model_type"}, id="json-array"),
        pytest.param(b"null", {None: "model_type"}, id="json-null"),
    ],
)
def test_bad_offer_display_body_is_400_naming_each_problem(
    server: FakeEngineServer, body: Any, expected: dict[str | None, str]
) -> None:
    reply = call(server, "POST", OFFER_DISPLAYS, body)
    assert _errors_by_attribute(reply) == expected
    assert server.offer_displays == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"sessionUuid": "1234"}, {"sessionUuid": "string_pattern_mismatch"}),
        ({"sessionUuid": LEAD, "userId": 7}, {"userId": "extra_forbidden"}),
        (b"[]", {None: "model_type"}),
        (b"}", {None: "json_invalid"}),
    ],
)
def test_bad_session_init_body_is_400_naming_each_problem(
    server: FakeEngineServer, body: Any, expected: dict[str | None, str]
) -> None:
    assert _errors_by_attribute(call(server, "POST", SESSION_INITS, body)) == expected
    assert server.session_inits == []


def test_400_messages_name_the_attribute(server: FakeEngineServer) -> None:
    reply = call(server, "POST", OFFER_DISPLAYS, {**OFFER_BODY, "leadUuid": "x"})
    [error] = reply.json()
    assert error["attribute"] == "leadUuid"
    assert "leadUuid" in error["message"]


# Routing


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/uiEvent/sessionInit"),
        ("GET", "/"),
        ("POST", "/uiEvent/offerDisplays/extra"),
        ("GET", f"{OFFER_DISPLAYS}/{LEAD}/{RATE_TABLE}/pixel.gif"),
    ],
)
def test_unknown_path_is_404_with_an_error_array(
    server: FakeEngineServer, method: str, path: str
) -> None:
    reply = call(server, method, path)
    assert reply.status == 404
    [error] = reply.json()
    assert error["message"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", SESSION_INITS, "POST"),
        ("PUT", OFFER_DISPLAYS, "POST"),
        ("DELETE", SESSION_INITS, "POST"),
        ("POST", PIXEL, "GET"),
    ],
)
def test_other_method_on_a_known_path_is_405_with_allow(
    server: FakeEngineServer, method: str, path: str, allowed: str
) -> None:
    reply = call(server, method, path)
    assert reply.status == 405
    assert reply.headers["Allow"] == allowed
    assert reply.json()[0]["message"]


def test_query_string_does_not_change_the_route(server: FakeEngineServer) -> None:
    assert call(server, "POST", f"{SESSION_INITS}?debug=1").status == 201
    assert server.requests[0].path == f"{SESSION_INITS}?debug=1"


# Body size


def test_body_over_the_limit_is_413_without_being_read() -> None:
    with FakeEngineServer(max_body_bytes=1024) as engine:
        conn = http.client.HTTPConnection("127.0.0.1", engine.port, timeout=5)
        # Announce a megabyte and send none of it: the answer must come anyway.
        conn.putrequest("POST", OFFER_DISPLAYS)
        conn.putheader("Authorization", f"Bearer {TOKEN}")
        conn.putheader("Content-Length", str(1024 * 1024))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413
        assert response.getheader("Connection") == "close"
        assert json.loads(response.read())[0]["type"] == "payload_too_large"
        conn.close()
        assert engine.requests[0].body == b""


def test_body_at_the_limit_is_accepted() -> None:
    body = json.dumps(OFFER_BODY).encode()
    with FakeEngineServer(max_body_bytes=len(body)) as engine:
        assert call(engine, "POST", OFFER_DISPLAYS, body).status == 201
        assert call(engine, "POST", OFFER_DISPLAYS, body + b" ").status == 413


def test_chunked_body_without_content_length_is_411() -> None:
    with FakeEngineServer() as engine:
        conn = http.client.HTTPConnection("127.0.0.1", engine.port, timeout=5)
        conn.putrequest("POST", SESSION_INITS)
        conn.putheader("Authorization", f"Bearer {TOKEN}")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 411
        assert response.getheader("Connection") == "close"
        response.read()
        conn.close()
        assert engine.session_inits == []


def test_malformed_content_length_is_400(server: FakeEngineServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.putrequest("POST", SESSION_INITS)
    conn.putheader("Content-Length", "-5")
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 400
    response.read()
    conn.close()


# Pixel


def test_pixel_is_a_transparent_1x1_gif_that_is_never_cached(server: FakeEngineServer) -> None:
    reply = call(server, "GET", PIXEL, token=None)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "image/gif"
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.body == TRANSPARENT_GIF
    gif = parse_gif(reply.body)
    assert gif["size"] == (1, 1)
    assert gif["transparent"] == 0
    # One 1x1 frame whose only pixel is the transparent colour: CLEAR, pixel 0, END.
    assert gif["frames"] == [(1, 1, [4, 0, 5])]


def test_pixel_records_an_offer_display_without_a_token(server: FakeEngineServer) -> None:
    upper_case = f"{OFFER_DISPLAYS}/{LEAD.upper()}/{RATE_TABLE.upper()}/{OFFER.upper()}/pixel.gif"
    assert call(server, "GET", upper_case, token=None).status == 200
    [display] = server.offer_displays
    assert (display.lead_uuid, display.rate_table_uuid, display.offer_uuid) == (
        LEAD,
        RATE_TABLE,
        OFFER,
    )
    assert display.created_by == server.created_by


def test_pixel_with_a_wrong_token_still_answers_and_records(server: FakeEngineServer) -> None:
    assert call(server, "GET", PIXEL, token="wrong").status == 200
    assert len(server.offer_displays) == 1


@pytest.mark.parametrize(
    "segments", [("lead", RATE_TABLE, OFFER), (LEAD, RATE_TABLE, "12"), ("a", "b", "c")]
)
def test_pixel_with_non_uuid_segments_answers_the_gif_but_records_nothing(
    server: FakeEngineServer, segments: tuple[str, str, str]
) -> None:
    reply = call(server, "GET", f"{OFFER_DISPLAYS}/{'/'.join(segments)}/pixel.gif", token=None)
    assert (reply.status, reply.body) == (200, TRANSPARENT_GIF)
    assert server.offer_displays == []


# Recorded requests


def test_requests_are_recorded_with_the_token_redacted(server: FakeEngineServer) -> None:
    body = json.dumps(OFFER_BODY).encode()
    call(server, "POST", OFFER_DISPLAYS, body, headers={"X-Trace": "abc"})
    [recorded] = server.requests
    assert isinstance(recorded, RecordedRequest)
    assert (recorded.method, recorded.path, recorded.body) == ("POST", OFFER_DISPLAYS, body)
    assert recorded.headers["Authorization"] == "Bearer [REDACTED]"
    assert recorded.headers["X-Trace"] == "abc"
    assert TOKEN not in repr(server.requests)


def test_every_request_is_recorded_even_refused_ones(server: FakeEngineServer) -> None:
    call(server, "POST", SESSION_INITS, token=None)
    call(server, "GET", "/nowhere")
    call(server, "POST", OFFER_DISPLAYS, b"x")
    assert [r.path for r in server.requests] == [SESSION_INITS, "/nowhere", OFFER_DISPLAYS]


def test_inspection_returns_copies(server: FakeEngineServer) -> None:
    call(server, "POST", SESSION_INITS)
    server.requests.clear()
    server.session_inits.clear()
    server.requests[0].headers.clear()
    assert len(server.requests) == 1
    assert server.requests[0].headers
    assert len(server.session_inits) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        server.requests[0].body = b"changed"  # type: ignore[misc]


def test_reset_clears_records_and_pending_faults(server: FakeEngineServer) -> None:
    call(server, "POST", SESSION_INITS)
    call(server, "POST", OFFER_DISPLAYS, OFFER_BODY)
    server.fail_next(500)
    server.drop_next()
    server.delay_next(30)
    server.reset()
    assert (server.requests, server.session_inits, server.offer_displays) == ([], [], [])
    started = time.monotonic()
    assert call(server, "POST", SESSION_INITS).status == 201
    assert time.monotonic() - started < 5


def test_wait_for_requests_returns_once_enough_arrived(server: FakeEngineServer) -> None:
    assert server.wait_for_requests(1, timeout=0.01) is False
    call(server, "GET", PIXEL)
    assert server.wait_for_requests(1, timeout=0.01) is True


# Fault injection


def test_fail_next_answers_with_the_status_and_retry_after_then_recovers(
    server: FakeEngineServer,
) -> None:
    server.fail_next(503, headers={"Retry-After": "1"})
    failed = call(server, "POST", OFFER_DISPLAYS, OFFER_BODY)
    assert failed.status == 503
    assert failed.headers["Retry-After"] == "1"
    assert failed.headers["Content-Type"] == "application/json"
    assert failed.json()[0]["message"] == "Service Unavailable"
    assert server.offer_displays == []
    assert len(server.requests) == 1
    assert call(server, "POST", OFFER_DISPLAYS, OFFER_BODY).status == 201
    assert len(server.offer_displays) == 1


def test_fail_next_times_fails_that_many_requests_in_order(server: FakeEngineServer) -> None:
    server.fail_next(500, times=2)
    server.fail_next(429)
    statuses = [call(server, "POST", SESSION_INITS).status for _ in range(4)]
    assert statuses == [500, 500, 429, 201]
    assert len(server.session_inits) == 1
    assert len(server.requests) == 4


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"\x00raw", "application/octet-stream", b"\x00raw"),
        ("<html>bad gateway</html>", "text/plain; charset=utf-8", b"<html>bad gateway</html>"),
        ({"error": "boom"}, "application/json", b'{"error": "boom"}'),
    ],
)
def test_fail_next_sends_the_given_body(
    server: FakeEngineServer, body: Any, content_type: str, expected: bytes
) -> None:
    server.fail_next(502, body=body)
    reply = call(server, "POST", SESSION_INITS)
    assert (reply.status, reply.headers["Content-Type"], reply.body) == (
        502,
        content_type,
        expected,
    )


def test_fail_next_headers_may_override_the_content_type(server: FakeEngineServer) -> None:
    server.fail_next(200, body="not json", headers={"Content-Type": "application/json"})
    reply = call(server, "POST", SESSION_INITS)
    assert (reply.status, reply.headers["Content-Type"], reply.body) == (
        200,
        "application/json",
        b"not json",
    )


def test_faults_apply_before_authentication(server: FakeEngineServer) -> None:
    server.fail_next(503)
    assert call(server, "POST", SESSION_INITS, token=None).status == 503


def test_faults_apply_to_the_pixel(server: FakeEngineServer) -> None:
    server.fail_next(500)
    assert call(server, "GET", PIXEL, token=None).status == 500
    assert server.offer_displays == []


def test_faults_are_not_spent_on_404_or_405(server: FakeEngineServer) -> None:
    server.fail_next(503)
    assert call(server, "GET", "/nowhere").status == 404
    assert call(server, "GET", SESSION_INITS).status == 405
    assert call(server, "POST", SESSION_INITS).status == 503


def test_delay_next_holds_back_only_the_next_answer(server: FakeEngineServer) -> None:
    server.delay_next(0.25)
    started = time.monotonic()
    assert call(server, "POST", SESSION_INITS).status == 201
    assert time.monotonic() - started >= 0.25
    started = time.monotonic()
    assert call(server, "POST", SESSION_INITS).status == 201
    assert time.monotonic() - started < 0.25


def test_delay_combines_with_a_failure(server: FakeEngineServer) -> None:
    server.delay_next(0.1)
    server.fail_next(504)
    started = time.monotonic()
    assert call(server, "POST", SESSION_INITS).status == 504
    assert time.monotonic() - started >= 0.1


def test_delay_lets_a_client_read_timeout_fire(server: FakeEngineServer) -> None:
    server.delay_next(5)
    pool = urllib3.HTTPConnectionPool("127.0.0.1", server.port, retries=False)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        pool.request(
            "POST",
            SESSION_INITS,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=urllib3.Timeout(connect=5, read=0.1),
        )
    pool.close()


def test_stop_interrupts_a_delayed_answer() -> None:
    engine = FakeEngineServer().start()
    engine.delay_next(60)
    outcome: list[BaseException | int] = []

    def client() -> None:
        try:
            outcome.append(call(engine, "POST", SESSION_INITS).status)
        except (http.client.HTTPException, OSError) as exc:
            outcome.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    assert engine.wait_for_requests(1, include_in_flight=True)  # arrived, held by the delay
    assert engine.requests == []
    started = time.monotonic()
    engine.stop()
    assert time.monotonic() - started < 2
    thread.join(5)
    assert not thread.is_alive()
    [result] = outcome
    assert isinstance(result, (http.client.RemoteDisconnected, ConnectionError))
    assert engine.session_inits == []
    (request,) = engine.requests
    assert (request.status, request.event) == (None, None)


def test_drop_next_closes_the_connection_without_an_answer(server: FakeEngineServer) -> None:
    server.drop_next()
    with pytest.raises(http.client.RemoteDisconnected):
        call(server, "POST", OFFER_DISPLAYS, OFFER_BODY)
    assert len(server.requests) == 1
    assert server.offer_displays == []
    assert call(server, "POST", OFFER_DISPLAYS, OFFER_BODY).status == 201


def test_drop_next_is_a_protocol_error_for_urllib3(server: FakeEngineServer) -> None:
    server.drop_next(times=2)
    pool = urllib3.HTTPConnectionPool("127.0.0.1", server.port, retries=False, timeout=5)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(2):
        with pytest.raises(urllib3.exceptions.ProtocolError):
            pool.request("POST", SESSION_INITS, headers=headers)
    assert pool.request("POST", SESSION_INITS, headers=headers).status == 201
    pool.close()


def test_drop_then_fail_are_played_in_the_order_queued(server: FakeEngineServer) -> None:
    server.drop_next()
    server.fail_next(500)
    with pytest.raises(http.client.RemoteDisconnected):
        call(server, "POST", SESSION_INITS)
    assert call(server, "POST", SESSION_INITS).status == 500
    assert call(server, "POST", SESSION_INITS).status == 201


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("fail_next", (99,)),
        ("fail_next", (600,)),
        ("fail_next", (500, 0)),
        ("delay_next", (-1,)),
        ("delay_next", (1, 0)),
        ("drop_next", (0,)),
    ],
)
def test_fault_arguments_are_checked(
    server: FakeEngineServer, method: str, args: tuple[Any, ...]
) -> None:
    with pytest.raises(ValueError, match="must"):
        getattr(server, method)(*args)


# Concurrency and quietness


def test_concurrent_clients_are_all_answered_and_recorded(server: FakeEngineServer) -> None:
    threads, per_thread = 8, 50
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        start.wait()
        try:
            mine = [
                send(conn, "POST", OFFER_DISPLAYS, OFFER_BODY).status for _ in range(per_thread)
            ]
        finally:
            conn.close()
        with lock:
            statuses.extend(mine)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert statuses == [201] * (threads * per_thread)
    displays = server.offer_displays
    assert len(displays) == threads * per_thread
    assert sorted(display.id for display in displays) == list(range(1, threads * per_thread + 1))
    assert len({display.uuid for display in displays}) == threads * per_thread
    assert len(server.requests) == threads * per_thread


def test_requests_are_logged_at_debug_and_nothing_reaches_stderr(
    server: FakeEngineServer, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="openapi_client.testing")
    call(server, "POST", SESSION_INITS)
    call(server, "GET", "/nowhere")
    server.drop_next()
    with pytest.raises(http.client.RemoteDisconnected):
        call(server, "POST", SESSION_INITS)
    call(server, "POST", SESSION_INITS)  # the dropped request has been handled by now
    assert capfd.readouterr().err == ""
    messages = [r.getMessage() for r in caplog.records if r.name == "openapi_client.testing"]
    assert any("/nowhere" in message and "404" in message for message in messages)
    assert TOKEN not in caplog.text


# Pytest plugin


def test_pytest_plugin_provides_a_started_fake_engine(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["openapi_client.testing.pytest_plugin"]\n')
    pytester.makepyfile(
        """
        import http.client

        from openapi_client.testing import FakeEngineServer

        def test_fixture(fake_engine):
            assert isinstance(fake_engine, FakeEngineServer)
            conn = http.client.HTTPConnection("127.0.0.1", fake_engine.port, timeout=5)
            conn.request("POST", "/uiEvent/sessionInits", headers={"Authorization": "Bearer t"})
            assert conn.getresponse().status == 201
            conn.close()
            assert len(fake_engine.session_inits) == 1
        """
    )
    # The installed entry point carries the module name, so the conftest may list it as well.
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")  # entry point active too
    result.assert_outcomes(passed=1)


def test_testing_package_does_not_import_pytest() -> None:
    import openapi_client.testing

    code = (
        "import sys; import openapi_client.testing; "
        "assert 'pytest' not in sys.modules and '_pytest' not in sys.modules"
    )
    project = pathlib.Path(openapi_client.testing.__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": str(project)}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30, env=env)
