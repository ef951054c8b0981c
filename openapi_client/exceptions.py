"""Every error the SDK raises, as one tree. This module imports nothing else of the package.

OpenApiException
├── ApiTypeError, ApiValueError, ApiAttributeError                bad input, found before sending
├── RecorderError                                                 the background recorder refused an event
│   ├── RecorderClosedError                                       ... because it was closed
│   ├── RecorderFullError                                         ... because its queue was full
│   └── RecorderSpooledError                                      ... not yet: it waits in the spool
└── ApiException                                                  the call failed
    ├── ApiStatusError                                            the server answered with an error status
    │   ├── BadRequestException (400), UnauthorizedException (401), ForbiddenException (403),
    │   │   NotFoundException (404), ConflictException (409), UnprocessableEntityException (422)
    │   └── ServiceException (5xx)
    ├── ApiConnectionError (status 0)                             no usable response: refused, reset, TLS…
    │   └── ApiTimeoutError                                       the call ran out of time
    └── ApiResponseValidationError                                a 2xx response that is not what the API promises
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

PathToItem = Sequence[str | int]

FailureKind = Literal["connect", "stale", "dropped", "timeout", "broken", "tls", "proxy", "other"]
"""How a call failed without a response, which decides whether another attempt is safe:

``connect`` the failure came before any byte of the request was written, so the server cannot
have seen it: refused, DNS, a connect or TLS handshake that failed or stalled (also an
``https://`` URL on a plain-HTTP port), a proxy that refused or broke off the ``CONNECT``
tunnel; ``stale`` a reused keep-alive connection closed before any response byte (the server
closed it idle and never read the request); ``dropped`` a new connection closed before any
response byte (the server got the request and may have acted on it); ``timeout`` the request
was sent and no response came within the time allowed; ``broken`` the response stopped midway
or was not HTTP; ``tls`` the server's certificate was rejected (not trusted, or for another
name: a setting to fix, so never retried), or TLS failed after the request was sent;
``proxy`` a proxy failure reported by a transport that cannot tell whether the request was
sent (the SDK's own transport reports a proxy failure before the request as ``connect``);
``other`` anything else."""


def render_path(path_to_item: PathToItem) -> str:
    """``["a", 0, "b"]`` → ``"['a'][0]['b']"``, as generated clients print item paths."""
    return "".join(f"[{p}]" if isinstance(p, int) else f"['{p}']" for p in path_to_item)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (``path``) and what (``message``)."""

    path: tuple[str | int, ...]
    message: str


class OpenApiException(Exception):
    """Base of every exception this package raises."""


class _InputError(OpenApiException):
    """Shared shape of the input errors: a message, and where each problem is."""

    def __init__(
        self,
        msg: str,
        path_to_item: PathToItem | None = None,
        *,
        problems: Sequence[Problem] = (),
    ) -> None:
        self.problems: list[Problem] = list(problems)
        """Every problem found, each with its own location (the message lists them all)."""
        if path_to_item is None and self.problems:
            path_to_item = self.problems[0].path
        self.path_to_item = list(path_to_item) if path_to_item else None
        if self.path_to_item and not self.problems:
            msg = f"{msg} at {render_path(self.path_to_item)}"
        super().__init__(msg)


class ApiTypeError(_InputError, TypeError):
    """An argument or field has the wrong type."""


class ApiValueError(_InputError, ValueError):
    """An argument or field has the right type but a bad value."""


class ApiAttributeError(_InputError, AttributeError):
    """An attribute that does not exist was set or asked for."""


class RecorderError(OpenApiException):
    """The background recorder did not take an event."""


class RecorderClosedError(RecorderError):
    """The recorder was closed: it takes no more events."""


class RecorderFullError(RecorderError):
    """The recorder's memory queue was full and it has no spool: the event was dropped."""


class RecorderSpooledError(RecorderError):
    """The recorder stopped before delivering the event, which waits in the spool: the next
    recorder on that file delivers it. Nothing is lost; this future only cannot tell the end."""


class ApiException(OpenApiException):
    """The call failed; ``status`` is the HTTP status, or 0 when no response came.

    ``method`` and ``url`` name the request (secrets removed); ``retries`` says how many times
    it was retried; ``errors`` holds the API's error array when the response carried one.
    """

    def __init__(
        self,
        status: int | None = None,
        reason: str | None = None,
        http_resp: Any = None,
        *,
        body: str | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Any] = (),
        method: str | None = None,
        url: str | None = None,
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
        self.errors: list[Any] = list(errors)
        """The API's error array as ``ApiError`` models, or ``[]``."""
        self.method = method
        self.url = url
        self.retries: int = 0
        """How many times the call was retried before this error was raised."""
        super().__init__(status, reason)

    @classmethod
    def from_response(
        cls,
        *,
        http_resp: Any,
        body: str | None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Any] = (),
        method: str | None = None,
        url: str | None = None,
    ) -> ApiException:
        """The exception of the right class for an error response."""
        return status_error_class(http_resp.status)(
            http_resp=http_resp, body=body, data=data, headers=headers, errors=errors,
            method=method, url=url,
        )  # fmt: skip

    def __str__(self) -> str:
        head = f"({self.status})" if self.status else "(no response)"
        if self.reason:
            head += f" {self.reason}"
        messages = [m for m in (_describe(e) for e in self.errors) if m]
        if messages:
            return f"{head}: " + "; ".join(messages)
        if self.body and self.status:
            snippet = self.body if len(self.body) <= 200 else self.body[:200] + "…"
            return f"{head}\nHTTP response body: {snippet}"
        return head

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, reason={self.reason!r}, "
            f"method={self.method!r}, url={self.url!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its attributes (args alone would lose them, and some subclasses take
        # other positional arguments).
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[ApiException], state: dict[str, Any]) -> ApiException:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("status"), state.get("reason"))
    error.__dict__.update(state)
    return error


