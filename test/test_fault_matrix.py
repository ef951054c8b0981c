"""Every way the server side can fail, one real loopback server per case, one table.

Each case asserts the outcome (exception class, or success), how many attempts the server saw,
that the call ended within its time bound, and that no connection is left checked out of the
client's pool. The table of results is written to ``test/.fault_matrix.txt``.

All cases use the default retry policy with tiny waits (``FAST``): 2 retries, retried statuses
408/429/502/503/504, refused connections and stale keep-alive connections (a reused connection
closed before any answer byte) retried; a new connection closed before any answer byte
(``dropped``: the server had read the request), read timeouts, 500s and broken answers not
retried.

The time-bound cases send every byte well within the read timeout: only a deadline over the
whole exchange ends them within their budget B (connect + read, or ``Timeout(total=B)``); their
bound is B + 0.75 s.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
import urllib3
from faultserver import (
    FaultServer,
    FaultServers,
    answer,
    close_without_answer,
    created_for_path,
    delayed,
    hang,
    interim_answers,
    keep_alive,
    loopback_tls,
    pool_problems,
    redirect,
    refused_url,
    reset,
    reset_mid_body,
    send_raw,
    stream,
    trickle,
    trickle_chunk_size,
    trickle_gzip,
    trickle_headers,
    trickle_status_line,
)
from samples import OFFER_BODY, offer_display_answer, session_init_answer

from openapi_client import ApiClient, Configuration, RetryPolicy, UIEventsApi
from openapi_client.exceptions import (
    ApiConnectionError,
    ApiException,
    ApiResponseValidationError,
    ApiStatusError,
    ApiTimeoutError,
    BadRequestException,
    ServiceException,
    UnauthorizedException,
)

FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.02)
TOKEN = "pk_test_fault_matrix"
MiB = 1 << 20
TABLE = pathlib.Path(__file__).with_name(".fault_matrix.txt")
HTML = "<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"

Serve = Callable[[FaultServers, ExitStack], "Served"]


@dataclasses.dataclass
class Served:
    """Where a case's client points, the server counting attempts (None: refused), and servers
    that must see nothing (a redirect's target)."""

    url: str
    server: FaultServer | None
    bystanders: list[FaultServer] = dataclasses.field(default_factory=list)
    ca_pem: str | None = None
    """The CA the client must trust, for a TLS server."""


@dataclasses.dataclass(frozen=True)
class Fault:
    id: str
    fault: str
    serve: Serve
    outcome: type[ApiException] | None
    attempts: int
    bound: float
    """Upper bound on the call's elapsed seconds; generous, it proves the call is bounded."""
    timeout: tuple[float, float] | urllib3.Timeout = (2.0, 2.0)
    kind: str | None = None
    status: int | None = None
    operation: str = "offer_display"
    check: Callable[[FaultServer], None] | None = None
    warm_up: bool = False
    """Make one successful call first (not counted), so that a keep-alive connection is pooled."""


def scripted(*script: object, then: object = None) -> Serve:
    def serve(servers: FaultServers, stack: ExitStack) -> Served:
        server = servers(*script, then=then)  # type: ignore[arg-type]
        return Served(server.url, server)

    return serve


def always(behaviour: object) -> Serve:
    return scripted(then=behaviour)


def refused(servers: FaultServers, stack: ExitStack) -> Served:
    return Served(stack.enter_context(refused_url()), None)


def redirect_elsewhere(servers: FaultServers, stack: ExitStack) -> Served:
    elsewhere = servers(then=answer(201, offer_display_answer()))
    server = servers(then=redirect(f"{elsewhere.url}/uiEvent/offerDisplays"))
    return Served(server.url, server, [elsewhere])


def retry_after_slow_handshake(servers: FaultServers, stack: ExitStack) -> Served:
    """TLS; attempt 1 gets a 503 (Retry-After: 0) after 2 s of a 5 s budget, attempt 2's
    handshake takes 2.2 s (connect limit 2.5 s), then the server is silent."""
    tls = loopback_tls()
    server = servers(
        delayed(2.0, answer(503, headers={"Retry-After": "0"})),
        then=hang(),
        tls=tls.server_context,
        handshake_delays=(0, 2.2),
    )
    return Served(server.url, server, ca_pem=tls.ca_pem)


def processed_once_on_a_new_connection(server: FaultServer) -> None:
    """Warm-up and stale attempt on connection 1, the retry on 2; only the retry processed."""
    assert [request.connection for request in server.requests] == [1, 1, 2]
    assert [request.connection for request in server.processed] == [1, 2]


def sent_less_than(limit: int) -> Callable[[FaultServer], None]:
    def check(server: FaultServer) -> None:
        assert server.bytes_sent < limit, f"the client let {server.bytes_sent} bytes through"

    return check


CREATED = answer(201, offer_display_answer())
VALID = json.dumps(offer_display_answer())

CASES = [
    Fault("ok", "201 valid answer (baseline)", always(CREATED), None, 1, 1.0),
    Fault(
        "ok-session-init", "201 valid session init (baseline)",
        always(answer(201, session_init_answer())), None, 1, 1.0, operation="session_init",
    ),
    Fault(
        "refused", "connection refused", refused, ApiConnectionError, 3, 1.0, kind="connect"
    ),
    Fault(
        "closed-before-answer", "new connection closed (FIN) after the request, before any answer",
        always(close_without_answer()), ApiConnectionError, 1, 1.0, kind="dropped",
    ),
    Fault(
        "reset-before-answer", "new connection reset (RST) after the request, before any answer",
        always(reset()), ApiConnectionError, 1, 1.0, kind="dropped",
    ),
    Fault(
        "stale-keep-alive", "reused keep-alive connection closed, request unread (stale)",
        scripted(keep_alive(close_without_answer(), read_body=False), then=created_for_path()),
        None, 2, 1.0, warm_up=True, check=processed_once_on_a_new_connection,
    ),
    Fault(
        "stale-keep-alive-read", "reused keep-alive connection closed after reading the request",
        scripted(keep_alive(close_without_answer()), then=created_for_path()),
        None, 2, 1.0, warm_up=True, check=processed_once_on_a_new_connection,
    ),
    Fault(
        "reset-mid-answer", "reset after the headers and half the body",
        always(reset_mid_body(201, VALID)), ApiConnectionError, 1, 1.0, kind="broken",
    ),
    Fault(
        "not-http", "answer that is not HTTP",
        always(send_raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not HTTP")),
        ApiConnectionError, 1, 1.0, kind="broken",
    ),
    Fault(
        "closed-mid-body", "headers promise 500 bytes, 10 arrive, then FIN",
        always(send_raw(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
            b"Content-Length: 500\r\n\r\n" + VALID[:10].encode(), "closed mid-body",
        )),
        ApiConnectionError, 1, 1.0, kind="broken",
    ),
    Fault(
        "never-answers", "accepts, reads, never answers (timeout 0.5+0.3 s)",
        always(hang()), ApiTimeoutError, 1, 1.6, timeout=(0.5, 0.3), kind="timeout",
    ),
    Fault(
        "slow-trickle", "headers fast, body 1 byte/0.1 s (read timeout 0.3 s, budget 1 s)",
        always(trickle(201, VALID * 4, every=0.1)), ApiTimeoutError, 1, 1.5,
        timeout=(0.7, 0.3), kind="broken",
    ),
    Fault(
        "trickled-status-line", "status line 1 byte/0.25 s (timeout 1+1 s)",
        always(trickle_status_line(201, VALID, every=0.25)), ApiTimeoutError, 1, 2.75,
        timeout=(1.0, 1.0),
    ),
    Fault(
        "trickled-headers", "status line fast, 1 header line/0.2 s (timeout 1+1 s)",
        always(trickle_headers(201, VALID, lines=25, every=0.2)), ApiTimeoutError, 1, 2.75,
        timeout=(1.0, 1.0), kind="broken",
    ),
    Fault(
        "endless-100-continue", "100 Continue every 0.1 s, no final answer (timeout 1+1 s)",
        always(interim_answers(every=0.1, count=50)), ApiTimeoutError, 1, 2.75,
        timeout=(1.0, 1.0),
    ),
    Fault(
        "trickled-chunk-size", "chunked, chunk-size line 1 byte/0.25 s (timeout 1+1 s)",
        always(trickle_chunk_size(201, VALID, every=0.25)), ApiTimeoutError, 1, 2.75,
        timeout=(1.0, 1.0), kind="broken",
    ),
    Fault(
        "trickled-gzip", "gzip body 1 byte/0.1 s (timeout 1+1 s)",
        always(trickle_gzip(201, VALID, every=0.1)), ApiTimeoutError, 1, 2.75,
        timeout=(1.0, 1.0), kind="broken",
    ),
    Fault(
        "total-timeout-trickled-status-line", "status line 1 byte/0.25 s (Timeout(total=2))",
        always(trickle_status_line(201, VALID, every=0.25)), ApiTimeoutError, 1, 2.75,
        timeout=urllib3.Timeout(total=2),
    ),
    Fault(
        "retry-slow-tls-handshake",
        "503 after 2 s, retry's TLS handshake 2.2 s, then silence (timeout 2.5+2.5 s)",
        retry_after_slow_handshake, ApiTimeoutError, 2, 5.75, timeout=(2.5, 2.5),
    ),
    Fault("500", "500", always(answer(500)), ServiceException, 1, 1.0, status=500),
    Fault(
        "500-retry-after", "500 with Retry-After: 0",
        always(answer(500, headers={"Retry-After": "0"})), ServiceException, 1, 1.0, status=500,
    ),
    Fault("502", "502", always(answer(502)), ServiceException, 3, 1.0, status=502),
    Fault(
        "502-retry-after", "502 with Retry-After: 0",
        always(answer(502, headers={"Retry-After": "0"})), ServiceException, 3, 1.0, status=502,
    ),
    Fault("503", "503", always(answer(503)), ServiceException, 3, 1.0, status=503),
    Fault(
        "503-retry-after", "503 with Retry-After: 0",
        always(answer(503, headers={"Retry-After": "0"})), ServiceException, 3, 1.0, status=503,
    ),
    Fault(
        "503-retry-after-too-long", "503 with Retry-After: 120 (> max_retry_after 60)",
        always(answer(503, headers={"Retry-After": "120"})), ServiceException, 1, 1.0,
        status=503,
    ),
    Fault(
        "503-retry-after-past-budget", "503 with Retry-After: 1 (budget 0.6 s)",
        always(answer(503, headers={"Retry-After": "1"})), ServiceException, 1, 1.0,
        timeout=(0.3, 0.3), status=503,
    ),
    Fault(
        "503-then-ok", "503 twice, then 201",
        scripted(answer(503), answer(503), then=CREATED), None, 3, 1.0,
    ),
    Fault("504", "504", always(answer(504)), ServiceException, 3, 1.0, status=504),
    Fault(
        "504-retry-after", "504 with Retry-After: 0",
        always(answer(504, headers={"Retry-After": "0"})), ServiceException, 3, 1.0, status=504,
    ),
    Fault("429", "429", always(answer(429)), ApiStatusError, 3, 1.0, status=429),
    Fault(
        "429-retry-after-date", "429 with Retry-After as an HTTP date in the past",
        always(answer(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})),
        ApiStatusError, 3, 1.0, status=429,
    ),
    Fault("408", "408", always(answer(408)), ApiStatusError, 3, 1.0, status=408),
    Fault(
        "400", "400 with an error array",
        always(answer(400, [{"attribute": "leadUuid", "message": "is invalid"}])),
        BadRequestException, 1, 1.0, status=400,
    ),
    Fault(
        "401", "401", always(answer(401, [{"message": "Access token is invalid"}])),
        UnauthorizedException, 1, 1.0, status=401,
    ),
    Fault(
        "html-502", "HTML error page, text/html 502",
        always(answer(502, HTML, content_type="text/html")), ServiceException, 3, 1.0,
        status=502,
    ),
    Fault(
        "html-200", "HTML page, text/html 200",
        always(answer(200, HTML, content_type="text/html")), ApiResponseValidationError, 1, 1.0,
        status=200,
    ),
    Fault(
        "empty-201", "201 with an empty body", always(answer(201, b"")),
        ApiResponseValidationError, 1, 1.0, status=201,
    ),
    Fault(
        "truncated-json", "201 with truncated JSON", always(answer(201, VALID[:-12])),
        ApiResponseValidationError, 1, 1.0, status=201,
    ),
    Fault(
        "wrong-content-type", "201 valid JSON sent as text/plain",
        always(answer(201, VALID, content_type="text/plain")),
        ApiResponseValidationError, 1, 1.0, status=201,
    ),
    Fault(
        "no-content-type", "201 valid JSON without Content-Type",
        always(answer(201, VALID, content_type=None)), None, 1, 1.0,
    ),
    Fault(
        "wrong-field-types", "201 with wrong field types",
        always(answer(201, {**offer_display_answer(), "id": "one", "leadUuid": 7})),
        ApiResponseValidationError, 1, 1.0, status=201,
    ),
    Fault(
        "json-array", "201 with a JSON array", always(answer(201, [offer_display_answer()])),
        ApiResponseValidationError, 1, 1.0, status=201,
    ),
    Fault(
        "huge-body", "201 with an 8 MiB body (Content-Length; max_response_bytes 1 MiB)",
        always(stream(201, 8 * MiB)), ApiResponseValidationError, 1, 1.0, status=201,
    ),
    Fault(
        "huge-body-no-length", "201 with a 64 MiB body, no Content-Length",
        always(stream(201, 64 * MiB, content_length=False)),
        ApiResponseValidationError, 1, 2.0, status=201, check=sent_less_than(64 * MiB),
    ),
    Fault(
        "huge-error-body", "503 with an 8 MiB body",
        always(stream(503, 8 * MiB)), ApiResponseValidationError, 1, 1.0, status=503,
    ),
    Fault(
        "redirect", "302 to another server", redirect_elsewhere, ApiStatusError, 1, 1.0,
        status=302,
    ),
]  # fmt: skip

_rows: list[tuple[str, str, str, str, str]] = []


@pytest.fixture(scope="module", autouse=True)
def _write_table() -> Iterator[None]:
    yield
    if not _rows:
        return
    header = ("case", "fault", "outcome", "attempts", "elapsed")
    rows = [header, *sorted(_rows, key=lambda row: [c.id for c in CASES].index(row[0]))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    TABLE.write_text("\n".join(lines) + "\n")


def _outcome(error: ApiException | None) -> str:
    if error is None:
        return "success"
    name = type(error).__name__
    detail = f"kind={error.kind}" if isinstance(error, ApiConnectionError) else error.status
    return f"{name} ({detail})"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_fault(case: Fault, servers: FaultServers) -> None:
    with ExitStack() as stack:
        served = case.serve(servers, stack)
        config = Configuration(
            host=served.url, access_token=TOKEN, retries=FAST, ca_cert_data=served.ca_pem
        )
        client = stack.enter_context(ApiClient(config))
        api = UIEventsApi(client)
        call = (
            api.create_offer_display_with_http_info
            if case.operation == "offer_display"
            else api.create_session_init_with_http_info
        )
        body = OFFER_BODY if case.operation == "offer_display" else None
        if case.warm_up:
            call(body)  # type: ignore[arg-type]
        error: ApiException | None = None
        started = time.monotonic()
        try:
            response = call(body, _request_timeout=case.timeout)  # type: ignore[arg-type]
        except ApiException as caught:
            error = caught
        elapsed = time.monotonic() - started
        leftovers = pool_problems(client)

    warm_ups = 1 if case.warm_up else 0
    attempts = served.server.attempts - warm_ups if served.server is not None else None
    if attempts is None:  # refused: nothing listens to count, the client's count must do
        attempts = (error.retries if error is not None else response.retries) + 1
    _rows.append((case.id, case.fault, _outcome(error), str(attempts), f"{elapsed * 1000:.0f} ms"))

    if case.outcome is None:
        assert error is None, f"expected success, got {error!r}"
        assert response.status_code in (200, 201)
        assert response.retries == case.attempts - 1
    else:
        assert type(error) is case.outcome, f"expected {case.outcome.__name__}, got {error!r}"
        assert error.retries == case.attempts - 1
        if case.kind is not None:
            assert isinstance(error, ApiConnectionError)
            assert error.kind == case.kind
        if case.status is not None:
            assert error.status == case.status
    assert attempts == case.attempts
    assert elapsed < case.bound, f"took {elapsed:.2f} s, bound {case.bound} s"
    assert leftovers == [], leftovers
    for bystander in served.bystanders:
        assert bystander.attempts == 0, "the client followed a redirect"
    if case.check is not None and served.server is not None:
        case.check(served.server)


def test_pool_check_sees_a_connection_still_checked_out(servers: FaultServers) -> None:
    server = servers(then=CREATED)
    with ApiClient(Configuration(host=server.url, access_token=TOKEN)) as client:
        raw = UIEventsApi(client).create_offer_display_without_preload_content(OFFER_BODY)
        assert len(pool_problems(client)) == 1  # the unread answer still holds its connection
        raw.read()
        raw.release_conn()
        assert pool_problems(client) == []
