"""What a call gets back: the model for a 2xx, else the matching exception, with every secret the
request carried removed from whatever the response surfaces."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from openapi_client._redaction import Redactor
from openapi_client.api_response import ApiResponse
from openapi_client.endpoint import Endpoint, ResponseT
from openapi_client.exceptions import ApiException, ApiResponseValidationError, status_error_class
from openapi_client.models.api_error import ApiError
from openapi_client.transport import HttpRequest, RESTResponse
from openapi_client.validation import location

_JSON = "application/json"


def decode(
    request: HttpRequest,
    endpoint: Endpoint[Any, ResponseT],
    response: RESTResponse,
    retries: int,
) -> ApiResponse[ResponseT]:
    """The parsed model for a 2xx; the matching ``ApiException`` (secrets removed) otherwise."""
    status, data = response.status, response.read()
    if not 200 <= status < 300:
        raise response_error(request, response, retries)
    content_type = response.headers.get("Content-Type")
    if content_type is not None and content_type != _JSON and not _is_json(content_type):
        raise response_error(
            request, response, retries, f"expected {_JSON}, got Content-Type {content_type!r}"
        )
    try:
        model = endpoint.decode(data)
    except ValidationError as error:
        raise response_error(
            request, response, retries, _describe_invalid(endpoint, error)
        ) from None
    if model.__pydantic_extra__ and request.secrets:  # fields the API added may echo a secret
        model.__pydantic_extra__ = _scrubbed(model.__pydantic_extra__, request.redactor)
    return ApiResponse(status, response.headers, model, data, retries, request.secrets)


def response_error(
    request: HttpRequest, response: RESTResponse, retries: int, invalid: str | None = None
) -> ApiException:
    """The exception for an error status, or (``invalid`` given) for an unusable 2xx."""
    redactor = request.redactor
    body = redactor.text(response.read().decode("utf-8", "replace"))
    error_class = ApiResponseValidationError if invalid else status_error_class(response.status)
    error = error_class(
        status=response.status,
        reason=redactor.optional(invalid or response.reason),
        body=body,
        headers=redactor.headers(response.headers),
        errors=[] if invalid else ApiError.list_from_body(body),
        method=request.method,
        url=request.safe_url,
    )
    error.retries = retries
    return error


def _scrubbed(value: Any, redactor: Redactor) -> Any:
    """``value`` (decoded JSON) with the secrets removed from every string in it."""
    if isinstance(value, str):
        return redactor.text(value)
    if isinstance(value, dict):
        return {redactor.text(k): _scrubbed(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item, redactor) for item in value]
    return value


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == _JSON or media.endswith("+json")


def _describe_invalid(endpoint: Endpoint[Any, Any], error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False)[:5]:
        problems.append(f"{location(item['loc'])}: {item['msg']}")
    return f"response is not a valid {endpoint.response_type.__name__}: " + "; ".join(problems)
