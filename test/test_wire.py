"""The request on the wire: method, path, headers and exact body of both operations, per-call options,
settings changed after the client was made, the three variants of each operation, and closing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import urllib3
from samples import LEAD, OFFER, OFFER_BODY, RATE_TABLE, SESSION
from support import TOKEN, RecordingServer, make_api, make_client

from openapi_client import (
    ApiClient,
    ApiResponse,
    ApiValueError,
    Configuration,
    OfferDisplay,
    OfferDisplayCreateData,
    SessionInit,
    SessionInitCreateData,
    UIEventsApi,
    __version__,
)
from openapi_client.configuration import HostSetting

EXACT_OFFER_JSON = (
    b'{"leadUuid":"f914eb07-a64f-51d8-b882-ff508a8c5c81",'
    b'"rateTableUuid":"952a1184-d369-5958-9a0f-bec903e11c48",'
    b'"offerUuid":"3426f971-1aa5-5cb0-91a9-cf2edcfa5dfa"}'
)


def only_request(server: RecordingServer) -> Any:
    requests = server.requests
    assert len(requests) == 1, requests
    return requests[0]


# -- the two operations ----------------------------------------------------------------------


def test_create_offer_display_posts_camelcase_json_with_bearer_token(
    api: UIEventsApi, recording_server: RecordingServer
) -> None:
    result = api.create_offer_display(OFFER_BODY)

    sent = only_request(recording_server)
    assert sent.method == "POST"
    assert sent.path == "/uiEvent/offerDisplays"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["User-Agent"].startswith(f"openapi_client/{__version__}")
    assert sent.body == EXACT_OFFER_JSON
    assert sent.headers["Content-Length"] == str(len(EXACT_OFFER_JSON))
    assert isinstance(result, OfferDisplay)
    assert (result.lead_uuid, result.rate_table_uuid, result.offer_uuid) == (
        LEAD,
        RATE_TABLE,
        OFFER,
    )


def test_create_session_init_posts_session_uuid(
    api: UIEventsApi, recording_server: RecordingServer
) -> None:
    result = api.create_session_init({"sessionUuid": SESSION})

    sent = only_request(recording_server)
    assert (sent.method, sent.path) == ("POST", "/uiEvent/sessionInits")
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.body == b'{"sessionUuid":"820cc28f-ae99-55a5-a364-6353efd4a48b"}'
    assert isinstance(result, SessionInit)
    assert result.session_uuid == SESSION


def test_create_session_init_without_body_sends_empty_object(
    api: UIEventsApi, recording_server: RecordingServer
) -> None:
    api.create_session_init()
    api.create_session_init(SessionInitCreateData())

    assert [r.body for r in recording_server.requests] == [b"{}", b"{}"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            {"leadUuid": uuid.UUID(LEAD), "rateTableUuid": uuid.UUID(RATE_TABLE),
             "offerUuid": uuid.UUID(OFFER)},
            id="uuid-instances",
        ),
        pytest.param(
            {"leadUuid": LEAD.upper(), "rateTableUuid": RATE_TABLE.upper(),
             "offerUuid": OFFER.upper()},
            id="uppercase-strings",
        ),
        pytest.param(
            {"lead_uuid": LEAD, "rate_table_uuid": RATE_TABLE, "offer_uuid": OFFER},
            id="snake-case-keys",
        ),
        pytest.param(
            OfferDisplayCreateData(lead_uuid=LEAD, rate_table_uuid=RATE_TABLE, offer_uuid=OFFER),
            id="model-instance",
        ),
        pytest.param(
            OfferDisplayCreateData(  # type: ignore[call-arg]  # aliases work at run time
                leadUuid=uuid.UUID(LEAD), rateTableUuid=RATE_TABLE.upper(), offerUuid=OFFER
            ),
            id="model-from-mixed-input",
        ),
    ],
)  # fmt: skip
def test_every_accepted_body_form_sends_the_same_canonical_json(
    api: UIEventsApi, recording_server: RecordingServer, body: Any
) -> None:
    api.create_offer_display(body)

    assert only_request(recording_server).body == EXACT_OFFER_JSON


def test_session_uuid_given_as_uuid_instance_is_sent_lowercase(
    api: UIEventsApi, recording_server: RecordingServer
) -> None:
    api.create_session_init({"session_uuid": uuid.UUID(SESSION.upper())})

    assert json.loads(only_request(recording_server).body) == {"sessionUuid": SESSION}


# -- per-call options ------------------------------------------------------------------------


def test_per_call_headers_win_over_default_headers(
    client: ApiClient, recording_server: RecordingServer
) -> None:
    client.set_default_header("X-Trace", "from-default")
    client.set_default_header("X-Kept", "kept")
    api = UIEventsApi(client)

    api.create_session_init(_headers={"X-Trace": "from-call", "User-Agent": "my-app/2"})

    sent = only_request(recording_server)
    assert sent.headers["X-Trace"] == "from-call"
    assert sent.headers["X-Kept"] == "kept"
    assert sent.headers["User-Agent"] == "my-app/2"
    assert sent.headers.get_all("X-Trace") == ["from-call"]
    assert client.default_headers["X-Trace"] == "from-default"


def test_default_header_given_at_construction_is_sent(recording_server: RecordingServer) -> None:
    with ApiClient(
        Configuration(host=recording_server.url, access_token=TOKEN),
        header_name="X-Partner",
        header_value="acme",
        cookie="sid=1",
    ) as client:
        UIEventsApi(client).create_session_init()

    sent = only_request(recording_server)
    assert sent.headers["X-Partner"] == "acme"
    assert sent.headers["Cookie"] == "sid=1"


def test_user_agent_setter_changes_the_sent_header(
    client: ApiClient, recording_server: RecordingServer
) -> None:
    assert client.user_agent.startswith(f"openapi_client/{__version__}")
    client.user_agent = "custom-agent/1.0"

    UIEventsApi(client).create_session_init()

    assert only_request(recording_server).headers["User-Agent"] == "custom-agent/1.0"


def test_request_auth_header_replaces_configured_token(
    api: UIEventsApi, recording_server: RecordingServer
) -> None:
    api.create_session_init(
        _request_auth={"in": "header", "key": "Authorization", "value": "Bearer other-token"}
    )

    assert only_request(recording_server).headers.get_all("Authorization") == ["Bearer other-token"]


def test_request_auth_with_another_header_drops_configured_token(
    api: UIEventsApi, recording_server: RecordingServer
) -> None:
    api.create_session_init(_request_auth={"in": "header", "key": "X-Api-Key", "value": "k1"})

    sent = only_request(recording_server)
    assert sent.headers["X-Api-Key"] == "k1"
    assert "Authorization" not in sent.headers


def test_request_auth_in_query_is_added_to_url(
    api: UIEventsApi, recording_server: RecordingServer
) -> None:
    api.create_session_init(_request_auth={"in": "query", "key": "token", "value": "a b"})

    assert only_request(recording_server).path == "/uiEvent/sessionInits?token=a+b"


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON"]
)
def test_json_content_type_option_is_sent(
    api: UIEventsApi, recording_server: RecordingServer, content_type: str
) -> None:
    api.create_session_init(_content_type=content_type)

    assert only_request(recording_server).headers["Content-Type"] == content_type


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_non_json_content_type_option_is_refused_before_sending(
    api: UIEventsApi, recording_server: RecordingServer, content_type: str
) -> None:
    with pytest.raises(ApiValueError, match="_content_type"):
        api.create_offer_display(OFFER_BODY, _content_type=content_type)

    assert recording_server.requests == []


class _TwoServers(Configuration):
    """A configuration whose server list points at two local servers."""

    servers: list[HostSetting]

    def get_host_settings(self) -> list[HostSetting]:
        return self.servers


def test_host_index_sends_to_that_server(recording_server: RecordingServer) -> None:
    with RecordingServer() as second:
        config = _TwoServers(host=recording_server.url, access_token=TOKEN, retries=0)
        config.servers = [
            {"url": second.url, "description": "first listed", "variables": {}},
            {"url": recording_server.url + "/other", "description": "second", "variables": {}},
        ]
        with ApiClient(config) as client:
            api = UIEventsApi(client)
            api.create_session_init(_host_index=0)
            api.create_session_init(_host_index=1)
            api.create_session_init()

        assert [r.path for r in second.requests] == ["/uiEvent/sessionInits"]
    assert [r.path for r in recording_server.requests] == [
        "/other/uiEvent/sessionInits",
        "/uiEvent/sessionInits",
    ]


@pytest.mark.parametrize("index", [1, -1, 99])
def test_invalid_host_index_raises_before_sending(
    api: UIEventsApi, recording_server: RecordingServer, index: int
) -> None:
    with pytest.raises(ApiValueError, match="Invalid host index"):
        api.create_session_init(_host_index=index)

    assert recording_server.requests == []


def test_host_with_path_prefix_keeps_the_prefix(recording_server: RecordingServer) -> None:
    with make_client(recording_server, retries=0) as client:
        client.configuration.host = recording_server.url + "/engine/v1/"
        api = UIEventsApi(client)
        api.create_offer_display(OFFER_BODY)
        api.create_session_init()

    assert [r.path for r in recording_server.requests] == [
        "/engine/v1/uiEvent/offerDisplays",
        "/engine/v1/uiEvent/sessionInits",
    ]


def test_host_changed_after_client_was_made_is_honoured(
    api: UIEventsApi, recording_server: RecordingServer
) -> None:
    api.create_session_init()
    with RecordingServer() as second:
        api.api_client.configuration.host = second.url
        api.create_session_init()
        assert len(second.requests) == 1
    assert len(recording_server.requests) == 1


def test_access_token_changed_after_client_was_made_is_honoured(
    api: UIEventsApi, recording_server: RecordingServer
) -> None:
    api.create_session_init()
    api.api_client.configuration.access_token = "pk_rotated"
    api.create_session_init()
    api.api_client.configuration.access_token = None
    with pytest.raises(ApiValueError, match="access_token"):  # nothing to authenticate with
        api.create_session_init()

    first, second = recording_server.requests
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"
    assert second.headers["Authorization"] == "Bearer pk_rotated"


# -- the three variants ----------------------------------------------------------------------


def test_with_http_info_returns_status_headers_model_raw_bytes_and_retries(
    api: UIEventsApi, recording_server: RecordingServer
) -> None:
    answer = {
        "id": 7, "uuid": SESSION, "leadUuid": LEAD, "rateTableUuid": RATE_TABLE,
        "offerUuid": OFFER, "createdAt": "2021-05-01T00:00:00Z", "createdBy": LEAD,
    }  # fmt: skip
    raw = json.dumps(answer).encode()
    recording_server.enqueue(201, raw, {"Content-Type": "application/json", "X-Request-Id": "r-1"})

    response = api.create_offer_display_with_http_info(OFFER_BODY)

    assert isinstance(response, ApiResponse)
    assert response.status_code == 201
    assert response.headers["X-Request-Id"] == "r-1"
    assert response.headers["content-type"] == "application/json"
    assert response.raw_data == raw
    assert response.retries == 0
    assert isinstance(response.data, OfferDisplay)
    assert response.data.id == 7
    assert response.data == OfferDisplay.from_dict(answer)


def test_session_init_with_http_info_returns_parsed_model(
    api: UIEventsApi, recording_server: RecordingServer
) -> None:
    response = api.create_session_init_with_http_info({"sessionUuid": SESSION})

    assert response.status_code == 201
    assert isinstance(response.data, SessionInit)
    assert response.data.session_uuid == SESSION
    assert json.loads(response.raw_data)["sessionUuid"] == SESSION
    assert response.retries == 0


@pytest.mark.parametrize("operation", ["create_offer_display", "create_session_init"])
def test_without_preload_content_returns_unread_urllib3_response(
    api: UIEventsApi, recording_server: RecordingServer, operation: str
) -> None:
    recording_server.enqueue(201, b'{"not": "checked"}', {"Content-Type": "application/json"})
    method = getattr(api, f"{operation}_without_preload_content")
    args = (OFFER_BODY,) if operation == "create_offer_display" else ()

    response = method(*args)
    try:
        assert isinstance(response, urllib3.BaseHTTPResponse)
        assert response.status == 201
        assert response.length_remaining == len(b'{"not": "checked"}')  # nothing read yet
        assert response.read() == b'{"not": "checked"}'
    finally:
        response.release_conn()
    assert len(recording_server.requests) == 1


def test_without_preload_content_does_not_raise_on_error_status(
    api: UIEventsApi, recording_server: RecordingServer
) -> None:
    recording_server.enqueue(401, [{"message": "Access token is missing"}])

    response = api.create_session_init_without_preload_content()
    try:
        assert response.status == 401
        assert json.loads(response.read()) == [{"message": "Access token is missing"}]
    finally:
        response.release_conn()


# -- lifecycle -------------------------------------------------------------------------------


def test_context_manager_closes_the_pool(recording_server: RecordingServer) -> None:
    with make_client(recording_server) as client:
        UIEventsApi(client).create_session_init()
        pool_manager = client._current_state().transport.pool_manager
        assert len(pool_manager.pools) == 1

    assert len(pool_manager.pools) == 0
    assert recording_server.wait_open_connections_at_most(0)


def test_close_closes_idle_connections_even_while_the_pool_is_referenced(
    recording_server: RecordingServer,
) -> None:
    client = make_client(recording_server)
    UIEventsApi(client).create_session_init()
    pool = client._current_state().transport.pool_manager.connection_from_url(recording_server.url)
    assert recording_server.open_connections == 1

    client.close()

    assert recording_server.wait_open_connections_at_most(0)
    assert pool.pool is None  # the pool itself was closed, not just forgotten


def test_client_is_usable_again_after_close(recording_server: RecordingServer) -> None:
    api = make_api(recording_server)
    api.create_session_init()
    api.api_client.close()
    api.create_session_init()
    api.api_client.close()

    assert len(recording_server.requests) == 2
