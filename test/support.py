"""A loopback HTTP server for the SDK's own tests: records every request, answers from a queue.

``RecordingServer`` listens on 127.0.0.1 on a free port, serves each connection in its own
thread with HTTP/1.1 keep-alive, and keeps what it received (method, path, headers, body).
Each answer comes from a programmable queue of ``Canned`` responses; when the queue is empty it
answers like the API would: 201 with an ``OfferDisplay`` or ``SessionInit`` that echoes the
UUIDs of the request, so a test can tell which answer belongs to which call.

Also here: ``make_client``/``make_api`` (the SDK pointed at such a server) and ``race`` (threads
run against each other until a race shows or time is up).
"""

from __future__ import annotations

import collections
import email.message
import itertools
import json
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any

from samples import offer_display_answer, session_init_answer

from openapi_client import ApiClient, Configuration, UIEventsApi
from openapi_client.testing._loopback import LoopbackHTTPServer

TOKEN = "pk_test_recording_token"
OFFER_DISPLAYS = "/uiEvent/offerDisplays"
SESSION_INITS = "/uiEvent/sessionInits"


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    headers: email.message.Message
    """Case-insensitive: ``headers["authorization"]`` and ``headers["Authorization"]`` agree."""
    body: bytes
    connection: int
    """Which accepted connection carried it (1, 2, ...)."""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Canned:
    """One programmed answer. A dict or list body is sent as JSON."""

    status: int = 201
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, dict | list):
            data = json.dumps(self.body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(self.body, str):
            data = self.body.encode()
        else:
            data = self.body
        headers.setdefault("Content-Length", str(len(data)))
        return data, headers


def _default_answer(path: str, body: bytes, event_id: int) -> Canned:
    try:
        document = json.loads(body) if body else {}
    except ValueError:
        return Canned(400, [{"message": "Body is not JSON"}])
    if not isinstance(document, dict):
        return Canned(400, [{"message": "Body must be an object"}])
    path = path.split("?", 1)[0]
    try:
        if path.endswith(OFFER_DISPLAYS):
            return Canned(201, offer_display_answer(document, event_id))
        if path.endswith(SESSION_INITS):
            return Canned(201, session_init_answer(document, event_id))
    except KeyError as missing:
        return Canned(400, [{"attribute": str(missing), "message": "is required"}])
    return Canned(404, [{"message": f"No route for {path}"}])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RecordingServer
    timeout = 30  # an idle keep-alive connection ends by itself eventually

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(5)
            self.request.do_handshake()  # in this connection's thread, not the accept loop
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self._answer()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        canned = self.server.record(
            Recorded(self.command, self.path, self.headers, body, self._connection_number())
        )
        data, headers = canned.encode()
        self.send_response(canned.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _connection_number(self) -> int:
        return self.server.connection_number(self.request)


class RecordingServer(LoopbackHTTPServer):
    """Records every request; answers from ``enqueue``d responses, else like the API.

    The plumbing (threads, stopping, the register of open connections) is the fake Engine
    server's own (``openapi_client.testing._loopback``); this adds recording and TLS.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._ssl_context = ssl_context
        self._lock = threading.Condition()
        self._requests: list[Recorded] = []
        self._queue: collections.deque[Canned] = collections.deque()
        self._responder: Callable[[Recorded], Canned] | None = None
        self._numbers: dict[int, int] = {}  # id(socket) -> connection number
        self._counter = itertools.count(1)
        self.connections_opened = 0
        self.errors: list[BaseException] = []

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"

    def start(self) -> RecordingServer:
        self.start_thread(f"recording-server-{self.server_address[1]}")
        return self

    def stop(self) -> None:
        """Stop accepting, hang up every open connection and join all threads."""
        self.stop_serving()

    def __enter__(self) -> RecordingServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- socketserver hooks ------------------------------------------------------------------

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body go apart
        if self._ssl_context is not None:
            sock = self._ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        with self._lock:
            self.connections_opened += 1
            self._numbers[id(sock)] = next(self._counter)
            self._lock.notify_all()
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if error is not None:
            with self._lock:
                self.errors.append(error)

    # -- what the handlers call ---------------------------------------------------------------

    def connection_number(self, sock: socket.socket) -> int:
        with self._lock:
            return self._numbers.get(id(sock), 0)

    def record(self, request: Recorded) -> Canned:
        with self._lock:
            self._requests.append(request)
            event_id = len(self._requests)
            canned = self._queue.popleft() if self._queue else None
            responder = self._responder
            self._lock.notify_all()
        if canned is not None:
            return canned
        if responder is not None:
            return responder(request)
        return _default_answer(request.path, request.body, event_id)

    # -- what the tests call -----------------------------------------------------------------

    def enqueue(
        self,
        status: int = 201,
        body: bytes | str | dict[str, Any] | list[Any] = b"",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next request not yet answered with this (first in, first out)."""
        with self._lock:
            self._queue.append(Canned(status, body, headers or {}))

    def respond_with(self, responder: Callable[[Recorded], Canned] | None) -> None:
        """Compute every answer (once the queue is empty) with ``responder``."""
        with self._lock:
            self._responder = responder

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)


def make_client(server: RecordingServer, **settings: Any) -> ApiClient:
    """An ``ApiClient`` pointed at ``server`` with the test token; ``settings`` go to Configuration."""
    settings.setdefault("access_token", TOKEN)
    return ApiClient(Configuration(host=server.url, **settings))


def make_api(server: RecordingServer, **settings: Any) -> UIEventsApi:
    """A ``UIEventsApi`` over ``make_client(server, **settings)`` (close its ``api_client``)."""
    return UIEventsApi(make_client(server, **settings))


def race(
    threads: Sequence[threading.Thread],
    stop: threading.Event,
    seconds: float,
    *,
    wake: Callable[[], None] = lambda: None,
) -> None:
    """Run ``threads`` with the interpreter switching between them as often as it can, until
    ``stop`` is set (by a thread that saw what the test looks for) or ``seconds`` pass; then set
    ``stop``, call ``wake`` (for threads that wait on something else) and join them all."""
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so that a race shows within the test
    try:
        for thread in threads:
            thread.start()
        stop.wait(seconds)
    finally:
        stop.set()
        wake()
        for thread in threads:
            thread.join(30)
        sys.setswitchinterval(switch_interval)
