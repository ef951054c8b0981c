"""An API operation described as data, with the body encoding and response decoding it implies.

Adding an operation is one ``Endpoint(...)`` in ``api/`` plus thin public methods
(see docs/AddingAnEndpoint.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from openapi_client.exceptions import ApiTypeError, ApiValueError, OpenApiException, Problem
from openapi_client.models._base import UUID_ERROR, UUID_RE, RequestModel, ResponseModel
from openapi_client.validation import describe_problems

RequestT = TypeVar("RequestT", bound=RequestModel)
ResponseT = TypeVar("ResponseT", bound=ResponseModel)

UUID_HINT = "must be a UUID such as 'f914eb07-a64f-51d8-b882-ff508a8c5c81'"


def uuid_text(value: object) -> str:
    """A UUID path segment: canonical lowercase text, from a ``str`` or a ``uuid.UUID``."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str) and UUID_RE.fullmatch(value):
        return value.lower()
    raise ValueError(UUID_HINT)


@dataclass(frozen=True)
class PathParam:
    """A ``{name}`` in an endpoint's path, and the check that turns a value into its text."""

    name: str
    check: Callable[[object], str] = str


@dataclass(frozen=True, eq=False)
class Endpoint(Generic[RequestT, ResponseT]):
    """One operation: method, path (with its parameters), body and response models, and auth.

    An operation without a JSON body or response (the pixel, a GET) leaves the models out.
    """

    name: str
    method: str
    path: str
    request_model: type[RequestT] | None = None
    response_model: type[ResponseT] | None = None
    body_param: str = "body"
    body_required: bool = False
    auth: tuple[str, ...] = ("publishableBearerToken",)
    """Names of ``Configuration.auth_settings()`` entries this operation sends."""
    path_params: tuple[PathParam, ...] = ()
    empty_body: bytes = field(default=b"{}")
    decode: Callable[[bytes], ResponseT] = field(init=False, repr=False)
    """Parse and check a response body (raises pydantic's ValidationError; the client maps it)."""
    _validate: Callable[[Any], RequestT] = field(init=False, repr=False)
    _to_json: Callable[..., bytes] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Bound once: pydantic-core's validators and serializer, called without model overhead.
        if self.response_model is not None:
            decode = self.response_model.__pydantic_validator__.validate_json
            object.__setattr__(self, "decode", decode)
        if self.request_model is not None:
            validator, serializer = (
                self.request_model.__pydantic_validator__,
                self.request_model.__pydantic_serializer__,
            )
            object.__setattr__(self, "_validate", validator.validate_python)
            object.__setattr__(self, "_to_json", serializer.to_json)

    @property
    def request_type(self) -> type[RequestT]:
        """The body's model (an operation that takes a JSON body has one)."""
        if self.request_model is None:
            raise TypeError(f"`{self.name}` takes no body")
        return self.request_model

    @property
    def response_type(self) -> type[ResponseT]:
        """The response's model (an operation that answers JSON has one)."""
        if self.response_model is None:
            raise TypeError(f"`{self.name}` has no JSON response")
        return self.response_model

    def validate(self, body: RequestT | dict[str, Any] | None) -> RequestT | None:
        """The body as a checked model (``None`` when it is optional and absent)."""
        model = self.request_model
        if type(body) is dict and model is not None:  # the common case first
            source: Any = body
        elif model is None:
            if body is not None:
                raise ApiTypeError(f"`{self.name}` takes no body")
            return None
        elif body is None:
            if self.body_required:
                raise ApiValueError(
                    f"Missing the required parameter `{self.body_param}` when calling `{self.name}`"
                )
            return None
        elif isinstance(body, dict):
            source = body
        elif isinstance(body, model):
            # Checked again from its fields: model_construct() and model_copy(update=...)
            # build models without validation, and what goes on the wire must be valid.
            source = body.__dict__
        else:
            raise ApiTypeError(
                f"`{self.body_param}` must be a {model.__name__} or a dict, "
                f"not {type(body).__name__}",
                path_to_item=[self.body_param],
            )
        try:
            return self._validate(source)
        except ValidationError as error:
            # A model of the right class with bad fields: the argument's type is right, its
            # value (built without validation) is not.
            raise input_error(error, self.body_param, as_value=source is not body) from None

    def encode(self, body: RequestT | dict[str, Any] | None) -> bytes:
        """Check the body and turn it into the JSON bytes to send; nothing is sent if this raises."""
        model = self.validate(body)
        if model is None:
            return self.empty_body if self.request_model is not None else b""
        return self.serialize(model)

    def serialize(self, model: RequestT) -> bytes:
        """A checked model as the JSON the API speaks."""
        try:
            return self._to_json(model, by_alias=True, exclude_none=True)
        except PydanticSerializationError as error:  # pragma: no cover - checked models serialise
            raise ApiValueError(f"`{self.body_param}` cannot be serialised: {error}") from None

    def build_path(self, values: Mapping[str, object]) -> str:
        """The path with every parameter checked and quoted; every bad one is reported at once."""
        path = self.path
        problems = []
        for param in self.path_params:
            try:
                text = param.check(values.get(param.name))
            except (TypeError, ValueError) as error:
                shown = _preview(values.get(param.name))
                problems.append(Problem((param.name,), f"{error} (got {shown})"))
                continue
            path = path.replace("{" + param.name + "}", quote(text, safe=""))
        if problems:
            raise ApiValueError(
                f"Invalid path parameters of `{self.name}`: {describe_problems(problems)}",
                problems=problems,
            )
        return path


def input_error(error: ValidationError, param: str, as_value: bool = False) -> OpenApiException:
    """One SDK error naming every bad field, each at its own location.

    ``ApiTypeError`` if any value has the wrong type (unless ``as_value``), else ``ApiValueError``.
    """
    problems = []
    is_type_error = False
    for item in error.errors(include_url=False):
        kind, value = item["type"], item.get("input")
        if kind == "missing":
            message = "field required"
        elif kind == UUID_ERROR:
            message = UUID_HINT if isinstance(value, str) else "must be a UUID string or uuid.UUID"
            is_type_error = is_type_error or not isinstance(value, str)
        else:
            message = item["msg"]
            is_type_error = is_type_error or kind.endswith("_type")
        if kind != "missing":
            message += f" (got {_preview(value)})"
        problems.append(Problem((param, *item["loc"]), message))
    exc_class = ApiTypeError if is_type_error and not as_value else ApiValueError
    described = describe_problems([Problem(p.path[1:], p.message) for p in problems])
    return exc_class(f"Invalid `{param}`: {described}", problems=problems)


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
