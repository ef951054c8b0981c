"""The transport: one HTTP exchange per ``send``, on a urllib3 pool whose connections keep a deadline.

Every byte of an exchange is read before its deadline: the status line, headers, interim
``100 Continue`` responses, chunk sizes and the (possibly compressed) body all come through one
reader that cuts the socket timeout to the time left. urllib3 and socket errors become SDK
errors in one function, ``transport_error``. ``ApiException`` is importable from here, as
generated clients (and the API docs) import it.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import queue
import ssl
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from openapi_client._redaction import NO_SECRETS, Redactor, redactor_for
from openapi_client.exceptions import (
    ApiConnectionError,
    ApiException,
    ApiResponseValidationError,
    ApiTimeoutError,
    FailureKind,
)
from openapi_client.validation import timeout_budget, to_timeout

__all__ = [
    "ApiException",
    "HttpRequest",
    "PoolSettings",
    "RESTClientObject",
    "RESTResponse",
    "RESTResponseType",
    "Transport",
    "transport_error",
]

_CHUNK = 64 * 1024
_COMPRESSED_CHUNK = 16 * 1024
"""Compressed bodies are read in smaller steps: each inflates to at most ~1000x its size."""
_NO_RETRY = urllib3.Retry(total=False, redirect=False)
"""urllib3 must not retry (``ApiClient`` does); built once, as ``retries=False`` builds one per call."""
_TRANSPORT_ERRORS = (HTTPError, OSError, http.client.HTTPException)
"""What urllib3, http.client and the socket layer raise; ``transport_error`` maps each."""


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

    __slots__ = ("_exchange", "data", "headers", "reason", "request", "response", "retries", "status")

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


@dataclass(frozen=True)
class PoolSettings:
    """Everything that shapes the connection pool; equal settings share a pool."""

    verify_ssl: bool = True
    ssl_ca_cert: str | None = None
    ca_cert_data: str | bytes | None = None
    cert_file: str | None = None
    key_file: str | None = None
    assert_hostname: str | bool | None = None
    tls_server_name: str | None = None
    proxy: str | None = None
    proxy_headers: tuple[tuple[str, str], ...] = ()
    maxsize: int = 10
    socket_options: tuple[tuple[int, int, int | bytes], ...] | None = None

    def pool_arguments(self) -> dict[str, Any]:
        """Keyword arguments for urllib3's pool managers."""
        args: dict[str, Any] = {
            "num_pools": 4,
            "maxsize": self.maxsize,
            "cert_reqs": ssl.CERT_REQUIRED if self.verify_ssl else ssl.CERT_NONE,
            "ca_certs": self.ssl_ca_cert,
            "ca_cert_data": self.ca_cert_data,
            "cert_file": self.cert_file,
            "key_file": self.key_file,
            "retries": False,
        }
        if self.assert_hostname is not None:
            args["assert_hostname"] = self.assert_hostname
        if self.tls_server_name:
            args["server_hostname"] = self.tls_server_name
        if self.socket_options is not None:
            args["socket_options"] = list(self.socket_options)
        return args


class _HasPoolSettings(Protocol):
    @property
    def pool_settings(self) -> PoolSettings: ...


# -- one exchange, and its deadline ----------------------------------------------------------


class _Exchange:
    """What the connection learns during one exchange, for the deadline and the error mapping."""

    __slots__ = ("deadline", "received", "reused")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.reused = False
        """The connection had carried a complete exchange before this one."""
        self.received = 0
        """Response bytes received so far."""

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline


_current = threading.local()
"""The exchange the calling thread is in, for the connection classes below."""


class _DeadlineReader(io.RawIOBase):
    """Reads a socket like ``socket.makefile("rb")``, never past the exchange's deadline."""

    def __init__(self, sock: Any, exchange: _Exchange) -> None:
        super().__init__()
        self._sock = sock
        self._exchange = exchange
        sock._io_refs += 1  # as makefile does: the socket stays open while this reads

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return int(self._sock.fileno())

    def readinto(self, buffer: Any) -> int:
        exchange = self._exchange
        left = exchange.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the call's deadline passed")
        sock = self._sock
        timeout = sock.gettimeout()
        if timeout is None or left < timeout:
            sock.settimeout(left)
        received: int = sock.recv_into(buffer)
        exchange.received += received
        return received

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._sock._decref_socketios()


class _SocketWithDeadline:
    """What ``http.client.HTTPResponse`` is given instead of the socket: its ``makefile``."""

    __slots__ = ("exchange", "sock")

    def __init__(self, sock: Any, exchange: _Exchange) -> None:
        self.sock = sock
        self.exchange = exchange

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self.sock, self.exchange))


