"""The fake and the project's OpenAPI document agree: every answer the fake gives is documented.

The document itself is checked with openapi-spec-validator; the fake's answers, captured over
real loopback HTTP, are validated against it with openapi-core; and the document's schemas
are compared with the SDK's models, so that document, fake and SDK describe one API.
"""

from __future__ import annotations

import copy
import http.client
import json
import pathlib
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import validate as validate_spec
from samples import LEAD, OFFER, OFFER_BODY, RATE_TABLE

from openapi_client.models import (
    ApiError,
    OfferDisplay,
    OfferDisplayCreateData,
    SessionInit,
    SessionInitCreateData,
)
from openapi_client.testing import FakeEngineServer

DOCUMENT_PATH = pathlib.Path(__file__).parents[1] / "openapi_client" / "openapi.json"
API_HOST = "https://api.engine.tech"  # the document's server; the fake's own URL is not in it
TOKEN = "pk_contract"
PIXEL = f"/uiEvent/offerDisplays/{LEAD}/{RATE_TABLE}/{OFFER}/pixel.gif"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def openapi(document: dict[str, Any]) -> OpenAPI:
    return OpenAPI.from_dict(document)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeEngineServer]:
    with FakeEngineServer(token=TOKEN, max_body_bytes=4096) as engine:
        yield engine


def exchange(
    server: FakeEngineServer,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[MockRequest, MockResponse]:
    """Send one request to the fake; return it and the answer in openapi-core's terms."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        answer = conn.getresponse()
        data = answer.read()
    finally:
        conn.close()
    request = MockRequest(
        API_HOST,
        method,
        path,
        headers=headers,
        data=body,
        content_type=(headers or {}).get("Content-Type", "application/json"),
    )
    response = MockResponse(
        data,
        status_code=answer.status,
        headers=dict(answer.getheaders()),
        content_type=answer.getheader("Content-Type", ""),
    )
    return request, response


AUTHORISED = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

# (id, method, path, body, headers, status the fake must answer)
SCENARIOS: list[tuple[str, str, str, bytes, dict[str, str], int]] = [
    ("session-empty-body", "POST", "/uiEvent/sessionInits", b"", AUTHORISED, 201),
    ("session-empty-object", "POST", "/uiEvent/sessionInits", b"{}", AUTHORISED, 201),
    (
        "session-chosen-uuid",
        "POST",
        "/uiEvent/sessionInits",
        json.dumps({"sessionUuid": LEAD}).encode(),
        AUTHORISED,
        201,
    ),
    (
        "session-malformed-uuid",
        "POST",
        "/uiEvent/sessionInits",
        b'{"sessionUuid": "x"}',
        AUTHORISED,
        400,
    ),
    ("session-not-json", "POST", "/uiEvent/sessionInits", b"{", AUTHORISED, 400),
    ("session-no-token", "POST", "/uiEvent/sessionInits", b"{}", {}, 401),
    (
        "session-wrong-token",
        "POST",
        "/uiEvent/sessionInits",
        b"{}",
        {"Authorization": "Bearer nope"},
        401,
    ),
    (
        "session-too-large",
        "POST",
        "/uiEvent/sessionInits",
        b" " * 5000,
        AUTHORISED,
        413,
    ),
    (
        "offer-created",
        "POST",
        "/uiEvent/offerDisplays",
        json.dumps(OFFER_BODY).encode(),
        AUTHORISED,
        201,
    ),
    (
        "offer-missing-field",
        "POST",
        "/uiEvent/offerDisplays",
        json.dumps({"leadUuid": LEAD}).encode(),
        AUTHORISED,
        400,
    ),
    (
        "offer-unknown-field",
        "POST",
        "/uiEvent/offerDisplays",
        json.dumps({**OFFER_BODY, "extra": 1}).encode(),
        AUTHORISED,
        400,
    ),
    ("offer-array", "POST", "/uiEvent/offerDisplays", b"[]", AUTHORISED, 400),
    ("offer-no-token", "POST", "/uiEvent/offerDisplays", b"{}", {}, 401),
    ("pixel", "GET", PIXEL, b"", {}, 200),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [scenario[1:] for scenario in SCENARIOS],
    ids=[scenario[0] for scenario in SCENARIOS],
)
def test_every_exchange_with_the_fake_is_documented(
    openapi: OpenAPI,
    server: FakeEngineServer,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    """Every answer validates; every request the fake accepts validates too."""
    request, response = exchange(server, method, path, body, headers)
    assert response.status_code == status
    openapi.validate_response(request, response)
    if status < 300:
        openapi.validate_request(request)


def test_a_wrong_answer_would_be_caught(openapi: OpenAPI) -> None:
    """The check above has teeth: an answer missing a required field is refused."""
    request = MockRequest(API_HOST, "POST", "/uiEvent/sessionInits", headers=AUTHORISED)
    response = MockResponse(b'{"id": 1}', status_code=201)
    with pytest.raises(Exception, match=r"(?i)valid"):
        openapi.validate_response(request, response)


def test_document_is_valid_openapi_3_0(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.0.3"
    validate_spec(document)


def test_document_describes_the_three_operations_and_their_statuses(
    document: dict[str, Any],
) -> None:
    statuses = {
        (method.upper(), path): sorted(operation["responses"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert statuses == {
        ("POST", "/uiEvent/sessionInits"): ["201", "400", "401", "413"],
        ("POST", "/uiEvent/offerDisplays"): ["201", "400", "401", "413"],
        ("GET", "/uiEvent/offerDisplays/{leadUuid}/{rateTableUuid}/{offerUuid}/pixel.gif"): ["200"],
    }
    schemes = document["components"]["securitySchemes"]
    assert schemes == {
        "publishableBearerToken": {
            "type": "http",
            "scheme": "bearer",
            "description": schemes["publishableBearerToken"]["description"],
        }
    }
    pixel = document["paths"][
        "/uiEvent/offerDisplays/{leadUuid}/{rateTableUuid}/{offerUuid}/pixel.gif"
    ]["get"]
    assert pixel["security"] == []


def _inline_refs(node: Any, document: dict[str, Any]) -> Any:
    """A copy of ``node`` with every local ``$ref`` replaced by what it points at."""
    if isinstance(node, dict):
        if set(node) == {"$ref"}:
            target: Any = document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _inline_refs(target, document)
        return {key: _inline_refs(value, document) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_refs(item, document) for item in node]
    return node


def _examples(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, schema, value) for every example in the document, refs inlined."""
    resolved = _inline_refs(copy.deepcopy(document), document)
    for path, item in resolved["paths"].items():
        for method, operation in item.items():
            bodies = [("request", operation.get("requestBody", {}))]
            bodies += [(status, answer) for status, answer in operation["responses"].items()]
            for where, holder in bodies:
                for media_type, media in holder.get("content", {}).items():
                    for name, example in media.get("examples", {}).items():
                        label = f"{method.upper()} {path} {where} {media_type} {name}"
                        yield label, media["schema"], example["value"]


EXAMPLES = list(_examples(json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))))


