"""A scriptable raw TCP server on 127.0.0.1, for the faults an HTTP server library cannot make.

Each accepted connection reads one request in full (headers and ``Content-Length`` body),
records it as an attempt, then plays the next scripted behaviour and closes::

    with FaultServer(answer(503), answer(503), then=answer(201, OFFER_DISPLAY)) as server:
        ...  # point the SDK at server.url
        assert server.attempts == 3

Behaviours: ``answer``, ``close_without_answer``, ``reset`` (RST instead of FIN), ``hang``
(never answers), ``trickle`` (headers at once, then the body a byte at a time),
``reset_mid_body``, ``stream`` (a large body, with or without ``Content-Length``) and
``redirect``. For time bounds: ``trickle_status_line``, ``trickle_headers``,
``interim_answers`` (``100 Continue`` after ``100 Continue``, never a final answer),
``trickle_chunk_size`` (a chunked body whose chunk-size line trickles), ``trickle_gzip`` (a
valid gzip body a byte at a time) and ``delayed`` (answer after a pause). ``held`` answers
once the test sets an event (a request kept waiting until the test is ready). For keep-alive:
``keep_alive`` (answer without closing, then play another behaviour on the next request of the
same connection). With ``tls=`` the server speaks TLS (``loopback_tls()`` makes a context and
the CA a client trusts) and ``handshake_delays`` holds back the handshake of the first
connections. Nothing here sleeps: every wait is on the server's ``released`` event, which
``stop()`` sets, so tearing a server down ends every behaviour at once.

``attempts``/``requests`` count what the server received; ``processed`` what it answered in
full. Each ``Request`` names the connection (1, 2, ...) it came on.

Also here, for the tests that use it: ``created_for_path`` (a valid answer like the Engine's,
with a document from ``samples``), a port that refuses connections, and a check that a
client's pool has every connection back.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import socket
import ssl
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rawserver import RawServer, read_raw_request
from samples import offer_display_answer, session_init_answer


@dataclasses.dataclass(frozen=True)
class Request:
    """One request as received: header names lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int = 0
    """Which accepted connection carried it (1, 2, ...)."""