def _describe(error: Any) -> str:
    message = getattr(error, "message", None)
    attribute = getattr(error, "attribute", None)
    if message and attribute:
        return f"{attribute}: {message}"
    return message or attribute or ""


class ApiStatusError(ApiException):
    """The server answered with a status that is not 2xx."""


class BadRequestException(ApiStatusError):
    """400: the server refused the request body."""


class UnauthorizedException(ApiStatusError):
    """401: the bearer token is missing or not accepted."""


class ForbiddenException(ApiStatusError):
    """403: the token may not do this."""


class NotFoundException(ApiStatusError):
    """404: no such resource (often a wrong host or path prefix)."""


class ConflictException(ApiStatusError):
    """409: the request conflicts with the server's state."""


class UnprocessableEntityException(ApiStatusError):
    """422: the body is well formed but its values were refused."""


class ServiceException(ApiStatusError):
    """5xx: the server failed."""


class ApiConnectionError(ApiException):
    """No usable response: connection refused or reset, DNS, TLS or proxy failure (status 0)."""

    def __init__(
        self,
        reason: str,
        kind: FailureKind = "other",
        *,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(status=0, reason=reason, method=method, url=url)
        self.kind: FailureKind = kind
        """How it failed (see ``FailureKind``): ``connect`` and ``stale`` mean the server never
        saw the request; after ``dropped``, ``timeout`` and ``broken`` it may have recorded it."""


class ApiTimeoutError(ApiConnectionError):
    """The call ran out of time (its deadline covers every attempt and every byte)."""


class ApiResponseValidationError(ApiException):
    """A 2xx response that is not valid JSON or not the model the API promises; keeps status and body."""


STATUS_EXCEPTIONS: dict[int, type[ApiStatusError]] = {
    400: BadRequestException,
    401: UnauthorizedException,
    403: ForbiddenException,
    404: NotFoundException,
    409: ConflictException,
    422: UnprocessableEntityException,
}


def status_error_class(status: int) -> type[ApiStatusError]:
    """The exception class for a non-2xx status."""
    return STATUS_EXCEPTIONS.get(status) or (
        ServiceException if 500 <= status <= 599 else ApiStatusError
    )


__all__ = [
    "ApiAttributeError",
    "ApiConnectionError",
    "ApiException",
    "ApiResponseValidationError",
    "ApiStatusError",
    "ApiTimeoutError",
    "ApiTypeError",
    "ApiValueError",
    "BadRequestException",
    "ConflictException",
    "ForbiddenException",
    "NotFoundException",
    "OpenApiException",
    "RecorderClosedError",
    "RecorderError",
    "RecorderFullError",
    "RecorderSpooledError",
    "ServiceException",
    "UnauthorizedException",
    "UnprocessableEntityException",
]
