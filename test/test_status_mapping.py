"""How answers map to results: each error status to its exception (with the Engine error array
parsed), and malformed 2xx answers to ApiResponseValidationError."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import pytest
from samples import LEAD
from support import RecordingServer

from openapi_client import (
    ApiException,
    ApiResponseValidationError,
    ApiStatusError,
    BadRequestException,
    ConflictException,
    ForbiddenException,
    NotFoundException,
    ServiceException,
    UIEventsApi,
    UnauthorizedException,
    UnprocessableEntityException,
)
from openapi_client.models import ApiError

OFFER_BODY = {"leadUuid": LEAD, "rateTableUuid": LEAD, "offerUuid": LEAD}
ERRORS: list[dict[str, Any]] = [
    {"attribute": "leadUuid", "type": "invalid", "message": "is not a known lead",
     "details": {"leadUuid": LEAD}},
    {"message": "Something else went wrong"},
]  # fmt: skip

STATUS_CLASSES = [
    (400, BadRequestException, "Bad Request"),
    (401, UnauthorizedException, "Unauthorized"),
    (403, ForbiddenException, "Forbidden"),
    (404, NotFoundException, "Not Found"),
    (409, ConflictException, "Conflict"),
    (422, UnprocessableEntityException, HTTPStatus(422).phrase),  # renamed in Python 3.13
    (500, ServiceException, "Internal Server Error"),
    (502, ServiceException, "Bad Gateway"),
    (503, ServiceException, "Service Unavailable"),
]


@pytest.mark.parametrize(("status", "exc_class", "reason"), STATUS_CLASSES)
def test_error_status_raises_its_exception_with_parsed_errors(
    api: UIEventsApi,
    recording_server: RecordingServer,
    status: int,
    exc_class: type[ApiException],
    reason: str,
) -> None:
    recording_server.enqueue(status, ERRORS, {"X-Request-Id": "req-9"})

    with pytest.raises(exc_class) as caught:
        api.create_offer_display(OFFER_BODY)

    error = caught.value
    assert type(error) is exc_class
    assert error.status == status
    assert error.reason == reason
    assert json.loads(error.body or "") == ERRORS
    assert error.headers is not None
    assert error.headers["X-Request-Id"] == "req-9"
    assert error.retries == 0
    assert error.errors == [ApiError.from_dict(e) for e in ERRORS]
    assert error.errors[0].details == {"leadUuid": LEAD}
    text = str(error)
    assert f"({status})" in text
    assert reason in text
    assert "leadUuid: is not a known lead" in text
    assert "Something else went wrong" in text
    assert len(recording_server.requests) == 1


@pytest.mark.parametrize(("status", "reason"), [(418, "I'm a Teapot"), (302, "Found")])
def test_unmapped_status_raises_the_generic_status_error(
    api: UIEventsApi, recording_server: RecordingServer, status: int, reason: str
) -> None:
    recording_server.enqueue(status, ERRORS[1:], {"Location": "https://elsewhere.test/"})

    with pytest.raises(ApiException) as caught:
        api.create_session_init()

    assert type(caught.value) is ApiStatusError
    assert caught.value.status == status
    assert caught.value.reason == reason
    assert [e.message for e in caught.value.errors] == ["Something else went wrong"]
    assert len(recording_server.requests) == 1  # a redirect is not followed


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"<html>Bad gateway</html>", id="html"),
        pytest.param(b'{"message": "an object, not an array"}', id="object"),
        pytest.param(b'["strings", "not", "objects"]', id="array-of-strings"),
        pytest.param(b'[{"message": 42}]', id="wrong-field-type"),
        pytest.param(b"\xff\xfe not utf-8", id="binary"),
    ],
)
def test_error_body_that_is_not_an_error_array_gives_no_errors(
    api: UIEventsApi, recording_server: RecordingServer, body: bytes
) -> None:
    recording_server.enqueue(400, body, {"Content-Type": "text/html"})

    with pytest.raises(BadRequestException) as caught:
        api.create_session_init()

    assert caught.value.errors == []
    assert str(caught.value).startswith("(400) Bad Request")


def test_str_of_error_shows_body_when_it_is_not_an_error_array(
    api: UIEventsApi, recording_server: RecordingServer
) -> None:
    recording_server.enqueue(500, b"upstream exploded")

    with pytest.raises(ServiceException) as caught:
        api.create_session_init()

    assert "upstream exploded" in str(caught.value)


def test_api_exception_is_importable_from_rest() -> None:
    from openapi_client.rest import ApiException as FromRest

    assert FromRest is ApiException
    assert issubclass(ServiceException, FromRest)


def test_error_body_echoing_the_token_is_scrubbed(
    api: UIEventsApi, recording_server: RecordingServer
) -> None:
    token = api.api_client.configuration.access_token
    assert token
    recording_server.enqueue(401, [{"message": f"token {token} is not valid"}])

    with pytest.raises(UnauthorizedException) as caught:
        api.create_session_init()

    assert token not in (caught.value.body or "")
    assert token not in str(caught.value)


# -- malformed 2xx answers -------------------------------------------------------------------

VALID_SESSION = {
    "id": 1,
    "uuid": LEAD,
    "sessionUuid": LEAD,
    "createdAt": "2021-05-01T00:00:00Z",
    "createdBy": LEAD,
}


@pytest.mark.parametrize(
    ("body", "headers", "fragment"),
    [
        pytest.param(b"not json", {"Content-Type": "application/json"}, "", id="not-json"),
        pytest.param(
            {k: v for k, v in VALID_SESSION.items() if k != "sessionUuid"}, {}, "sessionUuid",
            id="missing-field",
        ),
        pytest.param({**VALID_SESSION, "id": "one"}, {}, "id", id="wrong-type"),
        pytest.param({**VALID_SESSION, "uuid": "nope"}, {}, "uuid", id="bad-uuid"),
        pytest.param([VALID_SESSION], {}, "", id="array"),
        pytest.param(
            json.dumps(VALID_SESSION).encode(), {"Content-Type": "text/html"}, "Content-Type",
            id="wrong-content-type",
        ),
        pytest.param(b"", {"Content-Type": "application/json"}, "", id="empty"),
    ],
)  # fmt: skip
def test_malformed_success_answer_raises_validation_error_keeping_status_and_body(
    api: UIEventsApi,
    recording_server: RecordingServer,
    body: Any,
    headers: dict[str, str],
    fragment: str,
) -> None:
    recording_server.enqueue(201, body, headers)

    with pytest.raises(ApiResponseValidationError) as caught:
        api.create_session_init()

    error = caught.value
    assert error.status == 201
    expected_body = body if isinstance(body, bytes) else json.dumps(body).encode()
    assert error.body == expected_body.decode()
    assert fragment in (error.reason or "")
    assert error.retries == 0
    assert isinstance(error, ApiException)


def test_success_status_200_with_valid_body_is_accepted(
    api: UIEventsApi, recording_server: RecordingServer
) -> None:
    recording_server.enqueue(200, VALID_SESSION)

    response = api.create_session_init_with_http_info()

    assert response.status_code == 200
    assert response.data.session_uuid == LEAD


def test_json_content_type_with_charset_or_suffix_is_accepted(
    api: UIEventsApi, recording_server: RecordingServer
) -> None:
    raw = json.dumps(VALID_SESSION).encode()
    recording_server.enqueue(201, raw, {"Content-Type": "application/json; charset=utf-8"})
    recording_server.enqueue(201, raw, {"Content-Type": "application/problem+json"})

    assert api.create_session_init().id == 1
    assert api.create_session_init().id == 1


NESTED_TOO_DEEP = "[" * 100_000
"""Deeper than Python's json (or pydantic-core) will parse: a RecursionError in ``json.loads``."""


