"""The HTTP side of the fake Engine server: routes, request handling, faults, shared state.

``FakeEngineServer`` (``server.py``) owns one ``Server`` and one ``State``; this module answers
the requests. A request is stored, with its status and its event, before its response is sent.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hmac
import json
import logging
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any, Final, TypeAlias, cast

import pydantic

from openapi_client._redaction import mask_credential_headers as redact_headers
from openapi_client.api.ui_events_api import CREATE_OFFER_DISPLAY, CREATE_SESSION_INIT
from openapi_client.endpoint import Endpoint
from openapi_client.models import ApiError, OfferDisplay, OfferDisplayCreateData, SessionInit
from openapi_client.models._base import UUID_RE, RequestModel, ResponseModel
from openapi_client.testing._loopback import LoopbackHTTPServer
from openapi_client.testing._recorded import Event, RecordedRequest, bearer_token, digest_token
from openapi_client.validation import location

_log = logging.getLogger("openapi_client.testing")

ENDPOINTS: Final[dict[str, Endpoint[Any, Any]]] = {
    endpoint.path: endpoint for endpoint in (CREATE_SESSION_INIT, CREATE_OFFER_DISPLAY)
}
"""The POST routes, described by the SDK's own endpoint descriptions."""
_PIXEL_PATH_RE: Final = re.compile(r"^/uiEvent/offerDisplays/([^/]+)/([^/]+)/([^/]+)/pixel\.gif$")

_QUERY_RE: Final = re.compile(r"\?[^\s\"]*")


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
"""The body of every pixel response."""


@dataclasses.dataclass(frozen=True)
class Failure:
    """A canned response queued by ``fail_next``."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


class _Drop:
    """The fault queued by ``drop_next``: hang up without answering."""


DROP: Final = _Drop()
_Fault: TypeAlias = Failure | _Drop


RequestCallback: TypeAlias = Callable[[RecordedRequest], object]


class State:
    """Everything the handler threads share, behind one lock.

    A request is counted ``in_flight`` from its arrival until it is finished; finishing it
    stores the request and its event together, under the lock, before the response is sent.
    So whoever sees the request (a waiter, or the client holding the response) sees all of it.
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


def errors_body(*errors: ApiError) -> bytes:
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
        attribute = location(item["loc"]) if item["loc"] else None
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
    # Write each response in one send (headers and body buffered together) without Nagle's
    # delay, so that keep-alive clients never wait on delayed ACKs.
    wbufsize = -1
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        # A query string may carry a credential (``_request_auth`` "in": "query"): left out.
        message = _QUERY_RE.sub("?...", format % args)
        _log.debug("%s - %s", self.address_string(), message)

    # Every method goes through one dispatcher.
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    @property
    def _state(self) -> State:
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
            # No response was sent when nothing finished the request: a drop, a stop, an error.
            finished = self._finished if self._finished is not None else self._finish(None)
            with contextlib.suppress(OSError, ValueError):  # response first, then the report
                self.wfile.flush()
            state.report(finished)

    def _finish(self, status: int | None) -> RecordedRequest:
        """Store the request with its outcome and event; called once, before the response goes out."""
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
        endpoint = ENDPOINTS.get(path)
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
        if isinstance(fault, Failure):
            self._send(fault.status, fault.body, list(fault.headers))
        else:  # a drop: hang up without a byte of response
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
            data = endpoint.request_type.model_validate_json(
                body or b"{}", by_alias=True, by_name=False
            )
        except pydantic.ValidationError as exc:
            self._send_errors(400, *_validation_errors(exc))
            return
        self._send_json(201, self._record(endpoint.response_type, data))

    def _record(self, model: type[ResponseModel], data: RequestModel) -> dict[str, Any]:
        """Make the event of this request from the server's fields and the body's.

        A field the response requires that the body left out (a session's ``sessionUuid``) is
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
        self._send(status, errors_body(*errors), all_headers)

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self._finish(status)  # visible to waiters and readers before the client has the response
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


class Server(LoopbackHTTPServer):
    """The fake's HTTP server: its handlers share ``state``."""

    def __init__(
        self, address: tuple[str, int], family: socket.AddressFamily, state: State
    ) -> None:
        self.state = state
        super().__init__(address, _Handler, family, stopping=state.stopping)
