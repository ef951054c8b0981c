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

import dataclasses
import http
import json
import socket
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, cast, overload

from typing_extensions import Self

from openapi_client.models import ApiError, OfferDisplay, SessionInit
from openapi_client.testing._expect import Expected, recorded_mismatch, token_mismatch
from openapi_client.testing._http import (
    DROP,
    ENDPOINTS,
    TRANSPARENT_GIF,
    Failure,
    RequestCallback,
    Server,
    State,
    errors_body,
)
from openapi_client.testing._recorded import (
    PLURALS,
    Event,
    EventKind,
    RecordedRequest,
    describe_event,
    event_model,
)
from openapi_client.validation import is_loopback

if TYPE_CHECKING:
    from openapi_client.api_client import ApiClient

__all__ = [
    "CLIENT_TOKEN",
    "TRANSPARENT_GIF",
    "FakeEngineServer",
    "RecordedRequest",
]

CLIENT_TOKEN: Final = "pk_test_fake_engine"
"""The token ``FakeEngineServer.client()`` sends when the server accepts any token."""


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
    Both close the connection. Error responses are JSON arrays of ``ApiError``.

    Every request is recorded in :attr:`requests` once the fake is done with it, with its
    status and the event it stored (``Authorization`` redacted; :meth:`assert_token` checks
    the token), including failed and refused ones; only successful creations reach
    :attr:`session_inits` and :attr:`offer_displays`. A request, its status and its event
    become visible together, before the client receives the response. Faults queued by
    :meth:`fail_next`, :meth:`delay_next` and :meth:`drop_next` apply, in order, to the next
    requests that reach an API route with the right method (the two POSTs and the pixel); a
    delay and a failure or drop may combine.

    ``on_request``, when given, is called with each finished :class:`RecordedRequest` (in
    the thread that answered it, after the response was sent); an exception it raises is
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
        if not allow_non_loopback and not is_loopback(host):
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
        self._state = State(token, max_body_bytes, on_request)
        self._server: Server | None = None
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
            server = Server((self._host, self._port), family, self._state)
            server.start_thread(f"fake-engine-{server.server_address[1]}")
            self._server = server
        return self

    def stop(self) -> None:
        """Stop serving, hang up open connections, close the socket; safe to call twice."""
        with self._lifecycle_lock:
            self._stopped = True
            server, self._server = self._server, None
            if server is not None:
                server.stop_serving()  # sets state.stopping: delayed responses end too

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
        message = token_mismatch(requests, expected, ENDPOINTS.keys())
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
            payload = errors_body(ApiError(type="injected_fault", message=reason))
        elif isinstance(body, bytes):
            payload, content_type = body, "application/octet-stream"
        elif isinstance(body, str):
            payload, content_type = body.encode(), "text/plain; charset=utf-8"
        else:
            payload = json.dumps(body).encode()
        extra = dict(headers or {})
        if not any(name.lower() == "content-type" for name in extra):
            extra["Content-Type"] = content_type
        failure = Failure(status, payload, tuple(extra.items()))
        with self._state.lock:
            self._state.faults.extend([failure] * times)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """Wait ``seconds`` before answering each of the next ``times`` API requests.

        The wait ends early, without a response, when the server stops.
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
            self._state.faults.extend([DROP] * times)


_KNOWN_STATUSES: Final = frozenset(status.value for status in http.HTTPStatus)


def _copy(request: RecordedRequest) -> RecordedRequest:
    """A copy a test may change without changing the record."""
    event = None if request.event is None else request.event.model_copy()
    return dataclasses.replace(request, headers=dict(request.headers), event=event)


def _check_times(times: int) -> None:
    if times < 1:
        raise ValueError(f"times must be at least 1, not {times}")