class Connection:
    """What a behaviour acts on: the accepted socket and the server's teardown event."""

    def __init__(
        self,
        sock: socket.socket,
        released: threading.Event,
        server: FaultServer,
        request: Request | None = None,
        number: int = 0,
    ) -> None:
        self.sock = sock
        self.request = request
        self.released = released
        self.number = number
        self._server = server

    def send(self, data: bytes) -> None:
        """Send bytes (raises OSError once the client has gone) and count them."""
        self.sock.sendall(data)
        self._server._count_sent(len(data))

    def send_last(self, data: bytes) -> None:
        """Send the last bytes of a complete answer: the request counts as processed first,
        so that ``FaultServer.processed`` is up to date once the client has the answer."""
        if self.request is not None:
            self._server._record_processed(self.request)
        self.send(data)

    def next_request(self, *, read_body: bool = True) -> Connection | None:
        """Read the next request on this same connection and record it as an attempt.

        Without ``read_body`` only its head is read: the server never looked at the body.
        Returns the connection for that request, or None if the client closed first.
        """
        request = _read_request(self.sock, read_body=read_body)
        if request is None:
            return None
        request = dataclasses.replace(request, connection=self.number)
        self._server._record_request(request)
        return Connection(self.sock, self.released, self._server, request, self.number)

    def rst(self) -> None:
        """Abort the connection: SO_LINGER 0 makes close() send RST instead of FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """What to do with one request; ``name`` is for test ids and failure messages."""

    name: str
    run: Callable[[Connection], None]


def _head(status: int, headers: dict[str, str], reason: str | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason if reason is not None else _reason(status)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _json_head(status: int, payload: bytes, headers: dict[str, str] | None = None) -> bytes:
    """The head of a complete JSON answer of ``payload`` that closes the connection after it;
    ``headers`` are added (and win)."""
    all_headers = {
        "Content-Type": "application/json",
        "Content-Length": str(len(payload)),
        "Connection": "close",
        **(headers or {}),
    }
    return _head(status, all_headers)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _as_bytes(body: bytes | str | Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def answer(
    status: int = 201,
    body: bytes | str | Any = b"",
    headers: dict[str, str] | None = None,
    *,
    content_type: str | None = "application/json",
    reason: str | None = None,
) -> Behaviour:
    """A complete answer, then close. ``body`` may be bytes, text or a JSON-able value."""
    payload = _as_bytes(body)
    all_headers = {"Connection": "close"}
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    all_headers.update(headers or {})
    if not any(name.lower() == "content-length" for name in all_headers):
        all_headers["Content-Length"] = str(len(payload))
    raw = _head(status, all_headers, reason) + payload

    def run(conn: Connection) -> None:
        conn.send_last(raw)

    extra = f" {','.join(f'{k}={v}' for k, v in (headers or {}).items())}" if headers else ""
    return Behaviour(f"answer {status}{extra}", run)


def redirect(location: str, status: int = 302) -> Behaviour:
    """A redirect to ``location`` (the client must not follow it)."""
    return answer(status, b"", {"Location": location}, content_type=None)


def send_raw(data: bytes, name: str = "raw bytes") -> Behaviour:
    """Send ``data`` as it is (e.g. something that is not HTTP), then close."""
    return Behaviour(name, lambda conn: conn.send(data))


def close_without_answer() -> Behaviour:
    """Read the request, then close the connection (FIN) without a byte of answer."""

    def run(conn: Connection) -> None:
        conn.sock.shutdown(socket.SHUT_RDWR)

    return Behaviour("close without answer", run)


def reset() -> Behaviour:
    """Read the request, then abort the connection with RST."""
    return Behaviour("reset", lambda conn: conn.rst())


def hang() -> Behaviour:
    """Read the request and never answer; released (and closed) when the server stops."""
    return Behaviour("hang", lambda conn: conn.released.wait())


def trickle(
    status: int = 201,
    body: bytes | str | Any = b"",
    headers: dict[str, str] | None = None,
    *,
    every: float = 0.1,
) -> Behaviour:
    """Headers (with the full ``Content-Length``) at once, then the body one byte per ``every``."""
    payload = _as_bytes(body)
    head = _json_head(status, payload, headers)

    def run(conn: Connection) -> None:
        if not payload:
            conn.send_last(head)
            return
        conn.send(head)
        for index in range(len(payload)):
            if conn.released.wait(every):
                return
            send = conn.send_last if index == len(payload) - 1 else conn.send
            send(payload[index : index + 1])

    return Behaviour(f"trickle {status} 1 byte/{every}s", run)


def reset_mid_body(
    status: int = 201, body: bytes | str | Any = b"", headers: dict[str, str] | None = None
) -> Behaviour:
    """Headers promising the whole body, half of it, then RST."""
    payload = _as_bytes(body)
    all_headers = {
        "Content-Type": "application/json",
        "Content-Length": str(len(payload)),
        **(headers or {}),
    }

    def run(conn: Connection) -> None:
        conn.send(_head(status, all_headers) + payload[: len(payload) // 2])
        conn.rst()

    return Behaviour(f"reset mid-body {status}", run)


def stream(
    status: int, total_bytes: int, *, content_length: bool = True, chunk: int = 64 * 1024
) -> Behaviour:
    """A body of ``total_bytes`` spaces, sent in chunks until done or the client hangs up.

    Without ``content_length`` the body ends when the connection closes, so only a running
    count can stop a client from reading it all.
    """
    headers = {"Content-Type": "application/json", "Connection": "close"}
    if content_length:
        headers["Content-Length"] = str(total_bytes)
    block = b" " * chunk

    def run(conn: Connection) -> None:
        conn.send(_head(status, headers))
        left = total_bytes
        while left > 0 and not conn.released.is_set():
            piece = block if left >= chunk else block[:left]
            (conn.send_last if left == len(piece) else conn.send)(piece)
            left -= len(piece)

    size = f"{total_bytes / (1 << 20):g} MiB"
    return Behaviour(f"stream {status} {size}{'' if content_length else ' no length'}", run)


# -- answers that take their time: each byte arrives well within a read timeout ----------------


def trickle_status_line(
    status: int = 201, body: bytes | str | Any = b"", *, every: float = 0.25
) -> Behaviour:
    """The status line one byte per ``every`` (22 bytes for a 201: over 5 s at 0.25 s), then
    the headers and the body at once."""
    payload = _as_bytes(body)
    status_line, _, rest = _json_head(status, payload).partition(b"\r\n")
    status_line += b"\r\n"

    def run(conn: Connection) -> None:
        for index in range(len(status_line)):
            if index and conn.released.wait(every):
                return
            conn.send(status_line[index : index + 1])
        conn.send_last(rest + payload)

    return Behaviour(f"status line 1 byte/{every}s", run)


def trickle_headers(
    status: int = 201, body: bytes | str | Any = b"", *, lines: int = 25, every: float = 0.2
) -> Behaviour:
    """The status line at once, then ``lines`` header lines one per ``every``, then the real
    headers and the body at once."""
    payload = _as_bytes(body)
    status_line, _, rest = _json_head(status, payload).partition(b"\r\n")

    def run(conn: Connection) -> None:
        conn.send(status_line + b"\r\n")
        for index in range(lines):
            if conn.released.wait(every):
                return
            conn.send(f"X-Trickle-{index}: {index}\r\n".encode())
        conn.send_last(rest + payload)

    return Behaviour(f"header lines 1/{every}s", run)


def interim_answers(*, every: float = 0.1, count: int = 50) -> Behaviour:
    """``HTTP/1.1 100 Continue`` interim answers, one per ``every``, and never a final answer;
    after ``count`` of them (so that a client without a deadline ends too) the server closes."""
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"

    def run(conn: Connection) -> None:
        for index in range(count):
            if index and conn.released.wait(every):
                return
            conn.send(interim)

    return Behaviour(f"100 Continue every {every}s, no final answer", run)


def trickle_chunk_size(
    status: int = 201, body: bytes | str | Any = b"", *, every: float = 0.25, padding: int = 18
) -> Behaviour:
    """A chunked answer: headers at once, then the chunk-size line (padded with a chunk
    extension of ``padding`` bytes) one byte per ``every``, then the chunk and the last chunk."""
    payload = _as_bytes(body)
    head = _head(
        status,
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked", "Connection": "close"},
    )
    size_line = f"{len(payload):x};t={'x' * max(0, padding - 3)}\r\n".encode()

    def run(conn: Connection) -> None:
        conn.send(head)
        for index in range(len(size_line)):
            if index and conn.released.wait(every):
                return
            conn.send(size_line[index : index + 1])
        conn.send_last(payload + b"\r\n0\r\n\r\n")

    return Behaviour(f"chunk-size line 1 byte/{every}s", run)


def trickle_gzip(
    status: int = 201, body: bytes | str | Any = b"", *, every: float = 0.1
) -> Behaviour:
    """``Content-Encoding: gzip``: a valid gzip of ``body``, trickled one byte per ``every``.

    A decoder yields nothing until the gzip header and the deflate block's code tables have
    arrived (about 50 bytes for a JSON event), so a client that waits for decoded bytes waits
    that long whatever its read timeout.
    """
    compressed = gzip.compress(_as_bytes(body), mtime=0)
    behaviour = trickle(status, compressed, {"Content-Encoding": "gzip"}, every=every)
    return Behaviour(f"gzip body 1 byte/{every}s", behaviour.run)


def delayed(seconds: float, behaviour: Behaviour) -> Behaviour:
    """Read the request, wait ``seconds`` (ended early by ``stop()``), then play ``behaviour``."""

    def run(conn: Connection) -> None:
        if not conn.released.wait(seconds):
            behaviour.run(conn)

    return Behaviour(f"after {seconds}s: {behaviour.name}", run)


def held(release: threading.Event, behaviour: Behaviour) -> Behaviour:
    """Read the request, then play ``behaviour`` once the test sets ``release``: the client
    waits on the server for exactly as long as the test needs. ``stop()`` ends the wait too
    (then without an answer), so a test that fails before releasing does not hang."""

    def run(conn: Connection) -> None:
        while not release.wait(0.01):  # two events to watch: look at the server's now and then
            if conn.released.is_set():
                return
        behaviour.run(conn)

    return Behaviour(f"held until released: {behaviour.name}", run)


# -- keep-alive ----------------------------------------------------------------------------------


def keep_alive(then: Behaviour, *, read_body: bool = True) -> Behaviour:
    """Answer like the Engine (201 for the path) *without* closing, then read the next request
    on the same connection (its body only with ``read_body``), record it as an attempt, and
    play ``then`` on it: e.g. ``keep_alive(close_without_answer())`` is a keep-alive connection
    that the server closes while the client's next request is on its way (a stale connection).
    """

    def run(conn: Connection) -> None:
        payload = json.dumps(_created_document(conn)).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(payload))}
        conn.send_last(_head(201, headers) + payload)
        following = conn.next_request(read_body=read_body)
        if following is not None:
            then.run(following)

    unread = "" if read_body else " (body unread)"
    return Behaviour(f"keep-alive 201, then {then.name}{unread}", run)


def _created_document(conn: Connection) -> dict[str, Any]:
    """A valid 201 body for the path of ``conn``'s request, whatever its query string (where
    query-string auth puts the token)."""
    path = conn.request.path.split("?", 1)[0] if conn.request is not None else ""
    return session_init_answer() if path.endswith("sessionInits") else offer_display_answer()


class FaultServer(RawServer):
    """A loopback TCP server playing one scripted ``Behaviour`` per request it receives.

    ``script`` is played in order; when it is used up, ``then`` answers every later request
    (without ``then``, such requests are closed unanswered and counted in ``unscripted``).
    With ``tls`` (a server-side context) every connection is TLS; the handshake of the n-th
    connection starts after ``handshake_delays[n - 1]`` seconds (none beyond the sequence).
    The listener, threads and ``stop()`` are ``RawServer``'s.
    """

    def __init__(
        self,
        *script: Behaviour,
        then: Behaviour | None = None,
        tls: ssl.SSLContext | None = None,
        handshake_delays: Sequence[float] = (),
    ) -> None:
        super().__init__(scheme="http" if tls is None else "https", name="faultserver")
        self._script: deque[Behaviour] = deque(script)
        self._then = then
        self._tls = tls
        self._handshake_delays = tuple(handshake_delays)
        self._changed = threading.Condition(self._lock)
        self._requests: list[Request] = []
        self._processed: list[Request] = []
        self._bytes_sent = 0
        self.unscripted = 0

    # -- what tests read ---------------------------------------------------------------------

    @property
    def attempts(self) -> int:
        """Requests received in full (each is one attempt by the client)."""
        with self._lock:
            return len(self._requests)

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    @property
    def processed(self) -> list[Request]:
        """Requests the server processed, i.e. answered in full (as opposed to ``requests``,
        everything it received)."""
        with self._lock:
            return list(self._processed)

    @property
    def bytes_sent(self) -> int:
        with self._lock:
            return self._bytes_sent

    def wait_for_attempts(self, count: int, timeout: float = 5.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self._requests) >= count, timeout)

    def enqueue(self, *behaviours: Behaviour) -> None:
        """Add behaviours to the end of the script."""
        with self._lock:
            self._script.extend(behaviours)

    # -- serving -----------------------------------------------------------------------------

    def _count_sent(self, count: int) -> None:
        with self._lock:
            self._bytes_sent += count

    def _record_request(self, request: Request) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()

    def _record_processed(self, request: Request) -> None:
        with self._lock:
            self._processed.append(request)

    def _handle(self, sock: socket.socket, number: int) -> None:
        request = _read_request(sock)
        if request is None:
            return
        request = dataclasses.replace(request, connection=number)
        with self._changed:
            self._requests.append(request)
            behaviour = self._script.popleft() if self._script else self._then
            if behaviour is None:
                self.unscripted += 1
            self._changed.notify_all()
        if behaviour is not None:
            behaviour.run(Connection(sock, self.released, self, request, number))

    def _prepare(self, sock: socket.socket, number: int) -> socket.socket:
        """With ``tls``: wait this connection's handshake delay, then do the TLS handshake
        (OSError if the client gave up or the server stopped). The TLS socket takes the plain
        one's place among the open connections before the handshake, so that ``stop()`` can
        shut it down."""
        if self._tls is None:
            return sock
        delay = self._handshake_delays[number - 1] if number <= len(self._handshake_delays) else 0
        if delay and self.released.wait(delay):
            raise ConnectionAbortedError("server stopped during the handshake delay")
        secure = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        self._replace_open(sock, secure)  # wrap_socket detached ``sock``: ``secure`` owns the fd
        try:
            secure.do_handshake()
        except BaseException:
            self._forget_open(secure)
            secure.close()
            raise
        return secure


def _read_request(sock: socket.socket, *, read_body: bool = True) -> Request | None:
    """Read one request (headers, then ``Content-Length`` body unless not ``read_body``), header
    names lower-cased; None if the client left first."""
    raw = read_raw_request(sock, read_body=read_body)
    if raw is None:
        return None
    headers = {name.strip().lower(): value for name, value in raw.headers}
    return Request(raw.method, raw.target, headers, raw.body)


# -- helpers for the tests that use these servers ------------------------------------------------


class FaultServers:
    """Starts servers for one test and stops them all afterwards (use through a fixture)."""

    def __init__(self) -> None:
        self._started: list[FaultServer] = []

    def __call__(
        self,
        *script: Behaviour,
        then: Behaviour | None = None,
        tls: ssl.SSLContext | None = None,
        handshake_delays: Sequence[float] = (),
    ) -> FaultServer:
        server = FaultServer(*script, then=then, tls=tls, handshake_delays=handshake_delays)
        server.start()
        self._started.append(server)
        return server

    def stop_all(self) -> None:
        for server in self._started:
            server.stop()
        errors = [error for server in self._started for error in server.errors]
        self._started.clear()
        if errors:
            raise AssertionError(f"fault server behaviours failed: {errors!r}")


@dataclasses.dataclass(frozen=True)
class LoopbackTls:
    """A server-side TLS context for 127.0.0.1 and the PEM of the CA that signed it."""

    server_context: ssl.SSLContext
    ca_pem: str


def loopback_tls() -> LoopbackTls:
    """A fresh CA (``trustme``) and a certificate for 127.0.0.1 signed by it."""
    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return LoopbackTls(context, ca.cert_pem.bytes().decode())


@contextmanager
def refused_url() -> Iterator[str]:
    """A loopback URL that refuses connections: the port is bound (so nobody else takes it)
    but not listening, so the kernel answers every SYN with RST."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{holder.getsockname()[1]}"
    finally:
        holder.close()


def created_for_path() -> Behaviour:
    """Answer like the Engine on success: 201 with a valid body for the path asked."""

    def run(conn: Connection) -> None:
        answer(201, _created_document(conn)).run(conn)

    return Behaviour("201 for the path", run)


def pool_problems(client: Any) -> list[str]:
    """Connections of ``client`` not back in their pool (empty when every one was returned).

    For an ``HTTPConnectionPool`` ``p``, ``p.pool`` is a queue of ``maxsize`` slots holding
    idle connections (or ``None`` placeholders); a connection in use has taken its slot.
    """
    state = client._state
    if state is None:
        return []
    transport = state.transport if hasattr(state, "transport") else state.rest  # before the rewrite
    pools = transport.pool_manager.pools
    problems = []
    for key in list(pools.keys()):
        pool = pools[key]
        queue = pool.pool
        if queue is not None and queue.qsize() != queue.maxsize:
            problems.append(
                f"{pool.host}:{pool.port}: {queue.maxsize - queue.qsize()} connection(s) checked out"
            )
    return problems
