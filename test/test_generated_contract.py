"""Modules written as openapi-generator 7.x writes them run unchanged on this ``ApiClient``.

``test/generated/`` holds such modules: one for the two UI Events operations, one for a GET
with path and query parameters and a JSON response. They only use the generator's contract
(``param_serialize``, ``call_api``, ``response_deserialize``, ``select_header_*``) and gain this
SDK's deadline, retries, typed errors and redaction on the way.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultserver import FaultServers, trickle_status_line
from pydantic import SecretStr
from samples import LEAD, OFFER, RATE_TABLE
from support import Canned, Recorded, RecordingServer, race

import openapi_client
import openapi_client.models
from openapi_client import (
    ApiClient,
    ApiResponse,
    ApiStatusError,
    ApiTimeoutError,
    BadRequestException,
    Configuration,
    NotFoundException,
    OfferDisplayCreateData,
    RetryPolicy,
    SessionInitCreateData,
    UnauthorizedException,
)
from openapi_client.exceptions import ApiResponseValidationError, ApiValueError
from openapi_client.models import ApiError, OfferDisplay, SessionInit
from openapi_client.testing import FakeEngineServer

sys.path.insert(0, str(Path(__file__).with_name("generated")))

from rate_table_summary import RateTableSummary
from rate_tables_api import RateTablesApi
from ui_events_api import UIEventsApi as GeneratedUIEventsApi

TOKEN = "pk_test_generated_contract"
FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.02)


@pytest.fixture
def fake() -> Iterator[FakeEngineServer]:
    with FakeEngineServer(token=TOKEN) as server:
        yield server


@pytest.fixture
def events(fake: FakeEngineServer) -> Iterator[GeneratedUIEventsApi]:
    with ApiClient(Configuration(host=fake.url, access_token=TOKEN, retries=FAST)) as client:
        yield GeneratedUIEventsApi(client)


@pytest.fixture
def rate_tables(
    recording_server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RateTablesApi]:
    # A generated package keeps its models in openapi_client.models: put this one there too.
    monkeypatch.setattr(openapi_client.models, "RateTableSummary", RateTableSummary, raising=False)
    config = Configuration(host=recording_server.url, access_token=TOKEN, retries=FAST)
    with ApiClient(config) as client:
        yield RateTablesApi(client)


def offer_body() -> OfferDisplayCreateData:
    return OfferDisplayCreateData(lead_uuid=LEAD, rate_table_uuid=RATE_TABLE, offer_uuid=OFFER)


# -- the generated UI Events module ---------------------------------------------------------


def test_generated_operation_records_an_offer_display(
    events: GeneratedUIEventsApi, fake: FakeEngineServer
) -> None:
    """The generated ``create_offer_display`` sends the model by alias and returns the model."""
    display = events.create_offer_display(offer_body())

    assert isinstance(display, OfferDisplay)
    assert display.offer_uuid == OFFER
    (recorded,) = fake.wait_for_events("offer_display", 1)
    assert recorded.lead_uuid == LEAD
    assert fake.requests[0].token_matches(TOKEN)


def test_generated_with_http_info_returns_api_response(
    events: GeneratedUIEventsApi, fake: FakeEngineServer
) -> None:
    """``_with_http_info`` gives status, headers, the model and the raw bytes."""
    response = events.create_offer_display_with_http_info(offer_body())

    assert isinstance(response, ApiResponse)
    assert response.status_code == 201
    assert response.headers is not None
    assert response.headers["content-type"].startswith("application/json")
    assert json.loads(response.raw_data)["offerUuid"] == OFFER
    assert isinstance(response.data, OfferDisplay)


def test_generated_without_preload_content_returns_the_unread_response(
    events: GeneratedUIEventsApi,
) -> None:
    """``_without_preload_content`` hands back urllib3's response, body readable once."""
    raw = events.create_offer_display_without_preload_content(offer_body())

    assert raw.status == 201
    assert json.loads(raw.read())["leadUuid"] == LEAD


def test_generated_session_init_without_a_body(
    events: GeneratedUIEventsApi, fake: FakeEngineServer
) -> None:
    """An optional body left out: the server makes the sessionUuid."""
    session = events.create_session_init()

    assert isinstance(session, SessionInit)
    assert fake.session_inits[0].session_uuid == session.session_uuid


def test_generated_call_gets_typed_errors_with_the_api_error_array(fake: FakeEngineServer) -> None:
    """A 401 from a generated module is ``UnauthorizedException`` with parsed ``errors``."""
    config = Configuration(host=fake.url, access_token="pk_wrong_token_for_this_test")
    with ApiClient(config) as client, pytest.raises(UnauthorizedException) as caught:
        GeneratedUIEventsApi(client).create_session_init(SessionInitCreateData())

    assert caught.value.errors
    assert all(isinstance(error, ApiError) for error in caught.value.errors)
    assert caught.value.method == "POST"
    assert caught.value.url == fake.url + "/uiEvent/sessionInits"
    assert "pk_wrong_token_for_this_test" not in repr(caught.value) + str(caught.value)


