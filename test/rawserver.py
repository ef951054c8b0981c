"""The plumbing of the tests' raw-socket servers: a listener on this machine, an accept loop,
a thread per connection, and a ``stop()`` that ends them all.

A server library would merge duplicate headers and refuse to send malformed answers; a
``RawServer`` does neither. It knows no HTTP beyond ``read_raw_request`` (one request exactly as
received); a subclass says what to do with each accepted connection in ``_handle``:
``faultserver.FaultServer`` plays scripted faults, ``echo_server.EchoServer`` answers with bytes
computed from the request. Nothing here sleeps: the accept loop waits on the listener and a
wake-up socket, and ``stop()`` sets ``released`` (which a behaviour may wait on), shuts every
open connection down and joins every thread.
"""

from __future__ import annotations

import dataclasses
import selectors
import socket
import threading
from types import TracebackType

from typing_extensions import Self

from openapi_client.testing._loopback import hang_up

_READ_LIMIT = 1 << 20  # a request larger than this is a bug in the test
_CONNECTION_READ_TIMEOUT = 10.0  # a client that connects but never sends; stop() ends it first
_JOIN_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class RawRequest:
    """One request exactly as received."""

    raw_head: bytes
    """The request line and header lines, up to (not including) the blank line."""
    method: str
    target: str
    """The request target as sent (path and query, or the absolute URL given to a proxy)."""
    headers: list[tuple[str, str]]
    """Every header line in order, duplicates kept, names as sent, values decoded as Latin-1."""
    body: bytes

    @property
    def query(self) -> str:
        """The raw (still percent-encoded) query string of the target, or ``""``."""
        return self.target.partition("?")[2]

    def header_values(self, name: str) -> list[str]:
        """Every value sent under ``name``, whatever its letter case."""
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def header_names(self) -> list[str]:
        """Every header name sent, lower-cased, duplicates kept."""
        return [key.lower() for key, _ in self.headers]


def read_raw_request(sock: socket.socket, *, read_body: bool = True) -> RawRequest | None:
    """Read one request: its head, then (unless not ``read_body``) a ``Content-Length`` body;
    None if the client left first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > _READ_LIMIT:
            raise ValueError("request head too large")
    head, _, body = data.partition(b"\r\n\r\n")
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers = []
    for line in lines:
        name, _, value = line.partition(":")
        headers.append((name, value.strip()))
    lengths = [value for name, value in headers if name.strip().lower() == "content-length"]
    length = int(lengths[-1]) if lengths else 0
    while read_body and len(body) < length:
        chunk = sock.recv(min(65536, length - len(body)))
        if not chunk:
            return None
        body += chunk
    return RawRequest(head, method, target, headers, body)


class RawServer:
    """A TCP listener on ``host`` that hands each accepted connection to ``_handle`` in a thread
    of its own. Use it with ``with``, or ``start()`` and ``stop()``.

    ``_handle(sock, number)`` gets the n-th connection (1, 2, ...); it may raise OSError (the
    client left, or ``stop()`` shut the socket), and anything else it raises is kept in
    ``errors`` for the test to see. The socket is closed after it returns.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        family: int = socket.AF_INET,
        scheme: str = "http",
        name: str = "rawserver",
        port: int = 0,
    ) -> None:
        self._host = host
        self._port = port  # 0: any free port
        self._family = family
        self._scheme = scheme
        self._name = name
        self._lock = threading.Lock()
        self._connections = 0
        self.errors: list[BaseException] = []
        self.released = threading.Event()
        """Set by ``stop()``: whatever a connection waits for, it waits on this too."""
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._accept_thread: threading.Thread | None = None
        self._open: dict[socket.socket, threading.Thread] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        listener = socket.socket(self._family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, self._port))
        listener.listen(128)
        listener.setblocking(False)
        self._listener = listener
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"{self._name}-{self.port}", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Release every connection's wait, stop accepting, shut every connection down, close
        the listener and join every thread (RuntimeError naming any that did not end)."""
        self.released.set()
        self._wake_w.send(b"x")
        if self._accept_thread is not None:
            self._accept_thread.join(_JOIN_SECONDS)
        with self._lock:
            open_connections = list(self._open.items())
        hang_up(open_connections)
        if self._listener is not None:
            self._listener.close()
        self._wake_r.close()
        self._wake_w.close()
        alive = [t.name for _, t in open_connections if t.is_alive()]
        if self._accept_thread is not None and self._accept_thread.is_alive():
            alive.append(self._accept_thread.name)
        if alive:
            raise RuntimeError(f"{self._name} threads did not end: {alive}")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests read ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._listener is not None, "start() the server first"
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{self._scheme}://{host}:{self.port}"

    @property
    def connections(self) -> int:
        """Connections accepted, with or without a request on them."""
        with self._lock:
            return self._connections

    # -- what subclasses provide -------------------------------------------------------------

    def _handle(self, sock: socket.socket, number: int) -> None:
        """Serve the ``number``-th accepted connection."""
        raise NotImplementedError

    def _prepare(self, sock: socket.socket, number: int) -> socket.socket:
        """The socket ``_handle`` gets: ``sock`` itself, unless a subclass wraps it (TLS); a
        wrapper must take ``sock``'s place with ``_replace_open`` so that ``stop()`` reaches it."""
        return sock

    def _replace_open(self, old: socket.socket, new: socket.socket) -> None:
        with self._lock:
            self._open[new] = self._open.pop(old)

    def _forget_open(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.pop(sock, None)

    # -- serving -----------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self.released.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r:
                        return
                    try:
                        sock, _ = self._listener.accept()
                    except BlockingIOError:
                        continue
                    self._serve_in_thread(sock)

    def _serve_in_thread(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        sock.settimeout(_CONNECTION_READ_TIMEOUT)
        with self._lock:
            self._connections += 1
            number = self._connections
            thread = threading.Thread(
                target=self._serve,
                args=(sock, number),
                name=f"{self._name}-conn-{number}",
                daemon=True,
            )
            self._open[sock] = thread
        thread.start()

    def _serve(self, sock: socket.socket, number: int) -> None:
        try:
            sock = self._prepare(sock, number)
            self._handle(sock, number)
        except OSError:
            pass  # the client hung up or stop() shut the socket: both are expected endings
        except BaseException as error:  # a bug in a handler: keep it for the test to see
            with self._lock:
                self.errors.append(error)
        finally:
            self._forget_open(sock)
            sock.close()
