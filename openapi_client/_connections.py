"""Connections that keep a call's deadline, and the one mapping of their failures to SDK errors.

Every byte of an exchange is read before its deadline: the status line, headers, interim
``100 Continue`` responses, chunk sizes and the (possibly compressed) body all come through one
reader that cuts the socket timeout to the time left, and every send checks it too. The
connection also notes when the first byte of the request goes to the socket, tells a reused
keep-alive connection from a new one, and counts response bytes: together they decide whether a
failed POST may have been processed (see ``FailureKind``). A failure before the first byte was
written (TCP connect, TLS handshake, a proxy's CONNECT tunnel) is ``connect``: the server cannot
have seen the request, as Go's ``net/http`` reasons with its ``nothingWrittenError``.
"""

from __future__ import annotations

import http.client
import io
import queue
import ssl
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

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
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.util.ssl_match_hostname import CertificateError

from openapi_client._redaction import NO_SECRETS, Redactor
from openapi_client.exceptions import ApiConnectionError, ApiTimeoutError, FailureKind

TRANSPORT_ERRORS = (HTTPError, OSError, http.client.HTTPException)
"""What urllib3, http.client and the socket layer raise; ``transport_error`` maps each."""


class _Exchange:
    """What the connection learns during one exchange, for the deadline and the error mapping."""

    __slots__ = ("deadline", "received", "reused", "written")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.written = False
        """A byte of the request was handed to the socket: until then the server cannot have
        seen it (a proxy's ``CONNECT`` and the TLS handshake are not the request)."""
        self.reused = False
        """The connection had carried a complete exchange before this one."""
        self.received = 0
        """Response bytes received since the request was written (not a proxy's CONNECT answer)."""

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
        if exchange.written:  # before it, this reads a proxy's answer to CONNECT
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
    """Tells a reused connection from a new one, sends before the exchange's deadline, and notes
    when the request's first byte goes to the socket."""

    response_class = _DeadlineResponse
    _used_socket: object = None
    """The socket the previous exchange went over: the same one now means a reused connection."""
    _connecting = False
    """Inside ``connect()``: what is sent now is a proxy's ``CONNECT``, not the request."""

    def connect(self) -> None:
        # urllib3 connects an HTTPS connection (TCP, proxy tunnel, TLS handshake) before
        # ``request()``, in ``_validate_conn`` or ``_prepare_proxy``; a plain HTTP one from the
        # first ``send``. Either way within ``urlopen``, so the exchange is this thread's.
        self._connecting = True
        try:
            super().connect()
        finally:
            self._connecting = False

    def request(self, *args: Any, **kwargs: Any) -> None:
        exchange: _Exchange | None = getattr(_current, "exchange", None)
        if exchange is not None:
            exchange.reused = self.sock is not None and self.sock is self._used_socket
        super().request(*args, **kwargs)
        self._used_socket = self.sock

    def send(self, data: Any) -> None:
        exchange: _Exchange | None = getattr(_current, "exchange", None)
        if exchange is not None:
            if self.sock is None and not self._connecting:
                self.connect()  # as http.client would, but first: its failures precede the request
            if self.sock is not None:
                left = exchange.deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the call's deadline passed")
                timeout = self.sock.gettimeout()
                if timeout is None or left < timeout:
                    self.sock.settimeout(left)
            if not self._connecting:
                exchange.written = True  # before the bytes go: a partial send may have reached
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


def begin(deadline: float) -> _Exchange:
    """Start an exchange in this thread: the next connection used here keeps ``deadline``."""
    exchange = _Exchange(deadline)
    _current.exchange = exchange
    return exchange


def end() -> None:
    """The exchange's response object has its reader: the thread is free for the next one."""
    _current.exchange = None


POOL_CLASSES = {"http": _HTTPPool, "https": _HTTPSPool}


# -- errors ----------------------------------------------------------------------------------


class RequestFacts(Protocol):
    """What an error message may say about the request it failed."""

    @property
    def method(self) -> str: ...
    @property
    def safe_url(self) -> str: ...
    @property
    def redactor(self) -> Redactor: ...


def transport_error(
    error: BaseException,
    exchange: _Exchange | None,
    request: RequestFacts | None,
    response_started: bool = False,
) -> ApiConnectionError:
    """The SDK error for a urllib3, http.client or socket failure: the one place they are mapped.

    What the exchange saw decides whether the server may have acted on the request (see
    ``FailureKind``): a rejected certificate is ``tls``; any other failure before the request's
    first byte was written (connect, TLS handshake, proxy tunnel; stalled or not) is
    ``connect``; after it, past the deadline every failure is a timeout, and before any
    response byte a reused connection is stale, a new one dropped.
    """
    redactor = request.redactor if request is not None else NO_SECRETS
    started = response_started or (exchange is not None and exchange.received > 0)
    cause = redactor.text(_cause(error))
    kind: FailureKind
    if _certificate_rejected(error):  # a setting to fix, not a fault to retry
        return _failure(request, "tls", f"TLS failure: {cause}")
    if isinstance(error, NewConnectionError):  # before ConnectTimeoutError: it subclasses it
        return _failure(request, "connect", f"Cannot connect: {cause}")
    if isinstance(error, ConnectTimeoutError):
        return _failure(request, "connect", f"Connect timed out: {cause}", timeout=True)
    if (
        exchange is not None
        and not exchange.written
        and not started
        and isinstance(error, _CONNECTION_FAILURES)
    ):
        if exchange.expired() or any(isinstance(e, _TIMEOUTS) for e in _chain(error)):
            return _failure(
                request,
                "connect",
                "Timed out before the request was sent (connect, TLS handshake or proxy tunnel)",
                timeout=True,
            )
        return _failure(request, "connect", f"Failed before the request was sent: {cause}")
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
            return _failure(
                request, "stale", f"Reused connection closed before a response: {cause}"
            )
        return _failure(request, "dropped", f"Connection closed before a response: {cause}")
    return _failure(request, "other", f"HTTP failure: {cause}")


_CONNECTION_FAILURES = (
    Urllib3TimeoutError, SSLError, ProxyError, ProtocolError, OSError, http.client.HTTPException,
)  # fmt: skip
"""Failures of the connection itself (not urllib3's pool or URL errors)."""
_TIMEOUTS = (TimeoutError, Urllib3TimeoutError)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it wraps: urllib3 nests the cause in ``args`` or raises ``from`` it."""
    seen: set[int] = set()
    todo = [error]
    while todo and len(seen) < 16:
        inner = todo.pop()
        if id(inner) in seen:
            continue
        seen.add(id(inner))
        yield inner
        todo.extend(arg for arg in inner.args if isinstance(arg, BaseException))
        if inner.__cause__ is not None:
            todo.append(inner.__cause__)


def _certificate_rejected(error: BaseException) -> bool:
    """The server's certificate failed verification (chain or name): retrying cannot help."""
    return any(
        isinstance(inner, ssl.SSLCertVerificationError | CertificateError)
        for inner in _chain(error)
    )


def _failure(
    request: RequestFacts | None, kind: FailureKind, reason: str, timeout: bool = False
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