def test_generated_call_is_retried_on_503(
    events: GeneratedUIEventsApi, fake: FakeEngineServer
) -> None:
    """The SDK's retry policy applies: two 503s, then the event is recorded once."""
    fake.fail_next(503, times=2)

    response = events.create_offer_display_with_http_info(offer_body())

    assert response.status_code == 201
    assert response.retries == 2
    assert len(fake.wait_for_events("offer_display", 1)) == 1


def test_generated_call_keeps_the_deadline(servers: FaultServers) -> None:
    """A server trickling its status line cannot hold a generated call past its budget."""
    server = servers(then=trickle_status_line())
    config = Configuration(host=server.url, access_token=TOKEN, timeout=(0.5, 0.5))
    started = time.monotonic()
    with ApiClient(config) as client, pytest.raises(ApiTimeoutError):
        GeneratedUIEventsApi(client).create_offer_display(offer_body())
    assert time.monotonic() - started < 1.0 + 0.75


def test_generated_call_scrubs_a_per_call_token_echoed_back(
    recording_server: RecordingServer,
) -> None:
    """``_request_auth`` in the query, echoed in an error body, is removed from the error."""
    secret = "pk_per_call_" + uuid.uuid4().hex
    recording_server.respond_with(lambda request: Canned(400, [{"message": f"bad {request.path}"}]))
    config = Configuration(host=recording_server.url, retries=0)
    auth = {"in": "query", "key": "api_key", "value": secret, "type": "api_key"}
    with ApiClient(config) as client, pytest.raises(BadRequestException) as caught:
        GeneratedUIEventsApi(client).create_offer_display(offer_body(), _request_auth=auth)

    assert secret in recording_server.requests[0].path  # it was sent ...
    error = caught.value
    for text in (
        str(error),
        repr(error),
        error.body or "",
        *(e.message or "" for e in error.errors),
    ):
        assert secret not in text  # ... and is gone from what came back
    assert error.url is not None
    assert secret not in error.url


def test_generated_call_without_a_credential_is_refused_locally(fake: FakeEngineServer) -> None:
    """An operation whose spec names auth, with no token at all: refused before sending."""
    with ApiClient(Configuration(host=fake.url)) as client, pytest.raises(ApiValueError):
        GeneratedUIEventsApi(client).create_session_init()
    assert fake.requests == []


# -- a generated GET with path and query parameters ------------------------------------------


def summary(request: Recorded) -> Canned:
    uuid_segment = request.path.split("?", 1)[0].rsplit("/", 1)[1]
    return Canned(200, {"uuid": uuid_segment, "leadUuid": LEAD, "offerCount": 3, "tags": ["a"]})


def test_generated_get_quotes_path_and_encodes_query(
    rate_tables: RateTablesApi, recording_server: RecordingServer
) -> None:
    """Path parameters are quoted, booleans written as JSON, ``multi`` lists repeated."""
    recording_server.respond_with(summary)

    result = rate_tables.get_rate_table("rt 1/2", include_offers=True, tags=["new", "b&c"])

    assert isinstance(result, RateTableSummary)
    assert result.offer_count == 3
    (request,) = recording_server.requests
    assert request.method == "GET"
    assert request.path == "/rateTables/rt%201%2F2?includeOffers=true&tags=new&tags=b%26c"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Accept"] == "application/json"
    assert request.body == b""


def test_generated_get_maps_statuses_and_ranges_to_typed_errors(
    rate_tables: RateTablesApi, recording_server: RecordingServer
) -> None:
    """404 is ``NotFoundException``; a "4XX" range in the type map still parses the body."""
    recording_server.enqueue(404, [{"message": "no such rate table"}])
    with pytest.raises(NotFoundException) as missing:
        rate_tables.get_rate_table("nope")
    assert [e.message for e in missing.value.errors] == ["no such rate table"]

    recording_server.enqueue(418, [{"message": "teapot"}])
    with pytest.raises(ApiStatusError) as teapot:
        rate_tables.get_rate_table("tea")
    assert teapot.value.status == 418
    assert [e.message for e in teapot.value.errors] == ["teapot"]


def test_generated_get_refuses_a_2xx_that_is_not_the_model(
    rate_tables: RateTablesApi, recording_server: RecordingServer
) -> None:
    """A 200 whose body is not a ``RateTableSummary`` is an SDK error, not pydantic's."""
    recording_server.enqueue(200, {"uuid": "x", "offerCount": "three"})

    with pytest.raises(ApiResponseValidationError) as caught:
        rate_tables.get_rate_table("x")
    assert caught.value.status == 200


