"""The time bound covers the whole exchange: a call whose budget is B seconds (connect + read
of its timeout, or ``urllib3.Timeout(total=B)``) ends within B plus a small constant whatever
the server does, and raises ``ApiTimeoutError``.

Each server here sends every byte well within the read timeout, so only a deadline over the
whole exchange (status line, headers, interim answers, chunk framing, decoding, retries)
can end the call in time; each server ends on its own after about 5 s, so a client without
such a deadline runs to that end.
"""

from __future__ import annotations

import dataclasses
import json
import time

import urllib3
from faultserver import (
    Behaviour,
    FaultServers,
    answer,
    delayed,
    hang,
    interim_answers,
    loopback_tls,
    trickle_chunk_size,
    trickle_gzip,
    trickle_headers,
    trickle_status_line,
)
from samples import OFFER_BODY, offer_display_answer

from openapi_client import ApiClient, Configuration, RetryPolicy, UIEventsApi
from openapi_client.exceptions import ApiConnectionError, ApiException, ApiTimeoutError

FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.02)
TOKEN = "pk_test_time_bounds"
SLACK = 0.75
"""How far past its budget a call may end: generous, for a loaded 2-core machine."""
VALID = json.dumps(offer_display_answer())
ONE_EACH = (1.0, 1.0)
"""Connect 1 s and read 1 s: a budget of 2 s, and each trickled byte comes well within 1 s."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    error: ApiException | None
    elapsed: float


Timeout = tuple[float, float] | urllib3.Timeout


def timed_post(url: str, timeout: Timeout, *, ca_pem: str | None = None) -> Outcome:
    """One ``create_offer_display`` call with the default retry rules (tiny waits), timed."""
    config = Configuration(host=url, access_token=TOKEN, retries=FAST, ca_cert_data=ca_pem)
    with ApiClient(config) as client:
        api = UIEventsApi(client)
        started = time.monotonic()
        try:
            api.create_offer_display_with_http_info(OFFER_BODY, _request_timeout=timeout)
        except ApiException as error:
            return Outcome(error, time.monotonic() - started)
        return Outcome(None, time.monotonic() - started)


def assert_timed_out_within(outcome: Outcome, budget: float, kind: str | None = None) -> None:
    """The promise: ended within the budget (plus slack), with ``ApiTimeoutError``."""
    assert outcome.elapsed <= budget + SLACK, (
        f"took {outcome.elapsed:.2f} s for a {budget} s budget (ended with {outcome.error!r})"
    )
    assert isinstance(outcome.error, ApiTimeoutError), (
        f"expected ApiTimeoutError, got {outcome.error!r}"
    )
    assert isinstance(outcome.error, ApiConnectionError)
    if kind is not None:
        assert outcome.error.kind == kind


def run_against(servers: FaultServers, behaviour: Behaviour, timeout: Timeout) -> Outcome:
    server = servers(then=behaviour)
    outcome = timed_post(server.url, timeout)
    assert server.attempts == 1, "an answer that had begun must not be retried"
    return outcome


# -- before the body: status line, headers, interim answers ---------------------------------------


def test_trickled_status_line_ends_within_budget(servers: FaultServers) -> None:
    """A status line sent one byte per 0.25 s does not stretch a 2 s call."""
    outcome = run_against(servers, trickle_status_line(201, VALID, every=0.25), ONE_EACH)
    assert_timed_out_within(outcome, 2.0)


def test_trickled_headers_end_within_budget(servers: FaultServers) -> None:
    """Header lines sent one per 0.2 s after a prompt status line do not stretch a 2 s call."""
    outcome = run_against(servers, trickle_headers(201, VALID, lines=25, every=0.2), ONE_EACH)
    assert_timed_out_within(outcome, 2.0, kind="broken")


def test_endless_interim_answers_end_within_budget(servers: FaultServers) -> None:
    """``100 Continue`` every 0.1 s and never a final answer does not stretch a 2 s call."""
    outcome = run_against(servers, interim_answers(every=0.1, count=50), ONE_EACH)
    assert_timed_out_within(outcome, 2.0)


# -- the body's framing and encoding --------------------------------------------------------------


def test_trickled_chunk_size_line_ends_within_budget(servers: FaultServers) -> None:
    """A chunked answer whose chunk-size line comes one byte per 0.25 s ends at the budget."""
    outcome = run_against(servers, trickle_chunk_size(201, VALID, every=0.25), ONE_EACH)
    assert_timed_out_within(outcome, 2.0, kind="broken")


def test_trickled_gzip_body_ends_within_budget(servers: FaultServers) -> None:
    """A gzip body sent one byte per 0.1 s (no decoded byte for ~5 s) ends at the budget."""
    outcome = run_against(servers, trickle_gzip(201, VALID, every=0.1), ONE_EACH)
    assert_timed_out_within(outcome, 2.0, kind="broken")


# -- a total timeout ------------------------------------------------------------------------------


def test_total_timeout_bounds_a_trickled_status_line(servers: FaultServers) -> None:
    """``urllib3.Timeout(total=2)`` ends a call whose status line trickles within 2 s."""
    outcome = run_against(
        servers, trickle_status_line(201, VALID, every=0.25), urllib3.Timeout(total=2)
    )
    assert_timed_out_within(outcome, 2.0)


# -- retries share the budget, connect and read together ------------------------------------------


def test_retry_after_slow_tls_handshake_stays_within_budget(servers: FaultServers) -> None:
    """A retry whose TLS handshake eats most of the time left cannot then read for as long
    again: connect and read of one attempt share what is left of the 5 s budget."""
    tls = loopback_tls()
    server = servers(
        delayed(2.0, answer(503, headers={"Retry-After": "0"})),  # attempt 1: 2 s of 5 s
        then=hang(),  # attempt 2: handshake after 2.2 s (connect limit 2.5 s), then silence
        tls=tls.server_context,
        handshake_delays=(0, 2.2),
    )
    outcome = timed_post(server.url, (2.5, 2.5), ca_pem=tls.ca_pem)
    assert_timed_out_within(outcome, 5.0)
    assert server.attempts == 2
