"""The transport: one urllib3 pool per client, one attempt per ``send``, urllib3 errors mapped once.

``ApiException`` is importable from here, as generated clients (and the API docs) import it.
"""

from __future__ import annotations

import http.client
import ssl
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from openapi_client.configuration import DEFAULT_TIMEOUT, timeout_budget
from openapi_client.exceptions import (
    ApiConnectionError,
    ApiException,
    ApiResponseValidationError,
    ApiTimeoutError,
)

if TYPE_CHECKING:
    from openapi_client.configuration import Configuration
    from openapi_client.retries import FailureKind

__all__ = ["ApiException", "RESTClientObject", "RESTResponse", "transport_error"]

_CHUNK = 64 * 1024
_Opener = urllib3.PoolManager | urllib3.HTTPConnectionPool


def _connection_error(kind: FailureKind, reason: str, timeout: bool = False) -> ApiConnectionError:
    return (ApiTimeoutError if timeout else ApiConnectionError)(reason, kind)


def transport_error(error: Exception, answer_started: bool) -> ApiConnectionError:
    """The SDK error for a urllib3 or socket failure: the one place where they are mapped.

    ``answer_started`` tells whether the status line had arrived, which decides whether the
    server may have acted on the request (see ``retries.FailureKind``).
    """
    if isinstance(error, NewConnectionError):  # before ConnectTimeoutError: it subclasses it
        return _connection_error("connect", f"Cannot connect: {_cause(error)}")
    if isinstance(error, ConnectTimeoutError):
        return _connection_error("connect", f"Connect timed out: {_cause(error)}", timeout=True)
    if isinstance(error, ReadTimeoutError):
        kind: FailureKind = "broken" if answer_started else "timeout"
        return _connection_error(kind, "Read timed out waiting for the answer", timeout=True)
    if isinstance(error, SSLError):
        return _connection_error("tls", f"TLS failure: {_cause(error)}")
    if isinstance(error, ProxyError):
        return _connection_error("proxy", f"Proxy failure: {_cause(error)}")
    if isinstance(error, ProtocolError | OSError):
        if answer_started or _garbled_answer(error):
            return _connection_error("broken", f"Answer broken off: {_cause(error)}")
        return _connection_error("dropped", f"Connection closed before an answer: {_cause(error)}")
    return _connection_error("other", f"HTTP failure: {_cause(error)}")


_NO_RETRY = urllib3.Retry(total=False, redirect=False)
"""urllib3 must not retry (``ApiClient`` does); built once, as ``retries=False`` builds one per call."""

_TRANSPORT_ERRORS = (HTTPError, OSError)
"""What urllib3 and the socket layer raise; ``transport_error`` maps each to an SDK error."""


def _garbled_answer(error: BaseException) -> bool:
    """Bytes came back but were not an HTTP answer: the server may have acted on the request."""
    inner = error.args[-1] if error.args else None
    return isinstance(inner, http.client.HTTPException) and not isinstance(
        inner,
        http.client.RemoteDisconnected,  # closed without a byte: nothing was answered
    )


def _cause(error: BaseException) -> str:
    """The innermost useful message of a urllib3 error (they nest the socket error in args)."""
    inner: BaseException = error
    while inner.args and isinstance(inner.args[-1], BaseException):
        inner = inner.args[-1]
    text = str(inner) or type(inner).__name__
    return text.split(">: ", 1)[-1]  # drop urllib3's "<HTTPConnection object at 0x…>: " prefix


class RESTResponse:
    """An answer read in full: status, reason, headers and body bytes."""

    __slots__ = ("data", "headers", "reason", "response", "status")

    def __init__(self, response: urllib3.BaseHTTPResponse, data: bytes) -> None:
        self.response = response
        self.status: int = response.status
        self.reason: str | None = response.reason
        self.headers = response.headers
        self.data = data

    def getheaders(self) -> Mapping[str, str]:
        """All answer headers (case-insensitive mapping)."""
        return self.headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        """One answer header."""
        return self.headers.get(name, default)