def test_generated_get_with_http_info_counts_retries(
    rate_tables: RateTablesApi, recording_server: RecordingServer
) -> None:
    """A 502 then a 200: the generated call succeeds, ``retries`` says one retry happened."""
    recording_server.enqueue(502, "bad gateway")
    recording_server.respond_with(summary)

    response = rate_tables.get_rate_table_with_http_info("rt")

    assert response.status_code == 200
    assert response.retries == 1
    assert isinstance(response.data, RateTableSummary)


# -- the contract's helpers on their own ------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


def test_sanitize_for_serialization_follows_the_generator() -> None:
    """Models by alias, dates in ISO 8601, containers recursively, secrets revealed to send."""
    client = ApiClient(Configuration())
    moment = datetime.datetime(2026, 11, 27, 12, 30, tzinfo=datetime.timezone.utc)

    sanitized = client.sanitize_for_serialization(
        {
            "body": offer_body(),
            "when": moment,
            "day": datetime.date(2026, 11, 27),
            "amounts": (decimal.Decimal("1.50"), 2),
            "colour": Colour.RED,
            "secret": SecretStr("s3"),
            "nothing": None,
        }
    )

    assert sanitized == {
        "body": {"leadUuid": LEAD, "rateTableUuid": RATE_TABLE, "offerUuid": OFFER},
        "when": "2026-11-27T12:30:00+00:00",
        "day": "2026-11-27",
        "amounts": ["1.50", 2],
        "colour": "red",
        "secret": "s3",
        "nothing": None,
    }


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["application/xml", "application/json"], "application/json"),
        (["text/plain", "application/problem+json"], "application/problem+json"),
        (["text/plain"], "text/plain"),
        ([], None),
    ],
)
def test_select_header_prefers_json(offered: list[str], chosen: str | None) -> None:
    """As generated clients do: the JSON media type if there is one, else the first."""
    client = ApiClient(Configuration())
    assert client.select_header_accept(offered) == chosen
    assert client.select_header_content_type(offered) == chosen


@pytest.mark.parametrize(
    ("text", "type_name", "expected"),
    [
        ('{"a": 1}', "Dict[str, int]", {"a": 1}),
        ("[1, 2]", "List[int]", [1, 2]),
        ('{"x": [1]}', "object", {"x": [1]}),
        ('"2026-11-27"', "date", datetime.date(2026, 11, 27)),
    ],
)
def test_deserialize_resolves_generator_type_strings(
    text: str, type_name: str, expected: Any
) -> None:
    """The type map's strings resolve to Python types and models."""
    client = ApiClient(Configuration())
    assert client.deserialize(text, type_name, "application/json") == expected


def test_deserialize_builds_models_from_openapi_client_models() -> None:
    """``List[ApiError]`` and model names come from ``openapi_client.models``."""
    client = ApiClient(Configuration())
    errors = client.deserialize('[{"message": "m", "attribute": "a"}]', "List[ApiError]", None)
    assert errors == [ApiError(message="m", attribute="a")]


# -- bodies a generated call cannot parse -----------------------------------------------------

NESTED_TOO_DEEP = "[" * 100_000
"""Deeper than Python's json will parse: ``json.loads`` raises RecursionError on it."""


def test_generated_get_with_an_error_body_nested_too_deep_raises_the_status_exception(
    rate_tables: RateTablesApi, recording_server: RecordingServer
) -> None:
    """Unparseable like any other body that is not an error array: 400 is BadRequestException."""
    recording_server.enqueue(400, NESTED_TOO_DEEP, {"Content-Type": "application/json"})

    with pytest.raises(BadRequestException) as caught:
        rate_tables.get_rate_table("rt")
    assert caught.value.errors == []
    assert caught.value.body == NESTED_TOO_DEEP


@pytest.mark.parametrize("response_type", ["RateTableSummary", "object", "List[ApiError]"])
def test_generated_success_body_nested_too_deep_raises_validation_error(
    recording_server: RecordingServer, response_type: str
) -> None:
    """A 2xx nested too deep is a malformed response, as a 2xx that is not JSON is."""
    recording_server.enqueue(200, NESTED_TOO_DEEP, {"Content-Type": "application/json"})
    with ApiClient(Configuration(host=recording_server.url, access_token=TOKEN)) as client:
        serialized = client.param_serialize(
            "GET", "/rateTables/rt", auth_settings=["publishableBearerToken"]
        )
        response = client.call_api(*serialized)
        with pytest.raises(ApiResponseValidationError) as caught:
            client.response_deserialize(response, {"200": response_type})
    assert caught.value.status == 200
    assert "nested too deeply" in (caught.value.reason or "")


