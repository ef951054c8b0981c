"""An API operation described as data, with the body encoding and answer decoding it implies.

Adding an operation is one ``Endpoint(...)`` in ``api/`` plus thin public methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from openapi_client.exceptions import ApiTypeError, ApiValueError, OpenApiException
from openapi_client.models._base import UUID_ERROR, RequestModel, ResponseModel

RequestT = TypeVar("RequestT", bound=RequestModel)
ResponseT = TypeVar("ResponseT", bound=ResponseModel)

_UUID_HINT = "must be a UUID such as 'f914eb07-a64f-51d8-b882-ff508a8c5c81'"


@dataclass(frozen=True, eq=False)
class Endpoint(Generic[RequestT, ResponseT]):
    """One operation: method, path, body model, answer model, auth, and its body parameter."""

    name: str
    method: str
    path: str
    request_model: type[RequestT]
    response_model: type[ResponseT]
    body_param: str
    body_required: bool
    auth: tuple[str, ...] = ("publishableBearerToken",)
    """Names of ``Configuration.auth_settings()`` entries this operation sends."""
    empty_body: bytes = field(default=b"{}")
    decode: Callable[[bytes], ResponseT] = field(init=False, repr=False)
    """Parse and check an answer body (raises pydantic's ValidationError; the client maps it)."""
    _validate: Callable[[Any], RequestT] = field(init=False, repr=False)
    _to_json: Callable[..., bytes] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Bound once: pydantic-core's validators and serializer, called without model overhead.
        object.__setattr__(self, "decode", self.response_model.__pydantic_validator__.validate_json)
        object.__setattr__(
            self, "_validate", self.request_model.__pydantic_validator__.validate_python
        )
        object.__setattr__(self, "_to_json", self.request_model.__pydantic_serializer__.to_json)

    def encode(self, body: RequestT | dict[str, Any] | None) -> bytes:
        """Check the body and turn it into the JSON bytes to send; nothing is sent if this raises."""
        model = self.request_model
        if body is None:
            if self.body_required:
                raise ApiValueError(
                    f"Missing the required parameter `{self.body_param}` when calling `{self.name}`"
                )
            return self.empty_body
        if type(body) is not model:
            if isinstance(body, dict):
                try:
                    body = self._validate(body)
                except ValidationError as error:
                    raise input_error(error, self.body_param) from None
            elif not isinstance(body, model):
                raise ApiTypeError(
                    f"`{self.body_param}` must be a {model.__name__} or a dict, "
                    f"not {type(body).__name__}",
                    path_to_item=[self.body_param],
                    valid_classes=(model, dict),
                )
        return self._to_json(body, by_alias=True, exclude_none=True)


def input_error(error: ValidationError, param: str) -> OpenApiException:
    """One SDK error naming every bad field: ``ApiTypeError`` if any value has the wrong type."""
    problems = []
    is_type_error = False
    items = error.errors(include_url=False)
    for item in items:
        location = ".".join(str(p) for p in item["loc"]) or "(body)"
        kind, value = item["type"], item.get("input")
        if kind == "missing":
            problems.append(f"{location}: field required")
            continue
        if kind == UUID_ERROR:
            message = _UUID_HINT if isinstance(value, str) else "must be a UUID string or uuid.UUID"
            is_type_error = is_type_error or not isinstance(value, str)
        else:
            message = item["msg"]
            is_type_error = is_type_error or kind.endswith("_type")
        problems.append(f"{location}: {message} (got {_preview(value)})")
    first_loc = [str(p) for p in items[0]["loc"]] if items else []
    exc_class = ApiTypeError if is_type_error else ApiValueError
    return exc_class(f"Invalid `{param}`: " + "; ".join(problems), path_to_item=[param, *first_loc])


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
