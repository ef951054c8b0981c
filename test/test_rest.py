"""The transport on its own: ``RESTClientObject.request`` and ``RESTResponse``, as generated
clients expose them, over a real loopback server."""

from __future__ import annotations

import json

import pytest
from support import RecordingServer

from openapi_client import ApiConnectionError, ApiResponseValidationError, Configuration
from openapi_client.rest import ApiException, RESTClientObject, RESTResponse


def test_request_returns_the_whole_answer(recording_server: RecordingServer) -> None:
    rest = RESTClientObject(Configuration(host=recording_server.url))
    try:
        answer = rest.request(
            "POST",
            recording_server.url + "/uiEvent/sessionInits",
            headers={"Content-Type": "application/json"},
            body="{}",
        )
    finally:
        rest.close()
    assert isinstance(answer, RESTResponse)
    assert answer.status == 201
    assert json.loads(answer.data)["sessionUuid"]
    assert answer.getheader("Content-Type") == "application/json"
    assert answer.getheaders()["content-type"] == "application/json"
    (recorded,) = recording_server.requests
    assert recorded.body == b"{}"


def test_request_maps_a_refused_connection(recording_server: RecordingServer) -> None:
    url = recording_server.url
    recording_server.stop()
    rest = RESTClientObject(Configuration(host=url))
    with pytest.raises(ApiConnectionError) as caught:
        rest.request("POST", url + "/uiEvent/sessionInits", body=b"{}")
    assert caught.value.kind == "connect"
    assert isinstance(caught.value, ApiException)


def test_request_refuses_an_answer_over_the_size_limit(recording_server: RecordingServer) -> None:
    recording_server.enqueue(201, {"padding": "x" * 4096})
    rest = RESTClientObject(Configuration(host=recording_server.url))
    with pytest.raises(ApiResponseValidationError) as caught:
        rest.request("POST", recording_server.url + "/uiEvent/sessionInits", max_bytes=1024)
    assert caught.value.status == 201
