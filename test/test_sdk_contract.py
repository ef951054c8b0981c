"""The SDK against the fake server, both held to the project's OpenAPI document.

Every request the SDK puts on the wire is validated as a request of the document, and every
answer it parses as a response of the document: SDK, fake and document describe one API.
"""

from __future__ import annotations

import json
import pathlib
import uuid
from collections.abc import Iterator

import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

import openapi_client
from openapi_client.testing import FakeEngineServer, RecordedRequest

DOCUMENT = pathlib.Path(openapi_client.__file__).parent / "openapi.json"
API_HOST = "https://api.engine.tech"
TOKEN = "pk_sdk_contract"
LEAD, RATE_TABLE, OFFER = (str(uuid.uuid4()) for _ in range(3))


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    return OpenAPI.from_dict(json.loads(DOCUMENT.read_text(encoding="utf-8")))


@pytest.fixture
def server() -> Iterator[FakeEngineServer]:
    with FakeEngineServer(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def api(server: FakeEngineServer) -> Iterator[openapi_client.UIEventsApi]:
    config = openapi_client.Configuration(host=server.url, access_token=TOKEN, retries=0)
    with openapi_client.ApiClient(config) as client:
        yield openapi_client.UIEventsApi(client)


def as_openapi_request(recorded: RecordedRequest) -> MockRequest:
    headers = {**recorded.headers, "Authorization": f"Bearer {TOKEN}"}
    return MockRequest(
        API_HOST,
        recorded.method,
        recorded.path,
        headers=headers,
        data=recorded.body,
        content_type=recorded.headers.get("Content-Type", ""),
    )


def check_exchange(
    openapi: OpenAPI, recorded: RecordedRequest, status: int, raw: bytes, content_type: str
) -> None:
    request = as_openapi_request(recorded)
    openapi.validate_request(request)
    openapi.validate_response(
        request, MockResponse(raw, status_code=status, content_type=content_type)
    )


def test_session_init_without_body_matches_the_document(
    openapi: OpenAPI, server: FakeEngineServer, api: openapi_client.UIEventsApi
) -> None:
    answer = api.create_session_init_with_http_info()
    (recorded,) = server.requests
    assert recorded.body == b"{}"
    check_exchange(openapi, recorded, answer.status_code, answer.raw_data, "application/json")
    assert answer.data.session_uuid == server.session_inits[0].session_uuid


def test_session_init_with_uuid_instance_matches_the_document(
    openapi: OpenAPI, server: FakeEngineServer, api: openapi_client.UIEventsApi
) -> None:
    chosen = uuid.uuid4()
    answer = api.create_session_init_with_http_info({"session_uuid": chosen})
    (recorded,) = server.requests
    check_exchange(openapi, recorded, answer.status_code, answer.raw_data, "application/json")
    assert answer.data.session_uuid == str(chosen)


def test_offer_display_matches_the_document(
    openapi: OpenAPI, server: FakeEngineServer, api: openapi_client.UIEventsApi
) -> None:
    body = openapi_client.OfferDisplayCreateData(
        leadUuid=LEAD.upper(), rateTableUuid=RATE_TABLE, offerUuid=OFFER
    )
    answer = api.create_offer_display_with_http_info(body)
    (recorded,) = server.requests
    assert json.loads(recorded.body) == {
        "leadUuid": LEAD,
        "rateTableUuid": RATE_TABLE,
        "offerUuid": OFFER,
    }
    check_exchange(openapi, recorded, answer.status_code, answer.raw_data, "application/json")
    assert server.offer_displays[0] == answer.data


def test_the_fakes_400_reaches_the_sdk_as_bad_request_with_parsed_errors(
    openapi: OpenAPI, server: FakeEngineServer, api: openapi_client.UIEventsApi
) -> None:
    # The SDK refuses bad bodies itself, so send a valid one and let the fake refuse it.
    server.fail_next(400, body=[{"attribute": "offerUuid", "type": "unknown_offer"}])
    with pytest.raises(openapi_client.BadRequestException) as caught:
        api.create_offer_display(
            {"leadUuid": LEAD, "rateTableUuid": RATE_TABLE, "offerUuid": OFFER}
        )
    assert caught.value.errors[0].attribute == "offerUuid"
    check_exchange(
        openapi, server.requests[0], 400, (caught.value.body or "").encode(), "application/json"
    )


def test_wrong_token_is_unauthorized_with_the_apis_message(server: FakeEngineServer) -> None:
    config = openapi_client.Configuration(host=server.url, access_token="not-the-token")
    with (
        openapi_client.ApiClient(config) as client,
        pytest.raises(openapi_client.UnauthorizedException) as caught,
    ):
        openapi_client.UIEventsApi(client).create_session_init()
    assert caught.value.status == 401
    assert caught.value.errors
    assert caught.value.errors[0].message
    assert "not-the-token" not in str(caught.value)
    assert server.session_inits == []


def test_pixel_url_records_a_display_when_loaded(
    openapi: OpenAPI, server: FakeEngineServer, api: openapi_client.UIEventsApi
) -> None:
    import urllib3

    url = api.offer_display_pixel_url(LEAD, uuid.UUID(RATE_TABLE), OFFER)
    answer = urllib3.request("GET", url, timeout=5)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "image/gif"
    assert answer.data.startswith(b"GIF8")
    (display,) = server.offer_displays
    assert (display.lead_uuid, display.rate_table_uuid, display.offer_uuid) == (
        LEAD,
        RATE_TABLE,
        OFFER,
    )
    recorded = server.requests[0]
    request = MockRequest(API_HOST, "GET", recorded.path)
    openapi.validate_request(request)
    openapi.validate_response(
        request, MockResponse(answer.data, status_code=200, content_type="image/gif")
    )