def test_document_has_examples_for_requests_and_answers() -> None:
    wheres = {label.split()[2] for label, _, _ in EXAMPLES}
    assert {"request", "201", "400", "401"} <= wheres


@pytest.mark.parametrize(
    ("schema", "value"),
    [example[1:] for example in EXAMPLES],
    ids=[example[0] for example in EXAMPLES],
)
def test_document_examples_match_their_schemas(schema: dict[str, Any], value: Any) -> None:
    OAS30Validator(schema, format_checker=oas30_format_checker).validate(value)


@pytest.mark.parametrize(
    ("schema_name", "model"),
    [
        ("SessionInitCreateData", SessionInitCreateData),
        ("SessionInit", SessionInit),
        ("OfferDisplayCreateData", OfferDisplayCreateData),
        ("OfferDisplay", OfferDisplay),
        ("ApiError", ApiError),
    ],
)
def test_document_schemas_match_the_sdk_models(
    document: dict[str, Any], schema_name: str, model: type[pydantic.BaseModel]
) -> None:
    schema = document["components"]["schemas"][schema_name]
    wire_names = {field.alias or name: field for name, field in model.model_fields.items()}
    assert set(schema["properties"]) == set(wire_names)
    required = {name for name, field in wire_names.items() if field.is_required()}
    assert set(schema.get("required", [])) == required
    refuses_unknown = model.model_config.get("extra") == "forbid"
    assert (schema.get("additionalProperties") is False) == refuses_unknown
