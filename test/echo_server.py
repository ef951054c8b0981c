"""A raw-socket server on this machine that keeps each request's exact bytes and answers with
bytes a test computes from that request.

An HTTP server library would merge duplicate headers and refuse to send malformed answers;
this one does neither. Each accepted connection carries one request (head plus
``Content-Length`` body); ``respond(request)`` returns the whole answer as bytes (status line,
headers, body: anything at all), which is sent before the connection is closed::

    with EchoServer(lambda request: http_answer(401, echo_document(request))) as server:
        ...  # point the SDK at server.url
        (request,) = server.requests
        assert request.header_values("authorization") == ["Bearer ..."]

Helpers build the answers the tests need: ``http_answer`` (any status, reason phrase, headers
and body, header values sent as Latin-1 so that a server echoing a header sends its bytes
back), and ``local_lan_address`` finds an address of this machine that is not loopback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
from collections.abc import Callable
from types import TracebackType

_READ_LIMIT = 1 << 20
_CONNECTION_TIMEOUT = 10.0
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


Responder = Callable[[RawRequest], bytes]


class EchoServer:
    """Answers each request with ``respond(request)``; keeps every request in ``requests``."""

    def __init__(
        self, respond: Responder, host: str = "127.0.0.1", family: int = socket.AF_INET
    ) -> None:
        self._respond = respond
        self._host = host
        self._family = family
        self._lock = threading.Lock()
        self._requests: list[RawRequest] = []
        self._connections = 0
        self.errors: list[BaseException] = []
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()
        self._stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> EchoServer:
        listener = socket.socket(self._family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, 0))
        listener.listen(128)
        self._listener = listener
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection, join every thread."""
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        if self._accept_thread is not None:
            self._accept_thread.join(_JOIN_SECONDS)
        with self._lock:
            still_open = list(self._open)
            threads = list(self._threads)
        for sock in still_open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(_JOIN_SECONDS)

    def __enter__(self) -> EchoServer:
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
        return f"http://{host}:{self.port}"

    @property
    def requests(self) -> list[RawRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def connections(self) -> int:
        """Connections accepted, with or without a request on them."""
        with self._lock:
            return self._connections

    # -- serving -----------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.settimeout(_CONNECTION_TIMEOUT)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            with self._lock:
                self._connections += 1
                self._open.add(sock)
                if len(self._threads) > 256:  # keep only the threads stop() may have to join
                    self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            request = read_raw_request(sock)
            if request is None:
                return
            with self._lock:
                self._requests.append(request)
            sock.sendall(self._respond(request))
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the client hung up, or stop() shut the socket
        except BaseException as error:  # a bug in a responder: keep it for the test to see
            with self._lock:
                self.errors.append(error)
        finally:
            with self._lock:
                self._open.discard(sock)
            sock.close()


def read_raw_request(sock: socket.socket) -> RawRequest | None:
    """Read one request: its head, then a ``Content-Length`` body; None if the client left."""
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
    lengths = [value for name, value in headers if name.lower() == "content-length"]
    length = int(lengths[0]) if lengths else 0
    while len(body) < length:
        chunk = sock.recv(min(65536, length - len(body)))
        if not chunk:
            return None
        body += chunk
    return RawRequest(head, method, target, headers, body)


def http_answer(
    status: int,
    body: bytes,
    headers: list[tuple[str, str]] | None = None,
    *,
    reason: str = "Status",
    content_type: str | None = "application/json",
) -> bytes:
    """A complete HTTP/1.1 answer; header values and the reason phrase are sent as Latin-1."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines += [f"{name}: {value}" for name, value in headers or []]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def local_lan_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (so the SDK must treat it as a
    remote host, yet connecting to it never leaves the machine); None if there is none.

    Connecting a UDP socket sends nothing: it only asks the kernel which source address it
    would use.
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 9))
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    if address.startswith("127.") or address == "0.0.0.0":
        return None
    try:  # it must be ours: something can listen on it
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as check:
            check.bind((address, 0))
    except OSError:
        return None
    return address
