"""The retry policy end to end: what is retried, how often, how long it waits, and the budget."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from faultserver import Behaviour, FaultServer, FaultServers, answer, hang, refused_url
from samples import OFFER_BODY, offer_display_answer

from openapi_client import ApiClient, Configuration, RetryPolicy, UIEventsApi
from openapi_client.exceptions import (
    ApiConnectionError,
    ApiException,
    ApiStatusError,
    ApiTimeoutError,
    ApiTypeError,
    ApiValueError,
    BadRequestException,
    ConflictException,
    ForbiddenException,
    NotFoundException,
    ServiceException,
    UnauthorizedException,
    UnprocessableEntityException,
)
from openapi_client.retries import DEFAULT_RETRY_POLICY, NO_RETRIES, parse_retry_after

FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.02)
TOKEN = "pk_test_retries"


_clients: list[ApiClient] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def make_api(host: str, retries: object = FAST) -> UIEventsApi:
    client = ApiClient(Configuration(host=host, access_token=TOKEN, retries=retries))
    _clients.append(client)
    return UIEventsApi(client)


def created() -> Behaviour:
    return answer(201, offer_display_answer())


def post(api: UIEventsApi, **options: Any) -> Any:
    return api.create_offer_display_with_http_info(OFFER_BODY, **options)


def http_date(offset_seconds: float) -> str:
    return email.utils.formatdate(time.time() + offset_seconds, usegmt=True)


# -- what is retried -----------------------------------------------------------------------------


def test_refused_connection_is_retried_twice_then_raises_api_connection_error() -> None:
    with refused_url() as url:
        api = make_api(url)
        with pytest.raises(ApiConnectionError) as caught:
            post(api)
    assert type(caught.value) is ApiConnectionError
    assert caught.value.kind == "connect"
    assert caught.value.retries == 2  # three attempts
    assert caught.value.status == 0


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
def test_retryable_status_is_retried_until_the_answer_succeeds(
    servers: FaultServers, status: int
) -> None:
    server = servers(answer(status), answer(status), then=created())
    response = post(make_api(server.url))
    assert response.status_code == 201
    assert response.retries == 2
    assert server.attempts == 3


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
def test_retryable_status_that_persists_raises_with_retry_count(
    servers: FaultServers, status: int
) -> None:
    server = servers(then=answer(status))
    with pytest.raises(ApiException) as caught:
        post(make_api(server.url))
    assert caught.value.status == status
    assert caught.value.retries == 2
    assert server.attempts == 3


def test_each_retry_sends_the_same_body_and_token(servers: FaultServers) -> None:
    server = servers(answer(503), then=created())
    post(make_api(server.url))
    first, second = server.requests
    assert first.body == second.body
    assert first.headers["authorization"] == second.headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, BadRequestException),
        (401, UnauthorizedException),
        (403, ForbiddenException),
        (404, NotFoundException),
        (409, ConflictException),
        (422, UnprocessableEntityException),
        (418, ApiStatusError),
    ],
)
@pytest.mark.parametrize("ambiguous", [False, True], ids=["default", "retry_ambiguous"])
def test_other_client_errors_are_never_retried(
    servers: FaultServers, status: int, exception: type[ApiException], ambiguous: bool
) -> None:
    server = servers(then=answer(status, [{"message": "no"}]))
    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.02, retry_ambiguous=ambiguous)
    with pytest.raises(ApiException) as caught:
        post(make_api(server.url, policy))
    assert type(caught.value) is exception
    assert caught.value.retries == 0
    assert server.attempts == 1


def test_500_is_not_retried_by_default(servers: FaultServers) -> None:
    server = servers(then=answer(500))
    with pytest.raises(ServiceException) as caught:
        post(make_api(server.url))
    assert caught.value.retries == 0
    assert server.attempts == 1


def test_500_is_retried_when_ambiguous_failures_are_allowed(servers: FaultServers) -> None:
    server = servers(answer(500), answer(500), then=created())
    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.02, retry_ambiguous=True)
    response = post(make_api(server.url, policy))
    assert response.retries == 2
    assert server.attempts == 3


def test_read_timeout_is_not_retried_by_default(servers: FaultServers) -> None:
    server = servers(then=hang())
    with pytest.raises(ApiTimeoutError) as caught:
        post(make_api(server.url), _request_timeout=(2.0, 0.2))
    assert caught.value.kind == "timeout"
    assert caught.value.retries == 0
    assert server.attempts == 1


def test_read_timeout_is_retried_when_ambiguous_failures_are_allowed(
    servers: FaultServers,
) -> None:
    server = servers(hang(), hang(), then=created())
    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.02, retry_ambiguous=True)
    response = post(make_api(server.url, policy), _request_timeout=(2.0, 0.2))
    assert response.retries == 2
    assert server.attempts == 3


# -- Retry-After ---------------------------------------------------------------------------------

SLOW_BACKOFF = RetryPolicy(initial_backoff=30.0, max_backoff=30.0, jitter=0.0)
"""A policy whose own waits would take far longer than the test: only Retry-After keeps it fast."""


@pytest.mark.parametrize(
    "retry_after", ["0", "  0 ", http_date(-3600)], ids=["zero", "padded", "past-date"]
)
def test_retry_after_is_honoured_instead_of_the_backoff(
    servers: FaultServers, retry_after: str
) -> None:
    server = servers(
        answer(503, headers={"Retry-After": retry_after}),
        answer(429, headers={"Retry-After": retry_after}),
        then=created(),
    )
    started = time.monotonic()
    response = post(make_api(server.url, SLOW_BACKOFF), _request_timeout=(60, 60))
    assert time.monotonic() - started < 3.0
    assert response.retries == 2


def test_retry_after_above_the_maximum_ends_the_call_without_waiting(
    servers: FaultServers,
) -> None:
    server = servers(then=answer(503, headers={"Retry-After": "3600"}))
    started = time.monotonic()
    with pytest.raises(ServiceException) as caught:
        post(make_api(server.url), _request_timeout=(3600, 3600))
    assert time.monotonic() - started < 1.0
    assert caught.value.retries == 0
    assert caught.value.headers is not None
    assert caught.value.headers["Retry-After"] == "3600"
    assert server.attempts == 1


def test_retry_after_above_a_custom_maximum_ends_the_call(servers: FaultServers) -> None:
    server = servers(then=answer(503, headers={"Retry-After": "2"}))
    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.02, max_retry_after=1.0)
    started = time.monotonic()
    with pytest.raises(ServiceException):
        post(make_api(server.url, policy))
    assert time.monotonic() - started < 1.0
    assert server.attempts == 1


def test_retry_after_is_ignored_when_the_policy_says_so(servers: FaultServers) -> None:
    server = servers(answer(503, headers={"Retry-After": "3600"}), then=created())
    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.02, respect_retry_after=False)
    response = post(make_api(server.url, policy))
    assert response.retries == 1


def test_unparseable_retry_after_falls_back_to_the_backoff(servers: FaultServers) -> None:
    server = servers(answer(503, headers={"Retry-After": "soon"}), then=created())
    response = post(make_api(server.url))
    assert response.retries == 1


# -- the time budget -----------------------------------------------------------------------------


def test_whole_call_never_exceeds_the_timeout_budget(servers: FaultServers) -> None:
    server = servers(then=answer(503, headers={"Retry-After": "1"}))
    started = time.monotonic()
    with pytest.raises(ServiceException) as caught:
        post(make_api(server.url, DEFAULT_RETRY_POLICY), _request_timeout=(0.3, 0.3))
    assert time.monotonic() - started < 1.5
    assert caught.value.retries == 0  # a 1 s wait does not fit in 0.6 s
    assert server.attempts == 1


def test_refused_connection_with_default_backoff_stops_at_the_budget() -> None:
    with refused_url() as url:
        api = make_api(url, DEFAULT_RETRY_POLICY)
        started = time.monotonic()
        with pytest.raises(ApiConnectionError) as caught:
            post(api, _request_timeout=(0.3, 0.3))
        elapsed = time.monotonic() - started
    assert elapsed < 1.5
    assert caught.value.retries < 2  # the second backoff (0.75 s or more) cannot fit in 0.6 s


def test_retried_timeouts_share_one_budget(servers: FaultServers) -> None:
    server = servers(then=hang())
    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.02, retry_ambiguous=True)
    started = time.monotonic()
    with pytest.raises(ApiTimeoutError):
        post(make_api(server.url, policy), _request_timeout=(0.5, 0.4))
    assert time.monotonic() - started < 1.8  # budget 0.9 s, although each attempt may wait 0.4 s


def test_total_timeout_bounds_retries(servers: FaultServers) -> None:
    server = servers(then=hang())
    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.02, retry_ambiguous=True)
    started = time.monotonic()
    with pytest.raises(ApiTimeoutError):
        post(make_api(server.url, policy), _request_timeout=urllib3.Timeout(total=0.5, read=5))
    assert time.monotonic() - started < 1.5


# -- Configuration.retries settings ---------------------------------------------------------------


def test_retries_zero_disables_retrying(servers: FaultServers) -> None:
    server = servers(then=answer(503, headers={"Retry-After": "0"}))
    api = make_api(server.url, 0)
    assert api.api_client.configuration.retries == NO_RETRIES
    with pytest.raises(ServiceException) as caught:
        post(api)
    assert caught.value.retries == 0
    assert server.attempts == 1


@pytest.mark.parametrize("count", [1, 3])
def test_an_int_sets_the_number_of_retries(servers: FaultServers, count: int) -> None:
    server = servers(then=answer(503, headers={"Retry-After": "0"}))
    with pytest.raises(ServiceException) as caught:
        post(make_api(server.url, count))
    assert caught.value.retries == count
    assert server.attempts == count + 1


def test_setting_retries_after_the_client_was_made_takes_effect(servers: FaultServers) -> None:
    server = servers(then=answer(503, headers={"Retry-After": "0"}))
    api = make_api(server.url)
    with pytest.raises(ServiceException):
        post(api)
    api.api_client.configuration.retries = 0
    with pytest.raises(ServiceException):
        post(api)
    assert server.attempts == 3 + 1


def test_urllib3_retry_is_accepted(servers: FaultServers) -> None:
    retry = urllib3.Retry(total=1, status_forcelist=[503], backoff_factor=0.01)
    server = servers(then=answer(503))
    with pytest.raises(ServiceException) as caught:
        post(make_api(server.url, retry))
    assert caught.value.retries == 1
    assert server.attempts == 2


def test_urllib3_retry_status_forcelist_limits_the_retried_statuses(
    servers: FaultServers,
) -> None:
    retry = urllib3.Retry(total=1, status_forcelist=[503], backoff_factor=0.01)
    server = servers(then=answer(502))
    with pytest.raises(ServiceException):
        post(make_api(server.url, retry))
    assert server.attempts == 1


def test_urllib3_retry_also_retries_refused_connections() -> None:
    with refused_url() as url:
        api = make_api(url, urllib3.Retry(total=1, backoff_factor=0.01))
        with pytest.raises(ApiConnectionError) as caught:
            post(api)
    assert caught.value.retries == 1


@pytest.mark.parametrize("value", ["2", 2.5, [1], object()])
def test_retries_setting_of_another_type_is_refused(value: object) -> None:
    with pytest.raises(ApiTypeError):
        Configuration(retries=value)


def test_retries_setting_negative_is_refused() -> None:
    with pytest.raises(ApiValueError):
        Configuration(retries=-1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, DEFAULT_RETRY_POLICY), (True, DEFAULT_RETRY_POLICY), (False, NO_RETRIES)],
)
def test_retries_setting_none_and_bools_normalise(value: object, expected: RetryPolicy) -> None:
    assert Configuration(retries=value).retries == expected


def test_exception_after_retries_has_the_count_and_the_last_answer(servers: FaultServers) -> None:
    server = servers(
        answer(503, headers={"Retry-After": "0"}),
        answer(502, headers={"Retry-After": "0"}),
        then=answer(504, [{"message": "gateway timeout"}]),
    )
    with pytest.raises(ServiceException) as caught:
        post(make_api(server.url))
    assert caught.value.status == 504
    assert caught.value.retries == 2
    assert [error.message for error in caught.value.errors] == ["gateway timeout"]


# -- parse_retry_after and backoff, as units ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("120", 120.0),
        (" 7 ", 7.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-1", None),
        ("1.5", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_future_date_is_seconds_from_now() -> None:
    waited = parse_retry_after(http_date(30))
    assert waited is not None
    assert 25 <= waited <= 31


@pytest.mark.parametrize("policy", [DEFAULT_RETRY_POLICY, FAST, RetryPolicy(jitter=1.0)])
def test_backoff_is_exponential_capped_and_jittered_within_range(policy: RetryPolicy) -> None:
    rng_state = random.getstate()
    try:
        for retry_number in range(1, 12):
            base = min(policy.max_backoff, policy.initial_backoff * 2 ** (retry_number - 1))
            for _ in range(200):
                wait = policy.backoff(retry_number)
                assert base * (1 - policy.jitter) <= wait <= base
    finally:
        random.setstate(rng_state)


def test_backoff_without_jitter_is_exact() -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=8.0, jitter=0.0)
    assert [policy.backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


@pytest.mark.parametrize("retry_number", [64, 1025, 10_000])
def test_backoff_cap_holds_for_very_late_retries(retry_number: int) -> None:
    policy = RetryPolicy(max_retries=20_000, initial_backoff=0.5, max_backoff=8.0)
    assert 0 <= policy.backoff(retry_number) <= 8.0


def test_wait_before_retry_prefers_retry_after_and_refuses_too_long() -> None:
    policy = RetryPolicy(max_retry_after=10.0, jitter=0.0)
    assert policy.wait_before_retry(1, {"Retry-After": "3"}) == 3.0
    assert policy.wait_before_retry(1, {"Retry-After": "11"}) is None
    assert policy.wait_before_retry(2, {}) == 1.0


@pytest.mark.parametrize(
    "settings",
    [{"max_retries": -1}, {"initial_backoff": -0.1}, {"max_backoff": -1}, {"jitter": 1.5}],
)
def test_policy_refuses_bad_values(settings: dict[str, float]) -> None:
    with pytest.raises(ApiValueError):
        RetryPolicy(**settings)  # type: ignore[arg-type]


def test_server_sees_exactly_the_attempts_the_client_reports(servers: FaultServers) -> None:
    server: FaultServer = servers(answer(429), then=created())
    response = post(make_api(server.url))
    assert server.attempts == response.retries + 1