class _DeadlineResponse(http.client.HTTPResponse):
    """http.client's response, reading through the exchange's deadline when there is one."""

    def __init__(
        self, sock: Any, debuglevel: int = 0, method: str | None = None, url: str | None = None
    ) -> None:
        exchange: _Exchange | None = getattr(_current, "exchange", None)
        if exchange is not None and hasattr(sock, "_io_refs"):
            sock = _SocketWithDeadline(sock, exchange)
        super().__init__(sock, debuglevel, method, url)


if TYPE_CHECKING:
    _ConnectionBase = HTTPConnection
else:
    _ConnectionBase = object


class _DeadlineConnectionMixin(_ConnectionBase):
    """Tells a reused connection from a new one, and sends before the exchange's deadline."""

    response_class = _DeadlineResponse
    _used_socket: object = None
    """The socket the previous exchange went over: the same one now means a reused connection."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        exchange: _Exchange | None = getattr(_current, "exchange", None)
        if exchange is not None:
            exchange.reused = self.sock is not None and self.sock is self._used_socket
        super().request(*args, **kwargs)
        self._used_socket = self.sock

    def send(self, data: Any) -> None:
        exchange: _Exchange | None = getattr(_current, "exchange", None)
        if exchange is not None and self.sock is not None:
            left = exchange.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the call's deadline passed")
            timeout = self.sock.gettimeout()
            if timeout is None or left < timeout:
                self.sock.settimeout(left)
        super().send(data)


class _DeadlineHTTPConnection(_DeadlineConnectionMixin, HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_DeadlineConnectionMixin, HTTPSConnection):
    pass


def _put_conn(pool: urllib3.HTTPConnectionPool, conn: Any) -> None:
    """Return a connection to its pool, or close it if the pool is full or was closed meanwhile.

    urllib3's own version fails with ``AttributeError`` when the pool is closed under a call.
    """
    idle = pool.pool
    if idle is not None:
        try:
            idle.put(conn, block=False)
            return
        except queue.Full:
            pass
    if conn is not None:
        conn.close()


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection
    _put_conn = _put_conn


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection
    _put_conn = _put_conn


_POOL_CLASSES = {"http": _HTTPPool, "https": _HTTPSPool}


# -- the transport ---------------------------------------------------------------------------

_Opener = urllib3.PoolManager | urllib3.HTTPConnectionPool


class RESTClientObject:
    """The default ``Transport``: a urllib3 pool manager, safe to share between threads."""

    def __init__(self, settings: PoolSettings | _HasPoolSettings) -> None:
        self.settings = settings if isinstance(settings, PoolSettings) else settings.pool_settings
        self._routes: dict[str, tuple[_Opener, str]] = {}
        self.pool_manager = self._new_manager()
        _TRANSPORTS.add(self)

    def _new_manager(self) -> urllib3.PoolManager:
        settings = self.settings
        manager: urllib3.PoolManager
        if settings.proxy:
            manager = urllib3.ProxyManager(
                proxy_url=settings.proxy,
                proxy_headers=dict(settings.proxy_headers),
                **settings.pool_arguments(),
            )
        else:
            manager = urllib3.PoolManager(**settings.pool_arguments())
        manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager

    def send(self, request: HttpRequest, deadline: float) -> RESTResponse:
        """One attempt: send, then read the response (unless ``request.stream``) by ``deadline``."""
        exchange = _Exchange(deadline)
        timeout = _attempt_timeout(request.timeout, deadline)
        opener, target = self._route(request.url)
        _current.exchange = exchange
        try:
            response = opener.urlopen(
                request.method,
                target,
                body=request.body,
                headers=request.headers,
                timeout=timeout,
                retries=_NO_RETRY,
                redirect=False,
                preload_content=False,
                assert_same_host=False,
            )
        except _TRANSPORT_ERRORS as error:
            failure = transport_error(error, exchange, request)
        else:
            if request.stream:  # the body is read later, still within the deadline
                return RESTResponse(response, None, request, exchange)
            data = read_body(response, request.max_bytes, request)
            return RESTResponse(response, data, request, exchange)
        finally:
            _current.exchange = None
        raise failure  # outside the except block: no chained urllib3 error to leak secrets

    def _route(self, url: str) -> tuple[_Opener, str]:
        """Who sends to ``url`` and what it is given: the host's pool and the path, found once.

        Through a proxy the pool manager keeps the whole URL (it must, for plain http).
        """
        route = self._routes.get(url)
        if route is not None and getattr(route[0], "pool", True) is not None:
            return route
        if self.settings.proxy:
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
        post_params: Any = None,
        _request_timeout: Any = None,
        *,
        max_bytes: int = 1 << 30,
    ) -> RESTResponse:
        """One complete attempt, body included (openapi-generator's entry point)."""
        timeout = to_timeout(_request_timeout) if _request_timeout is not None else _DEFAULT
        payload = body.encode() if isinstance(body, str) else body
        budget = timeout_budget(timeout)
        request = HttpRequest(method, url, headers or {}, payload, timeout, budget, max_bytes)
        return self.send(request, time.monotonic() + budget)

    def close(self) -> None:
        """Close every pooled connection (in-flight ones are closed when released)."""
        self._routes.clear()
        pools = self.pool_manager.pools
        held = [pools.get(key) for key in pools.keys()]  # noqa: SIM118 - it has no __iter__
        self.pool_manager.clear()  # urllib3 drops its pools without closing them
        for pool in held:
            if pool is not None:
                pool.close()

    def __del__(self) -> None:
        # A transport replaced after a configuration change is dropped, not closed, so that
        # calls still using it finish; the last of them to let go closes its connections here.
        with contextlib.suppress(Exception):  # never raise from a finaliser (interpreter exit)
            self.close()

    def _forget_inherited_connections(self) -> None:
        """In a forked child: never touch the parent's connections (or locks); start afresh."""
        for pool in list(getattr(self.pool_manager.pools, "_container", {}).values()):
            idle = getattr(getattr(pool, "pool", None), "queue", ())
            for conn in list(idle):
                sock = getattr(conn, "sock", None)
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()  # the child's copy of the descriptor; no FIN is sent
        self._routes = {}
        self.pool_manager = self._new_manager()


_DEFAULT = urllib3.Timeout(connect=5.0, read=10.0)

_TRANSPORTS: weakref.WeakSet[RESTClientObject] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for transport in list(_TRANSPORTS):
        transport._forget_inherited_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _attempt_timeout(timeout: urllib3.Timeout, deadline: float) -> urllib3.Timeout:
    """The attempt's timeouts, none longer than the time left (the deadline bounds the rest)."""
    left = deadline - time.monotonic()
    connect = timeout.connect_timeout
    total = timeout.total  # with a total, urllib3 works the read timeout out as it goes
    read = total if isinstance(total, int | float) else timeout.read_timeout
    numbers = isinstance(connect, int | float) and isinstance(read, int | float)
    if numbers and left >= connect and left >= read:  # type: ignore[operator]
        return timeout
    left = max(left, 0.001)
    return urllib3.Timeout(
        connect=min(connect, left) if isinstance(connect, int | float) else left,
        read=min(read, left) if isinstance(read, int | float) else left,
    )


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
    except _TRANSPORT_ERRORS as error:
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


# -- errors ----------------------------------------------------------------------------------


def transport_error(
    error: BaseException,
    exchange: _Exchange | None,
    request: HttpRequest | None,
    response_started: bool = False,
) -> ApiConnectionError:
    """The SDK error for a urllib3, http.client or socket failure: the one place they are mapped.

    What the exchange saw decides whether the server may have acted on the request (see
    ``FailureKind``): past the deadline every failure is a timeout; before any response byte,
    a reused connection is stale, a new one dropped.
    """
    redactor = request.redactor if request is not None else NO_SECRETS
    started = response_started or (exchange is not None and exchange.received > 0)
    cause = redactor.text(_cause(error))
    kind: FailureKind
    if isinstance(error, NewConnectionError):  # before ConnectTimeoutError: it subclasses it
        return _failure(request, "connect", f"Cannot connect: {cause}")
    if isinstance(error, ConnectTimeoutError):
        return _failure(request, "connect", f"Connect timed out: {cause}", timeout=True)
    if isinstance(error, ReadTimeoutError | TimeoutError) or (
        exchange is not None and exchange.expired()
    ):
        kind = "broken" if started else "timeout"
        return _failure(request, kind, "Timed out waiting for the response", timeout=True)
    if isinstance(error, SSLError):
        return _failure(request, "tls", f"TLS failure: {cause}")
    if isinstance(error, ProxyError):
        return _failure(request, "proxy", f"Proxy failure: {cause}")
    if isinstance(error, ProtocolError | OSError | http.client.HTTPException):
        if started:
            return _failure(request, "broken", f"Response broken off: {cause}")
        if exchange is not None and exchange.reused:
            return _failure(request, "stale", f"Reused connection closed before a response: {cause}")
        return _failure(request, "dropped", f"Connection closed before a response: {cause}")
    return _failure(request, "other", f"HTTP failure: {cause}")


def _failure(
    request: HttpRequest | None, kind: FailureKind, reason: str, timeout: bool = False
) -> ApiConnectionError:
    error_class = ApiTimeoutError if timeout else ApiConnectionError
    if request is None:
        return error_class(reason, kind)
    return error_class(reason, kind, method=request.method, url=request.safe_url)


def _cause(error: BaseException) -> str:
    """The innermost useful message of a urllib3 error (they nest the socket error in args)."""
    inner: BaseException = error
    while inner.args and isinstance(inner.args[-1], BaseException):
        inner = inner.args[-1]
    text = str(inner) or type(inner).__name__
    return text.split(">: ", 1)[-1]  # drop urllib3's "<HTTPConnection object at 0x…>: " prefix