# -- charsets ---------------------------------------------------------------------------------


def summary_bytes(encoding: str) -> bytes:
    document = {"uuid": "rt", "leadUuid": LEAD, "offerCount": 1, "tags": ["café"]}
    return json.dumps(document, ensure_ascii=False).encode(encoding)


@pytest.mark.parametrize("charset", ["x-foo", "hex", "undefined"])
def test_generated_get_reads_a_charset_without_a_text_codec_as_utf8(
    rate_tables: RateTablesApi, recording_server: RecordingServer, charset: str
) -> None:
    """An unknown codec (``x-foo``), a bytes codec (``hex``), one that always fails
    (``undefined``): read as UTF-8, as the SDK's own operations read every body."""
    content_type = {"Content-Type": f"application/json; charset={charset}"}
    recording_server.enqueue(200, summary_bytes("utf-8"), content_type)

    assert rate_tables.get_rate_table("rt").tags == ["café"]


def test_generated_get_honours_a_known_charset(
    rate_tables: RateTablesApi, recording_server: RecordingServer
) -> None:
    content_type = {"Content-Type": "application/json; charset=iso-8859-1"}
    recording_server.enqueue(200, summary_bytes("latin-1"), content_type)

    assert rate_tables.get_rate_table("rt").tags == ["café"]


# -- per-call secrets and threads -------------------------------------------------------------

RACE_SECONDS = 2.0
PER_CALL_THREADS = 100
"""More calls serialized at once than the 64 recent per-call secrets a client remembers."""


def test_call_api_is_undisturbed_by_threads_serializing_per_call_auth(
    recording_server: RecordingServer,
) -> None:
    """``call_api`` looks through the client's recent per-call secrets while other threads
    add theirs: every call still succeeds, nothing else escapes."""
    stop = threading.Event()
    failures: list[BaseException] = []
    statuses: list[int] = []
    config = Configuration(host=recording_server.url, access_token=TOKEN, retries=0)
    with ApiClient(config) as client:

        def serialize() -> None:
            number = 0
            while not stop.is_set():
                number += 1
                auth = {"in": "header", "key": "X-Api-Key", "value": f"pk_other_{number:08d}"}
                client.param_serialize("POST", "/uiEvent/sessionInits", body={}, _request_auth=auth)

        def call() -> None:
            serialized = client.param_serialize(
                "POST", "/uiEvent/sessionInits", body={}, auth_settings=["publishableBearerToken"]
            )
            while not stop.is_set():
                try:
                    response = client.call_api(*serialized)
                    response.read()
                    statuses.append(response.status)
                except BaseException as error:
                    failures.append(error)
                    stop.set()

        threads = [threading.Thread(target=serialize) for _ in range(2)]
        threads.append(threading.Thread(target=call))
        race(threads, stop, RACE_SECONDS)

    assert failures == []
    assert statuses
    assert set(statuses) == {201}


def test_each_per_call_secret_is_redacted_however_many_calls_serialize_meanwhile(
    recording_server: RecordingServer,
) -> None:
    """100 threads each serialize a call with their own ``_request_auth``, all before any of
    them sends: every one's secret, echoed in its error, is still removed."""
    recording_server.respond_with(lambda request: Canned(400, [{"message": f"bad {request.path}"}]))
    all_serialized = threading.Barrier(PER_CALL_THREADS)
    shown: list[int] = []
    unexpected: list[BaseException] = []
    config = Configuration(
        host=recording_server.url, retries=0, connection_pool_maxsize=PER_CALL_THREADS
    )
    with ApiClient(config) as client:

        def one_call(number: int) -> None:
            secret = f"pk_per_call_{number:03d}_{uuid.uuid4().hex}"
            auth = {"in": "query", "key": "api_key", "value": secret}
            serialized = client.param_serialize(
                "POST", "/uiEvent/sessionInits", body={}, _request_auth=auth
            )
            all_serialized.wait(30)
            try:
                client.response_deserialize(client.call_api(*serialized), {"201": "SessionInit"})
            except BadRequestException as error:
                texts = [str(error), repr(error), error.body or "", error.url or ""]
                texts += [e.message or "" for e in error.errors]
                if any(secret in text for text in texts):
                    shown.append(number)
            except BaseException as error:
                unexpected.append(error)

        threads = [threading.Thread(target=one_call, args=(n,)) for n in range(PER_CALL_THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    assert unexpected == []
    assert len(recording_server.requests) == PER_CALL_THREADS
    assert all("api_key=pk_per_call_" in r.path for r in recording_server.requests)  # sent ...
    assert shown == []  # ... and removed from every error
