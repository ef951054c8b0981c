"""Every error the SDK raises, as one tree.

OpenApiException
├── ApiTypeError, ApiValueError, ApiKeyError, ApiAttributeError   bad input, found before sending
└── ApiException                                                  the call failed
    ├── BadRequestException (400), UnauthorizedException (401), ForbiddenException (403),
    │   NotFoundException (404), ConflictException (409), UnprocessableEntityException (422),
    │   ServiceException (5xx)                                    the server answered with an error
    ├── ApiConnectionError (status 0)                             no usable answer: refused, reset, TLS…
    │   └── ApiTimeoutError                                       the call ran out of time
    └── ApiResponseValidationError                                a 2xx answer that is not what the API promises
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openapi_client.models.api_error import ApiError
    from openapi_client.retries import FailureKind

PathToItem = Sequence[str | int]


def render_path(path_to_item: PathToItem) -> str:
    """``["a", 0, "b"]`` → ``"['a'][0]['b']"``, as generated clients print item paths."""
    return "".join(f"[{p}]" if isinstance(p, int) else f"['{p}']" for p in path_to_item)


class OpenApiException(Exception):
    """Base of every exception this package raises."""


class _InputError(OpenApiException):
    """Shared shape of the input errors: a message and the path of the offending item."""

    def __init__(
        self,
        msg: str,
        path_to_item: PathToItem | None = None,
        valid_classes: tuple[type, ...] | None = None,
        key_type: bool | None = None,
    ) -> None:
        self.path_to_item = list(path_to_item) if path_to_item else None
        self.valid_classes = valid_classes
        self.key_type = key_type
        full_msg = f"{msg} at {render_path(self.path_to_item)}" if self.path_to_item else msg
        super().__init__(full_msg)


class ApiTypeError(_InputError, TypeError):
    """An argument or field has the wrong type."""


class ApiValueError(_InputError, ValueError):
    """An argument or field has the right type but a bad value."""


class ApiAttributeError(_InputError, AttributeError):
    """An attribute that does not exist was asked for."""


class ApiKeyError(_InputError, KeyError):
    """A key that does not exist was asked for."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ApiException(OpenApiException):
    """The call failed; ``status`` is the HTTP status, or 0 when no answer came."""

    def __init__(
        self,
        status: int | None = None,
        reason: str | None = None,
        http_resp: Any = None,
        *,
        body: str | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if http_resp is not None:
            status = http_resp.status if status is None else status
            reason = http_resp.reason if reason is None else reason
            if body is None:
                raw = http_resp.data
                body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            if headers is None:
                headers = dict(http_resp.headers)
        self.status: int = status or 0
        self.reason: str | None = reason
        self.body: str | None = body
        self.data: Any = data
        self.headers: dict[str, str] | None = dict(headers) if headers is not None else None
        self.retries: int = 0
        """How many times the call was retried before this error was raised."""
        self._errors: list[ApiError] | None = None
        super().__init__(status, reason)

    @property
    def errors(self) -> list[ApiError]:
        """The API's error array (``[ApiError, ...]``) when the body is one, else ``[]``."""
        if self._errors is None:
            self._errors = parse_api_errors(self.body)
        return self._errors

    @classmethod
    def from_response(
        cls,
        *,
        http_resp: Any,
        body: str | None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> ApiException:
        """The exception of the right class for an error answer."""
        status = http_resp.status
        exc_class = STATUS_EXCEPTIONS.get(status) or (
            ServiceException if 500 <= status <= 599 else ApiException
        )
        return exc_class(http_resp=http_resp, body=body, data=data, headers=headers)

    def __str__(self) -> str:
        head = f"({self.status})" if self.status else "(no answer)"
        if self.reason:
            head += f" {self.reason}"
        messages = [_describe(e) for e in self.errors]
        messages = [m for m in messages if m]
        if messages:
            return f"{head}: " + "; ".join(messages)
        if self.body and self.status:
            snippet = self.body if len(self.body) <= 200 else self.body[:200] + "…"
            return f"{head}\nHTTP response body: {snippet}"
        return head

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, reason={self.reason!r})"


def _describe(error: ApiError) -> str:
    if error.message and error.attribute:
        return f"{error.attribute}: {error.message}"
    return error.message or error.attribute or ""


def parse_api_errors(body: str | bytes | None) -> list[ApiError]:
    """Parse an Engine error array; anything else yields ``[]``."""
    if not body:
        return []
    try:
        decoded = json.loads(body)
    except ValueError:
        return []
    if not isinstance(decoded, list) or not all(isinstance(i, dict) for i in decoded):
        return []
    from pydantic import ValidationError

    from openapi_client.models.api_error import ApiError

    try:
        return [ApiError.model_validate(item) for item in decoded]
    except ValidationError:
        return []


class BadRequestException(ApiException):
    """400: the server refused the request body."""


class UnauthorizedException(ApiException):
    """401: the bearer token is missing or not accepted."""


class ForbiddenException(ApiException):
    """403: the token may not do this."""


class NotFoundException(ApiException):
    """404: no such resource (often a wrong host or path prefix)."""


class ConflictException(ApiException):
    """409: the request conflicts with the server's state."""


class UnprocessableEntityException(ApiException):
    """422: the body is well formed but its values were refused."""


class ServiceException(ApiException):
    """5xx: the server failed."""


class ApiConnectionError(ApiException):
    """No usable answer: connection refused or reset, DNS, TLS or proxy failure (status 0)."""

    def __init__(self, reason: str, kind: FailureKind = "other") -> None:
        super().__init__(status=0, reason=reason)
        self.kind = kind
        """How it failed: ``connect``, ``dropped``, ``timeout``, ``broken``, ``tls``, ``proxy``, ``other``.

        ``connect`` and ``dropped`` mean the server never saw the request; after ``timeout`` and
        ``broken`` it may have recorded the event."""


class ApiTimeoutError(ApiConnectionError):
    """The server did not answer within the call's timeout."""


class ApiResponseValidationError(ApiException):
    """A 2xx answer that is not valid JSON or not the model the API promises; keeps status and body."""


STATUS_EXCEPTIONS: dict[int, type[ApiException]] = {
    400: BadRequestException,
    401: UnauthorizedException,
    403: ForbiddenException,
    404: NotFoundException,
    409: ConflictException,
    422: UnprocessableEntityException,
}

__all__ = [
    "ApiAttributeError",
    "ApiConnectionError",
    "ApiException",
    "ApiKeyError",
    "ApiResponseValidationError",
    "ApiTimeoutError",
    "ApiTypeError",
    "ApiValueError",
    "BadRequestException",
    "ConflictException",
    "ForbiddenException",
    "NotFoundException",
    "OpenApiException",
    "ServiceException",
    "UnauthorizedException",
    "UnprocessableEntityException",
]
