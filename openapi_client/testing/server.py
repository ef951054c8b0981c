"""An in-process fake of the Engine UI Events API, served over real HTTP on loopback.

``FakeEngineServer`` answers the two JSON endpoints and the tracking pixel the way the
API documents them (``openapi_client/openapi.json``), records what it receives, and can be
told to fail, stall or hang up on the next requests, so that an application's reliability
code can be tested against real sockets::

    with FakeEngineServer(token="pk_test") as engine:
        ...  # point the SDK at engine.url, use the token "pk_test"
        assert len(engine.offer_displays) == 1

Bodies are validated with the SDK's own request models, so the fake refuses exactly what
the SDK refuses: unknown fields, malformed UUIDs, missing required fields.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hmac
import http
import ipaddress
import json
import logging
import re
import selectors
import socket
import socketserver
import struct
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, cast, overload

import pydantic
from typing_extensions import Self

from openapi_client._logs import redact_headers
from openapi_client.api.ui_events_api import CREATE_OFFER_DISPLAY, CREATE_SESSION_INIT
from openapi_client.endpoint import Endpoint
from openapi_client.models import ApiError, OfferDisplay, OfferDisplayCreateData, SessionInit
from openapi_client.models._base import UUID_RE, RequestModel, ResponseModel
from openapi_client.testing._expect import Expected, recorded_mismatch, token_mismatch
from openapi_client.testing._recorded import (
    PLURALS,
    Event,
    EventKind,
    RecordedRequest,
    bearer_token,
    describe_event,
    digest_token,
    event_model,
)

if TYPE_CHECKING:
    from openapi_client.api_client import ApiClient

__all__ = ["CLIENT_TOKEN", "TRANSPARENT_GIF", "FakeEngineServer", "RecordedRequest"]

_log = logging.getLogger("openapi_client.testing")

_ENDPOINTS: Final[dict[str, Endpoint[Any, Any]]] = {
    endpoint.path: endpoint for endpoint in (CREATE_SESSION_INIT, CREATE_OFFER_DISPLAY)
}
"""The POST routes, described by the SDK's own endpoint descriptions."""
_PIXEL_PATH_RE: Final = re.compile(r"^/uiEvent/offerDisplays/([^/]+)/([^/]+)/([^/]+)/pixel\.gif$")

_JOIN_TIMEOUT_SECONDS: Final = 5.0

CLIENT_TOKEN: Final = "pk_test_fake_engine"
"""The token ``FakeEngineServer.client()`` sends when the server accepts any token."""


def _transparent_gif() -> bytes:
    """A 1x1 GIF89a whose single pixel is transparent (43 bytes)."""
    header = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0)  # 1x1, 2-colour global table
    palette = b"\x00\x00\x00" + b"\xff\xff\xff"
    # Graphic Control Extension: transparency flag set, no delay, colour 0 is transparent.
    control = b"\x21\xf9\x04" + struct.pack("<BHB", 0x01, 0, 0) + b"\x00"
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
    # LZW, minimum code size 2 (3-bit codes, LSB first): CLEAR=4, pixel 0, END=5.
    codes = 4 | (0 << 3) | (5 << 6)
    pixels = b"\x02" + bytes([2]) + codes.to_bytes(2, "little") + b"\x00"
    return header + palette + control + descriptor + pixels + b"\x3b"


TRANSPARENT_GIF: Final = _transparent_gif()
"""The body of every pixel answer."""


