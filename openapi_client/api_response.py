"""``ApiResponse``: what the ``*_with_http_info`` forms return (and generated modules import)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class ApiResponse(Generic[T]):
    """A response with its metadata: status, headers, the parsed model and the raw bytes."""

    __slots__ = ("_headers", "_secrets", "data", "raw_data", "retries", "status_code")

    def __init__(
        self,
        status_code: int,
        headers: Mapping[str, str] | None,
        data: T,
        raw_data: bytes,
        retries: int = 0,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.status_code = status_code
        self._headers = headers
        self._secrets = secrets
        self.data = data
        self.raw_data = raw_data
        self.retries = retries
        """How many times the call was retried before this response."""

    @property
    def headers(self) -> Mapping[str, str] | None:
        """The response headers, without the request's secrets should the server echo them."""
        if self._secrets and self._headers is not None:
            from urllib3 import HTTPHeaderDict  # case-insensitive, as the headers it replaces

            from openapi_client._redaction import redactor_for

            scrubbed = redactor_for(self._secrets).headers(self._headers)
            self._headers, self._secrets = HTTPHeaderDict(scrubbed), ()
        return self._headers

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled, copied and deep-copied from the scrubbed headers: the request's secrets,
        kept only until ``headers`` is first read, never leave this object."""
        args = (self.status_code, self.headers, self.data, self.raw_data, self.retries)
        return type(self), args

    def __repr__(self) -> str:
        return (
            f"ApiResponse(status_code={self.status_code}, data={self.data!r}, "
            f"retries={self.retries})"
        )