class RESTClientObject:
    """Owns the urllib3 pool manager built from a ``Configuration``; safe to share between threads."""

    def __init__(self, configuration: Configuration) -> None:
        pool_args: dict[str, Any] = {
            "num_pools": 4,
            "maxsize": configuration.connection_pool_maxsize,
            "cert_reqs": ssl.CERT_REQUIRED if configuration.verify_ssl else ssl.CERT_NONE,
            "ca_certs": configuration.ssl_ca_cert,
            "ca_cert_data": configuration.ca_cert_data,
            "cert_file": configuration.cert_file,
            "key_file": configuration.key_file,
            "retries": False,
        }
        if configuration.assert_hostname is not None:
            pool_args["assert_hostname"] = configuration.assert_hostname
        if configuration.tls_server_name:
            pool_args["server_hostname"] = configuration.tls_server_name
        if configuration.socket_options is not None:
            pool_args["socket_options"] = configuration.socket_options
        self.proxied = bool(configuration.proxy)
        self._routes: dict[str, tuple[_Opener, str]] = {}
        self.pool_manager: urllib3.PoolManager
        if configuration.proxy:
            self.pool_manager = urllib3.ProxyManager(
                proxy_url=configuration.proxy,
                proxy_headers=configuration.proxy_headers,
                **pool_args,
            )
        else:
            self.pool_manager = urllib3.PoolManager(**pool_args)

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: urllib3.Timeout,
    ) -> urllib3.BaseHTTPResponse:
        """One attempt, up to the answer's headers; the body is left to ``read_body``."""
        route = self._routes.get(url)
        if route is None or getattr(route[0], "pool", True) is None:  # new URL, or pool evicted
            route = self._route(url)
        opener, target = route
        try:
            return opener.urlopen(
                method,
                target,
                body=body,
                headers=headers,
                timeout=timeout,
                retries=_NO_RETRY,
                redirect=False,
                preload_content=False,
                assert_same_host=False,
            )
        except _TRANSPORT_ERRORS as error:
            raise transport_error(error, answer_started=False) from error

    def _route(self, url: str) -> tuple[_Opener, str]:
        """Who sends to ``url`` and what it is given: the host's pool and the path, found once.

        Through a proxy the pool manager keeps the whole URL (it must, for plain http).
        """
        route: tuple[_Opener, str]
        if self.proxied:
            route = (self.pool_manager, url)
        else:
            pool = self.pool_manager.connection_from_url(url)
            route = (pool, urllib3.util.parse_url(url).request_uri)
        if len(self._routes) < 64:  # bounded: query-string auth makes URLs vary
            self._routes[url] = route
        return route

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        _request_timeout: urllib3.Timeout | None = None,
        max_bytes: int = 1 << 30,
    ) -> RESTResponse:
        """One complete attempt, body included (generated-client compatible entry point)."""
        timeout = _request_timeout or DEFAULT_TIMEOUT
        payload = body.encode() if isinstance(body, str) else body
        response = self.send(method, url, headers or {}, payload, timeout)
        deadline = time.monotonic() + timeout_budget(timeout)
        return RESTResponse(response, read_body(response, max_bytes, deadline))

    def clear(self) -> None:
        """Close every pooled connection (in-flight ones are closed when released)."""
        self._routes.clear()
        pools = self.pool_manager.pools
        held = [pools.get(key) for key in pools.keys()]  # noqa: SIM118 - it has no __iter__
        self.pool_manager.clear()  # urllib3 2.8 drops its pools without closing them
        for pool in held:
            if pool is not None:
                pool.close()


def read_body(response: urllib3.BaseHTTPResponse, max_bytes: int, deadline: float) -> bytes:
    """Read the whole answer body, at most ``max_bytes``, finishing before ``deadline``.

    Reads one network chunk at a time and, once the deadline is nearer than the read timeout,
    cuts the socket timeout to the time left: a server that trickles bytes cannot hold the
    call past its deadline.
    """
    length = response.length_remaining
    if length is not None and length > max_bytes:
        discard(response)
        raise _too_large(response, max_bytes)
    headers = response.headers
    decode = "Content-Encoding" in headers  # skip urllib3's decoder set-up for plain bodies
    sock = getattr(getattr(response, "connection", None), "sock", None)
    chunks: list[bytes] = []
    received = 0
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ReadTimeoutError(None, None, "deadline reached")  # type: ignore[arg-type]
            if sock is not None and left < (sock.gettimeout() or left + 1):
                sock.settimeout(left)
            chunk = response.read1(_CHUNK, decode_content=decode)
            if not chunk:
                break
            received += len(chunk)
            if received > max_bytes:
                discard(response)
                raise _too_large(response, max_bytes)
            chunks.append(chunk)
            if response.length_remaining == 0:
                break
    except _TRANSPORT_ERRORS as error:
        discard(response)
        raise transport_error(error, answer_started=True) from error
    except BaseException:
        discard(response)
        raise
    response.release_conn()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def discard(response: urllib3.BaseHTTPResponse) -> None:
    """Close a half-read answer's connection so it is never reused, and return it to the pool."""
    response.close()
    response.release_conn()


def _too_large(response: urllib3.BaseHTTPResponse, max_bytes: int) -> ApiException:
    return ApiResponseValidationError(
        status=response.status,
        reason=f"Answer larger than max_response_bytes ({max_bytes})",
        body="",
        headers=dict(response.headers),
    )