@dataclasses.dataclass(frozen=True)
class _Failure:
    """A canned answer queued by ``fail_next``."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


class _Drop:
    """The fault queued by ``drop_next``: hang up without answering."""


_DROP: Final = _Drop()
_Fault: TypeAlias = _Failure | _Drop


RequestCallback: TypeAlias = Callable[[RecordedRequest], object]


class _State:
    """Everything the handler threads share, behind one lock.

    A request is counted ``in_flight`` from its arrival until it is finished; finishing it
    stores the request and its event together, under the lock, before the answer is sent.
    So whoever sees the request (a waiter, or the client holding the answer) sees all of it.
    """

    def __init__(
        self, token: str | None, max_body_bytes: int, on_request: RequestCallback | None
    ) -> None:
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.on_request = on_request
        self.created_by = str(uuid.uuid4())
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.next_id = 1
        self.in_flight = 0
        self.requests: list[RecordedRequest] = []
        self.events: dict[type[Event], list[Event]] = {SessionInit: [], OfferDisplay: []}
        self.delays: collections.deque[float] = collections.deque()
        self.faults: collections.deque[_Fault] = collections.deque()

    def arrive(self) -> None:
        with self.changed:
            self.in_flight += 1
            self.changed.notify_all()

    def finish(self, request: RecordedRequest) -> None:
        with self.changed:
            self.in_flight -= 1
            self.requests.append(request)
            if request.event is not None:
                self.events[type(request.event)].append(request.event)
            self.changed.notify_all()

    def report(self, request: RecordedRequest) -> None:
        """Hand a finished request to the ``on_request`` callback; its failures are only logged."""
        if self.on_request is None:
            return
        try:
            self.on_request(request)
        except Exception:
            _log.error("on_request callback failed for %s", request.describe(), exc_info=True)

    def take_faults(self) -> tuple[float, _Fault | None]:
        """Pop the delay and the outcome fault that apply to the API request being answered."""
        with self.lock:
            delay = self.delays.popleft() if self.delays else 0.0
            fault = self.faults.popleft() if self.faults else None
        return delay, fault

    def new_event_fields(self) -> dict[str, Any]:
        """The server-made fields every recorded event carries."""
        now = time.time()
        with self.lock:
            event_id = self.next_id
            self.next_id += 1
        return {
            "id": event_id,
            "uuid": str(uuid.uuid4()),
            # JavaScript's toISOString() style, as the API answers: milliseconds and "Z".
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            + f".{int(now % 1 * 1000):03d}Z",
            "createdBy": self.created_by,
        }


def _errors_body(*errors: ApiError) -> bytes:
    return json.dumps([error.to_dict() for error in errors]).encode()


_ERROR_MESSAGES: Final = {
    "missing": "{attribute} is required",
    "string_pattern_mismatch": "{attribute} must be a UUID",
    "string_type": "{attribute} must be a string",
    "extra_forbidden": "{attribute} is not a known attribute",
    "json_invalid": "The request body is not valid JSON",
    "model_type": "The request body must be a JSON object",
}


def _validation_errors(exc: pydantic.ValidationError) -> list[ApiError]:
    """The model's validation errors as the API's error array, one item per problem."""
    errors = []
    for item in exc.errors(include_url=False, include_input=False):
        attribute = ".".join(str(part) for part in item["loc"]) or None
        template = _ERROR_MESSAGES.get(item["type"])
        message = template.format(attribute=attribute) if template else item["msg"]
        context = item.get("ctx")
        details = {key: str(value) for key, value in (context or {}).items() if key != "class_name"}
        errors.append(
            ApiError(
                attribute=attribute, type=item["type"], details=details or None, message=message
            )
        )
    return errors


class _Handler(BaseHTTPRequestHandler):
    """Answers one connection; keeps it alive between requests (HTTP/1.1)."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeEngine/1.0"
    _body: bytes
    _event: Event | None
    _finished: RecordedRequest | None
    # Write each answer in one send (headers and body buffered together) without Nagle's
    # delay, so that keep-alive clients never wait on delayed ACKs.
    wbufsize = -1
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s - " + format, self.address_string(), *args)

    # Every method goes through one dispatcher.
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    @property
    def _state(self) -> _State:
        return self.server.state

    def _dispatch(self) -> None:
        state = self._state
        if state.stopping.is_set():
            self.close_connection = True
            return
        # One handler serves every request of a keep-alive connection: start afresh.
        self._body, self._event, self._finished = b"", None, None
        state.arrive()
        try:
            self._answer()
        finally:
            # No answer was sent when nothing finished the request: a drop, a stop, an error.
            finished = self._finished if self._finished is not None else self._finish(None)
            with contextlib.suppress(OSError, ValueError):  # answer first, then the report
                self.wfile.flush()
            state.report(finished)

    def _finish(self, status: int | None) -> RecordedRequest:
        """Store the request with its outcome and event; called once, before the answer goes out."""
        token = bearer_token(self.headers.get("Authorization", ""))
        request = RecordedRequest(
            self.command,
            self.path,
            redact_headers(dict(self.headers.items())),
            self._body,
            status=status,
            event=self._event,
            token_digest=None if token is None else digest_token(token),
        )
        self._finished = request
        self._state.finish(request)
        return request

    def _answer(self) -> None:
        body = self._read_body()
        if body is None:
            return  # answered already (411/413/400) and closing
        self._body = body
        path = self.path.split("?", 1)[0]
        pixel = _PIXEL_PATH_RE.match(path)
        endpoint = _ENDPOINTS.get(path)
        if endpoint is not None:
            allowed = endpoint.method
        elif pixel:
            allowed = "GET"
        else:
            self._send_errors(404, ApiError(type="not_found", message=f"No route for {path}"))
            return
        if self.command != allowed:
            message = f"{self.command} is not allowed on {path}"
            error = ApiError(type="method_not_allowed", message=message)
            self._send_errors(405, error, headers=[("Allow", allowed)])
            return
        if not self._apply_faults():
            return
        if pixel:
            self._answer_pixel(*pixel.groups())
        elif endpoint is not None and self._authorised():
            self._create(endpoint, body)

    def _read_body(self) -> bytes | None:
        """The request body, or None after refusing it (the connection then closes)."""
        if "Transfer-Encoding" in self.headers:
            error = ApiError(type="length_required", message="Send the body with Content-Length")
            self._refuse(411, error)
            return None
        raw_length = self.headers.get("Content-Length", "0").strip()
        if not raw_length.isdigit():
            error = ApiError(type="bad_content_length", message="Content-Length is not a number")
            self._refuse(400, error)
            return None
        length = int(raw_length)
        if length > self._state.max_body_bytes:
            limit = self._state.max_body_bytes
            error = ApiError(
                type="payload_too_large",
                details={"maxBodyBytes": str(limit)},
                message=f"The request body is larger than {limit} bytes",
            )
            self._refuse(413, error)
            return None
        return self.rfile.read(length) if length else b""

    def _refuse(self, status: int, error: ApiError) -> None:
        """Answer without reading the body, then close (the unread body would desync us)."""
        self.close_connection = True
        self._send_errors(status, error, headers=[("Connection", "close")])

    def _apply_faults(self) -> bool:
        """Play the queued delay and fault; True when the request should be answered normally."""
        state = self._state
        delay, fault = state.take_faults()
        if delay and state.stopping.wait(delay):
            self.close_connection = True
            return False
        if fault is None:
            return True
        if isinstance(fault, _Failure):
            self._send(fault.status, fault.body, list(fault.headers))
        else:  # a drop: hang up without a byte of answer
            self.close_connection = True
        return False

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        token = bearer_token(header)
        expected = self._state.token
        if token is None:
            message = "Access token is missing" if not header.strip() else "Access token is invalid"
        elif expected is not None and not hmac.compare_digest(token.encode(), expected.encode()):
            message = "Access token is invalid"
        else:
            return True
        self._send_errors(401, ApiError(message=message), headers=[("WWW-Authenticate", "Bearer")])
        return False

    def _create(self, endpoint: Endpoint[Any, Any], body: bytes) -> None:
        """Validate the body with the SDK's request model; answer 201 with the recorded event."""
        try:
            data = endpoint.request_model.model_validate_json(
                body or b"{}", by_alias=True, by_name=False
            )
        except pydantic.ValidationError as exc:
            self._send_errors(400, *_validation_errors(exc))
            return
        self._send_json(201, self._record(endpoint.response_model, data))

    def _record(self, model: type[ResponseModel], data: RequestModel) -> dict[str, Any]:
        """Make the event of this request from the server's fields and the body's.

        A field the answer requires that the body left out (a session's ``sessionUuid``) is
        made here, as the API makes it. The event is stored with the request, by ``_finish``.
        """
        fields = self._state.new_event_fields()
        fields.update(data.to_dict())
        for name, info in model.model_fields.items():
            fields.setdefault(info.alias or name, str(uuid.uuid4()))
        self._event = cast(Event, model.model_validate(fields))
        return fields

    def _answer_pixel(self, lead: str, rate_table: str, offer: str) -> None:
        if all(UUID_RE.fullmatch(value) for value in (lead, rate_table, offer)):
            data = OfferDisplayCreateData.model_validate(
                {"leadUuid": lead, "rateTableUuid": rate_table, "offerUuid": offer}
            )
            self._record(OfferDisplay, data)
        headers = [("Content-Type", "image/gif"), ("Cache-Control", "no-store")]
        self._send(200, TRANSPARENT_GIF, headers)

    def _send_json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document).encode(), [("Content-Type", "application/json")])

    def _send_errors(
        self, status: int, *errors: ApiError, headers: list[tuple[str, str]] | None = None
    ) -> None:
        all_headers = [("Content-Type", "application/json"), *(headers or [])]
        self._send(status, _errors_body(*errors), all_headers)

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self._finish(status)  # visible to waiters and readers before the client has the answer
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if status in (204, 304):
            body = b""  # these statuses carry no body, and no Content-Length
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    """The stdlib threading server, plus a register of open connections so stop() can end them."""

    daemon_threads = True
    request_queue_size = 128  # a burst of concurrent clients must not wait for SYN retries

    def __init__(
        self, address: tuple[str, int], family: socket.AddressFamily, state: _State
    ) -> None:
        self.address_family = family
        self.state = state
        self._connections_lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        # stop() writes a byte here to wake the accept loop at once (no polling interval).
        self._wake_reader, self._wake_writer = socket.socketpair()
        try:
            super().__init__(address, _Handler)
        except BaseException:
            self._wake_reader.close()
            self._wake_writer.close()
            raise
        self.socket.setblocking(False)  # accept() must not hang if a connection vanished

    def serve(self) -> None:
        """Accept connections until :meth:`wake` is called after ``state.stopping`` is set.

        ``serve_forever`` would notice a shutdown only at its next poll; this loop sleeps in
        ``select`` on the listening socket and on a wake-up socket, so stopping is immediate.
        """
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self.state.stopping.is_set():
                ready = {key.fileobj for key, _ in selector.select()}
                if self.socket in ready and not self.state.stopping.is_set():
                    self._accept()

    def _accept(self) -> None:
        try:
            request, client_address = self.get_request()
        except OSError:  # nothing to accept after all (BlockingIOError) or the peer left
            return
        request.setblocking(True)
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)

    def wake(self) -> None:
        """Wake :meth:`serve` so that it sees ``state.stopping``."""
        with contextlib.suppress(OSError):  # the buffer is full of wake-ups already
            self._wake_writer.send(b"\0")

    def server_close(self) -> None:
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve a host name for the address (slow, useless here).
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"fake-engine-conn-{client_address}",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("error while answering %s", client_address, exc_info=True)

    def close_connections(self) -> None:
        """Hang up every open connection and wait for its thread to finish."""
        with self._connections_lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            with contextlib.suppress(OSError):  # already closed by the peer or its handler
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in connections:
            thread.join(_JOIN_TIMEOUT_SECONDS)


