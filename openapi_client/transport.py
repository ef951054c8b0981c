"""The transport seam: the request a call sends, the response it gets, the protocol a transport
keeps (``ApiClient(transport=...)``), and reading a body within the call's deadline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple, Protocol

import urllib3

from openapi_client._connections import TRANSPORT_ERRORS, transport_error
from openapi_client._redaction import NO_SECRETS, Redactor, redactor_for
from openapi_client.exceptions import ApiException, ApiResponseValidationError

if TYPE_CHECKING:
    from openapi_client._connections import _Exchange

_CHUNK = 64 * 1024
_COMPRESSED_CHUNK = 16 * 1024
"""Compressed bodies are read in smaller steps: each inflates to at most ~1000x its size."""


class HttpRequest(NamedTuple):
    """One request, built and checked once per call; every attempt sends it unchanged."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None
    timeout: urllib3.Timeout
    """Connect and read timeouts of one attempt."""
    budget: float
    """Seconds the whole call may take: every attempt, every byte, every wait."""
    max_bytes: int
    stream: bool = False
    """Leave the body unread: ``RESTResponse.read()`` reads it (still by the deadline)."""
    secrets: tuple[str, ...] = ()
    """Every credential the request carries; removed from whatever comes back."""

    @property
    def redactor(self) -> Redactor:
        """Removes this request's secrets from text (compiled on first use, then cached)."""
        return redactor_for(self.secrets) if self.secrets else NO_SECRETS

    @property
    def safe_url(self) -> str:
        """The URL without secrets or passwords, for messages and logs."""
        return self.redactor.url(self.url)


class RESTResponse:
    """A response: status, reason, headers, and the body once read (``data``, or ``read()``).

    ``request`` is what was sent (its secrets are removed from anything derived from this
    response); ``retries`` how many times the call was retried before it.
    """

    __slots__ = (
        "_exchange", "data", "headers", "reason", "request", "response", "retries", "status",
    )  # fmt: skip

    def __init__(
        self,
        response: urllib3.BaseHTTPResponse,
        data: bytes | None,
        request: HttpRequest | None = None,
        exchange: _Exchange | None = None,
    ) -> None:
        self.response = response
        self.status: int = response.status
        self.reason: str | None = response.reason
        self.headers = response.headers
        self.data = data
        self.request = request
        self.retries = 0
        self._exchange = exchange

    def read(self) -> bytes:
        """The whole body: read now, within the call's deadline, if it was left unread."""
        if self.data is None:
            max_bytes = self.request.max_bytes if self.request is not None else 1 << 30
            self.data = read_body(self.response, max_bytes, self.request)
        return self.data

    def release_deadline(self) -> urllib3.BaseHTTPResponse:
        """The unread urllib3 response, for a caller who reads it on their own time."""
        if self._exchange is not None:
            self._exchange.deadline = float("inf")
        return self.response

    def getheaders(self) -> Mapping[str, str]:
        """All response headers (case-insensitive mapping)."""
        return self.headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        """One response header."""
        return self.headers.get(name, default)


RESTResponseType = urllib3.HTTPResponse
"""What generated modules annotate raw responses with."""


class Transport(Protocol):
    """What ``ApiClient(transport=...)`` accepts: sends one request, once, and can be closed.

    ``send`` returns the response with its body read (``data``) unless ``request.stream``;
    it raises an ``ApiConnectionError`` when no usable response came, and must not retry.
    """

    def send(self, request: HttpRequest, deadline: float) -> RESTResponse: ...

    def close(self) -> None: ...


def read_body(
    response: urllib3.BaseHTTPResponse, max_bytes: int, request: HttpRequest | None = None
) -> bytes:
    """Read the whole body, at most ``max_bytes`` (after decompression), by the deadline."""
    length = response.length_remaining
    if length is not None and length > max_bytes:
        discard(response)
        raise _too_large(response, max_bytes, request)
    decode = "Content-Encoding" in response.headers  # skip urllib3's decoder set-up otherwise
    size = _COMPRESSED_CHUNK if decode else _CHUNK
    chunks: list[bytes] = []
    received = 0
    try:
        while True:
            chunk = response.read1(size, decode_content=decode)
            if not chunk:
                break
            received += len(chunk)
            if received > max_bytes:
                discard(response)
                raise _too_large(response, max_bytes, request)
            chunks.append(chunk)
            if response.length_remaining == 0 and not decode:
                break
    except TRANSPORT_ERRORS as error:
        failure = transport_error(error, None, request, response_started=True)
    except BaseException:
        discard(response)
        raise
    else:
        response.release_conn()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    discard(response)
    raise failure


def discard(response: urllib3.BaseHTTPResponse) -> None:
    """Close a half-read response's connection so it is never reused, and return it to the pool."""
    response.close()
    response.release_conn()


def _too_large(
    response: urllib3.BaseHTTPResponse, max_bytes: int, request: HttpRequest | None
) -> ApiException:
    redactor = request.redactor if request is not None else NO_SECRETS
    return ApiResponseValidationError(
        status=response.status,
        reason=f"Response larger than max_response_bytes ({max_bytes})",
        body="",
        headers=redactor.headers(response.headers),
        method=request.method if request is not None else None,
        url=request.safe_url if request is not None else None,
    )