@pytest.mark.parametrize(
    ("status", "exc_class"), [(400, BadRequestException), (500, ServiceException)]
)
def test_error_body_nested_too_deep_raises_the_status_exception(
    api: UIEventsApi,
    recording_server: RecordingServer,
    status: int,
    exc_class: type[ApiException],
) -> None:
    """Unparseable like any other non-array body: the status's exception, with no ``errors``."""
    recording_server.enqueue(status, NESTED_TOO_DEEP, {"Content-Type": "application/json"})

    with pytest.raises(exc_class) as caught:
        api.create_session_init()

    assert caught.value.status == status
    assert caught.value.errors == []
    assert caught.value.body == NESTED_TOO_DEEP


def test_success_body_nested_too_deep_raises_validation_error(
    api: UIEventsApi, recording_server: RecordingServer
) -> None:
    recording_server.enqueue(201, NESTED_TOO_DEEP, {"Content-Type": "application/json"})

    with pytest.raises(ApiResponseValidationError) as caught:
        api.create_session_init()

    assert caught.value.status == 201


@pytest.mark.parametrize("charset", ["x-foo", "hex", "undefined"])
def test_unknown_charset_is_read_as_utf8(
    api: UIEventsApi, recording_server: RecordingServer, charset: str
) -> None:
    """A charset Python has no text codec for changes nothing: JSON is UTF-8, as are error
    bodies; no LookupError escapes, whatever the status."""
    raw = json.dumps(VALID_SESSION).encode()
    recording_server.enqueue(201, raw, {"Content-Type": f"application/json; charset={charset}"})
    recording_server.enqueue(400, ERRORS, {"Content-Type": f"application/json; charset={charset}"})
    recording_server.enqueue(201, raw, {"Content-Type": f"text/html; charset={charset}"})

    assert api.create_session_init().id == 1
    with pytest.raises(BadRequestException) as bad_request:
        api.create_session_init()
    assert bad_request.value.errors == [ApiError.from_dict(e) for e in ERRORS]
    with pytest.raises(ApiResponseValidationError) as not_json:
        api.create_session_init()
    assert "text/html" in (not_json.value.reason or "")