def is_loopback_host(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (``localhost``, 127/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class FakeEngineServer:
    """A fake Engine UI Events API on a real loopback HTTP/1.1 server, in a background thread.

    Routes:

    * ``POST /uiEvent/sessionInits`` and ``POST /uiEvent/offerDisplays``: bearer token checked
      first (401 ``[{"message": "Access token is missing"}]`` or ``"... is invalid"``), then
      the body is validated with the SDK's request models (400 with one ``ApiError`` per
      problem, ``attribute`` naming the field; whole-body problems such as invalid JSON or
      a non-object carry no attribute). An empty body counts as ``{}``. Success is 201 with
      the full ``SessionInit`` / ``OfferDisplay``: server-made incrementing ``id``, random
      ``uuid``, ``createdAt`` like ``2021-05-01T00:00:00.000Z``, ``createdBy`` fixed per
      server (:attr:`created_by`), and a new ``sessionUuid`` when the body has none.
    * ``GET /uiEvent/offerDisplays/{lead}/{rateTable}/{offer}/pixel.gif``: no token needed;
      always 200 ``image/gif`` (a transparent 1x1 GIF) with ``Cache-Control: no-store``;
      records an offer display when all three segments are UUIDs.
    * Any other path: 404; another method on a known path: 405 with an ``Allow`` header.

    Bodies must come with ``Content-Length``: one over ``max_body_bytes`` gets 413 without
    being read, and a body sent with ``Transfer-Encoding`` (chunked) gets 411 Length Required.
    Both close the connection. Error answers are JSON arrays of ``ApiError``.

    Every request is recorded in :attr:`requests` once the fake is done with it, with its
    status and the event it stored (``Authorization`` redacted; :meth:`assert_token` checks
    the token), including failed and refused ones; only successful creations reach
    :attr:`session_inits` and :attr:`offer_displays`. A request, its status and its event
    become visible together, before the client receives the answer. Faults queued by
    :meth:`fail_next`, :meth:`delay_next` and :meth:`drop_next` apply, in order, to the next
    requests that reach an API route with the right method (the two POSTs and the pixel); a
    delay and a failure or drop may combine.

    ``on_request``, when given, is called with each finished :class:`RecordedRequest` (in
    the thread that answered it, after the answer was sent); an exception it raises is
    logged and otherwise ignored.

    The server only binds loopback addresses unless ``allow_non_loopback=True``; it logs to
    the ``openapi_client.testing`` logger at DEBUG and never to stderr.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        max_body_bytes: int = 64 * 1024,
        *,
        allow_non_loopback: bool = False,
        on_request: RequestCallback | None = None,
    ) -> None:
        if not allow_non_loopback and not is_loopback_host(host):
            raise ValueError(
                f"FakeEngineServer binds loopback addresses only, not {host!r}; "
                "pass allow_non_loopback=True to expose it"
            )
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {port}")
        if max_body_bytes < 0:
            raise ValueError(f"max_body_bytes must not be negative, not {max_body_bytes}")
        if token is not None and (not token or token != token.strip() or " " in token):
            raise ValueError("token must be a non-empty string without spaces")
        self._host = host
        self._port = port
        self._state = _State(token, max_body_bytes, on_request)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle_lock = threading.Lock()
        self._stopped = False

    # Lifecycle

    def start(self) -> Self:
        """Bind and serve in a background thread; a no-op when already running."""
        with self._lifecycle_lock:
            if self._stopped:
                raise RuntimeError("a stopped FakeEngineServer cannot be started again")
            if self._server is not None:
                return self
            family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
            server = _Server((self._host, self._port), family, self._state)
            thread = threading.Thread(
                target=server.serve,
                name=f"fake-engine-{server.server_address[1]}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving, hang up open connections, close the socket; safe to call twice."""
        with self._lifecycle_lock:
            self._stopped = True
            server, thread = self._server, self._thread
            self._server = self._thread = None
            if server is None or thread is None:
                return
            self._state.stopping.set()  # wakes delayed answers
            server.wake()
            thread.join(_JOIN_TIMEOUT_SECONDS)
            server.close_connections()
            server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Where and how to reach it

    @property
    def port(self) -> int:
        """The bound port (the free one picked when constructed with ``port=0``)."""
        server = self._server
        if server is None:
            raise RuntimeError("FakeEngineServer is not running; call start() first")
        return int(server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``; use it as the SDK's host."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def token(self) -> str | None:
        """The only bearer token accepted, or None when any non-empty token is."""
        return self._state.token

    @property
    def created_by(self) -> str:
        """The ``createdBy`` UUID of every event this server records."""
        return self._state.created_by

    # What it received (copies, safe to read from any thread)

    @property
    def session_inits(self) -> list[SessionInit]:
        """Session starts recorded so far, oldest first."""
        with self._state.lock:
            return [cast(SessionInit, e.model_copy()) for e in self._state.events[SessionInit]]

    @property
    def offer_displays(self) -> list[OfferDisplay]:
        """Offer displays recorded so far (by POST or pixel), oldest first."""
        with self._state.lock:
            return [cast(OfferDisplay, e.model_copy()) for e in self._state.events[OfferDisplay]]

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request finished so far, in the order finished, with its status and event."""
        with self._state.lock:
            return [_copy(request) for request in self._state.requests]

    # Waiting for what another thread sends (no sleeps needed)

    def wait_for_requests(
        self, count: int, timeout: float = 5.0, *, include_in_flight: bool = False
    ) -> bool:
        """Block until at least ``count`` requests are finished; False on timeout.

        Finished means visible: when this returns True, :attr:`requests` holds them with their
        status, and the events they stored are in :attr:`offer_displays` /
        :attr:`session_inits`. With ``include_in_flight=True``, requests that arrived but are
        still being answered (held by ``delay_next``, say) count too.
        """
        state = self._state

        def enough() -> bool:
            return len(state.requests) + (state.in_flight if include_in_flight else 0) >= count

        with state.changed:
            return state.changed.wait_for(enough, timeout)

    @overload
    def wait_for_events(
        self,
        kind: type[OfferDisplay] | Literal["offer_display"],
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[OfferDisplay]: ...

    @overload
    def wait_for_events(
        self,
        kind: type[SessionInit] | Literal["session_init"],
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[SessionInit]: ...

    def wait_for_events(
        self, kind: type[Event] | EventKind, count: int = 1, timeout: float = 5.0
    ) -> list[OfferDisplay] | list[SessionInit]:
        """Block until at least ``count`` events of ``kind`` are recorded; return them all.

        ``kind`` is ``OfferDisplay`` or ``"offer_display"``, ``SessionInit`` or
        ``"session_init"``. The requests that recorded them are visible too. On timeout,
        raises ``AssertionError`` saying what was recorded and what the fake answered instead.
        """
        model = event_model(kind)
        state = self._state
        with state.changed:
            arrived = state.changed.wait_for(lambda: len(state.events[model]) >= count, timeout)
            events: list[Any] = [event.model_copy() for event in state.events[model]]
            if arrived:
                return events
            unrecorded = [request.describe() for request in state.requests if not request.event]
            in_flight = state.in_flight
        lines = [
            f"waited {timeout} s for {count} {PLURALS[model]}; {len(events)} recorded",
            *(f"  {describe_event(event)}" for event in events),
        ]
        if unrecorded:
            lines.append("requests that recorded nothing (oldest first):")
            lines.extend(f"  {line}" for line in unrecorded[-10:])
        if in_flight:
            lines.append(f"{in_flight} request(s) still being answered")
        raise AssertionError("\n".join(lines))

    # Assertions with messages that say what happened

    def assert_recorded(
        self,
        *,
        offer_displays: Expected = None,
        session_inits: Expected = None,
        timeout: float = 0.0,
    ) -> None:
        """Check what was recorded; ``AssertionError`` listing expected, recorded, near misses.

        Each argument is a count (``session_inits=1``) or a list with one item per expected
        event: a dict of the fields to match (Python or JSON names; UUIDs in any case or as
        ``uuid.UUID``; fields left out match anything), or a model such as
        ``OfferDisplayCreateData``. Items match distinct events in any order, and every
        recorded event of that kind must be matched. An argument left out is not checked.
        ``timeout`` > 0 waits that long for the check to pass (for code that sends from
        another thread).
        """
        expected: dict[type[Event], Expected] = {
            OfferDisplay: offer_displays,
            SessionInit: session_inits,
        }
        if offer_displays is None and session_inits is None:
            raise ValueError("name what to check: offer_displays=..., session_inits=...")
        state = self._state

        def mismatch() -> str | None:
            return recorded_mismatch(expected, state.events, state.requests)

        with state.changed:
            message = mismatch()
            if message is not None and timeout > 0:
                state.changed.wait_for(lambda: mismatch() is None, timeout)
                message = mismatch()
            in_flight = state.in_flight
        if message is not None:
            if in_flight:
                message += f"\n{in_flight} request(s) still being answered"
            raise AssertionError(message)

    def assert_token(self, expected: str) -> None:
        """Check that every request to the two POST routes sent ``Bearer <expected>``.

        At least one such request must have been received. Tokens are compared in constant
        time (``hmac.compare_digest`` of keyed digests; the fake never keeps a token), and
        the ``AssertionError`` names the requests that sent another token or none, never a
        token.
        """
        with self._state.lock:
            requests = list(self._state.requests)
        message = token_mismatch(requests, expected, _ENDPOINTS.keys())
        if message is not None:
            raise AssertionError(message)

    # A client for it

    def client(self, **settings: Any) -> ApiClient:
        """An ``ApiClient`` for this server, set up for tests; close it (``with``) when done.

        Its ``host`` is :attr:`url`, its ``access_token`` the server's :attr:`token` (or
        ``CLIENT_TOKEN`` when any is accepted), and retries wait 10 ms to 50 ms instead of
        0.5 s to 8 s. Keyword arguments are ``Configuration`` settings and win over these,
        e.g. ``client(retries=0)`` or ``client(access_token="pk_wrong")``.
        """
        from openapi_client.api_client import ApiClient
        from openapi_client.configuration import Configuration
        from openapi_client.retries import RetryPolicy

        defaults: dict[str, Any] = {
            "host": self.url,
            "access_token": self.token or CLIENT_TOKEN,
            "retries": RetryPolicy(initial_backoff=0.01, max_backoff=0.05),
        }
        return ApiClient(Configuration(**{**defaults, **settings}))

    # Resetting

    def reset(self) -> None:
        """Forget recorded requests and events, and cancel pending faults (ids keep counting).

        A request still being answered is recorded when it finishes.
        """
        with self._state.lock:
            self._state.requests.clear()
            for events in self._state.events.values():
                events.clear()
            self._state.delays.clear()
            self._state.faults.clear()

    # Fault injection

    def fail_next(
        self,
        status: int,
        times: int = 1,
        body: object = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` API requests with ``status`` instead of handling them.

        ``body`` defaults to an ``ApiError`` array; bytes are sent as they are, a str as
        UTF-8 text, anything else as JSON. ``headers`` (e.g. ``{"Retry-After": "1"}``) are
        added, and may override the Content-Type.
        """
        if not 200 <= status <= 599:
            raise ValueError(f"status must be between 200 and 599, not {status}")
        _check_times(times)
        content_type = "application/json"
        if body is None:
            reason = http.HTTPStatus(status).phrase if status in _KNOWN_STATUSES else "Failure"
            payload = _errors_body(ApiError(type="injected_fault", message=reason))
        elif isinstance(body, bytes):
            payload, content_type = body, "application/octet-stream"
        elif isinstance(body, str):
            payload, content_type = body.encode(), "text/plain; charset=utf-8"
        else:
            payload = json.dumps(body).encode()
        extra = dict(headers or {})
        if not any(name.lower() == "content-type" for name in extra):
            extra["Content-Type"] = content_type
        failure = _Failure(status, payload, tuple(extra.items()))
        with self._state.lock:
            self._state.faults.extend([failure] * times)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """Wait ``seconds`` before answering each of the next ``times`` API requests.

        The wait ends early, without an answer, when the server stops.
        """
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, not {seconds}")
        _check_times(times)
        with self._state.lock:
            self._state.delays.extend([float(seconds)] * times)

    def drop_next(self, times: int = 1) -> None:
        """Close the connection of the next ``times`` API requests without answering."""
        _check_times(times)
        with self._state.lock:
            self._state.faults.extend([_DROP] * times)


_KNOWN_STATUSES: Final = frozenset(status.value for status in http.HTTPStatus)


def _copy(request: RecordedRequest) -> RecordedRequest:
    """A copy a test may change without changing the record."""
    event = None if request.event is None else request.event.model_copy()
    return dataclasses.replace(request, headers=dict(request.headers), event=event)


def _check_times(times: int) -> None:
    if times < 1:
        raise ValueError(f"times must be at least 1, not {times}")
