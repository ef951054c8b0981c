"""The request pipeline every call goes through: prepare, send (with retries), decode.

A call reads top to bottom: ``UIEventsApi.create_offer_display`` → ``ApiClient.call`` →
``prepare`` (body checked and encoded, one ``HttpRequest``) → ``execute`` (attempts, waits,
one deadline) → ``Transport.send`` (one exchange) → ``decode`` (model, or the matching
exception). What can be computed once per configuration (URLs, headers with auth, the
transport, the retry policy) lives in a ``ClientState`` rebuilt only when the
``Configuration`` changes.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import sys
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar, TypedDict

import urllib3

from openapi_client import _logs
from openapi_client._fork import after_fork_in_child
from openapi_client._generated import GeneratedClientContract, RequestSerialized
from openapi_client._redaction import strip_userinfo
from openapi_client._requests import (
    apply_auth,
    check_content_type,
    refuse_insecure,
    refuse_without_credentials,
    secrets_of,
    unknown_options,
)
from openapi_client._responses import decode
from openapi_client._state import ClientState
from openapi_client._version import __version__
from openapi_client.api_response import ApiResponse
from openapi_client.configuration import Configuration
from openapi_client.endpoint import Endpoint, RequestT, ResponseT
from openapi_client.exceptions import ApiConnectionError, ApiTypeError
from openapi_client.rest import RESTClientObject
from openapi_client.retries import RetryPolicy
from openapi_client.transport import HttpRequest, RESTResponse, Transport, discard
from openapi_client.validation import (
    TimeoutSetting,
    check_header,
    merge_headers,
    timeout_budget,
    to_timeout,
)

__all__ = ["ApiClient", "ApiResponse", "RequestOptions", "RequestSerialized"]

_JSON = "application/json"
_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
_URLLIB3_LOG = logging.getLogger("urllib3.connectionpool")


class RequestOptions(TypedDict, total=False):
    """Per-call options, accepted as keyword arguments by every operation."""

    _request_timeout: TimeoutSetting
    """Seconds: one number (connect and read each) or a (connect, read) pair."""
    _request_auth: Mapping[str, str] | None
    """Replace the configured auth for this call: ``{"in": "header", "key": ..., "value": ...}``."""
    _content_type: str | None
    """Request Content-Type; only JSON types are accepted."""
    _headers: Mapping[str, str] | None
    """Extra headers for this call; they replace default headers of the same name, in any case."""
    _host_index: int | None
    """Send this call to server ``n`` of ``Configuration.get_host_settings()``."""


_OPTION_NAMES = frozenset(RequestOptions.__annotations__)


class ApiClient(GeneratedClientContract):
    """Sends calls for the API classes; owns one connection pool shared by all threads.

    Use it as a context manager (or call ``close()``) to release the pool's connections.
    ``transport`` replaces the HTTP layer (see ``transport.Transport`` and
    docs/AddingAnEndpoint.md): for tests and benchmarks.
    """

    _default: ClassVar[ApiClient | None] = None

    def __init__(
        self,
        configuration: Configuration | None = None,
        header_name: str | None = None,
        header_value: str | None = None,
        cookie: str | None = None,
        *,
        transport: Transport | None = None,
    ) -> None:
        self.configuration = configuration or Configuration.get_default()
        self._default_headers: dict[str, str] = {
            "User-Agent": f"openapi_client/{__version__} python/{_PYTHON}"
        }
        self._lock = threading.Lock()
        self._own_transport = transport is None
        self._transport: Transport | None = transport
        self._pool_key: object = None
        self._reserved_connections = 0
        self._state: ClientState | None = None
        self._per_call_lock = threading.Lock()
        self._per_call_secrets: collections.deque[str] = collections.deque(maxlen=64)
        """Recent ``_request_auth`` values given to ``param_serialize``, for a ``call_api`` whose
        headers no longer carry theirs (see ``SerializedHeaders``); guarded by its lock."""
        if header_name is not None:
            self.set_default_header(header_name, header_value or "")
        if cookie:
            self.set_default_header("Cookie", cookie)
        after_fork_in_child(self, ApiClient._after_fork_in_child)

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections; a later call opens new ones."""
        with self._lock:
            transport, self._state, self._pool_key = self._transport, None, None
            if self._own_transport:
                self._transport = None
        if transport is not None:
            transport.close()

    @classmethod
    def get_default(cls) -> ApiClient:
        """The client used by API classes created without one."""
        if cls._default is None:
            cls._default = ApiClient()
        return cls._default

    @classmethod
    def set_default(cls, default: ApiClient | None) -> None:
        """Make ``default`` the client of API classes created without one."""
        cls._default = default

    # -- headers -----------------------------------------------------------------------------

    @property
    def default_headers(self) -> Mapping[str, str]:
        """Headers sent with every call (read-only view; change with ``set_default_header``)."""
        return dict(self._default_headers)

    def set_default_header(self, header_name: str, header_value: str) -> None:
        """Send this header with every call (replacing one of the same name, in any case)."""
        check_header(header_name, header_value)
        with self._lock:
            headers = dict(self._default_headers)
            merge_headers(headers, {header_name: header_value})
            self._default_headers, self._state = headers, None

    @property
    def rest_client(self) -> Transport:
        """The transport calls go through (openapi-generator's name for it)."""
        return self._current_state().transport

    @property
    def user_agent(self) -> str:
        """The User-Agent header: names this package and its version by default."""
        return next(v for k, v in self._default_headers.items() if k.lower() == "user-agent")

    @user_agent.setter
    def user_agent(self, value: str) -> None:
        self.set_default_header("User-Agent", value)

    def _remember_per_call_secret(self, secret: str) -> None:
        with self._per_call_lock:
            self._per_call_secrets.append(secret)

    def _recent_per_call_secrets(self) -> tuple[str, ...]:
        """A snapshot: other threads append while a call reads it."""
        with self._per_call_lock:
            return tuple(self._per_call_secrets)

    # -- the pipeline ------------------------------------------------------------------------

    def call(
        self,
        endpoint: Endpoint[RequestT, ResponseT],
        body: RequestT | dict[str, Any] | None,
        options: RequestOptions,
        *,
        policy: RetryPolicy | None = None,
    ) -> ApiResponse[ResponseT]:
        """Run one operation and return its parsed response, or raise an ``ApiException``."""
        state = self._state  # _current_state(), inlined: this is every call's path
        if state is None or state.generation != self.configuration._generation:
            state = self._rebuild_state()
        request = self.prepare(state, endpoint, body, options)
        response, retries = self.execute(state, request, policy or state.policy)
        return decode(request, endpoint, response, retries)

    def call_raw(
        self,
        endpoint: Endpoint[RequestT, ResponseT],
        body: RequestT | dict[str, Any] | None,
        options: RequestOptions,
    ) -> urllib3.BaseHTTPResponse:
        """Run one operation and return urllib3's unread response (status not checked)."""
        state = self._current_state()
        request = self.prepare(state, endpoint, body, options)._replace(stream=True)
        return self.execute(state, request, state.policy)[0].release_deadline()

    def reserve_connections(self, count: int) -> None:
        """Let the pool keep at least ``count`` connections open (an ``EventRecorder`` sends
        that many requests at once), so that no call opens a connection only to close it."""
        with self._lock:
            if count > self._reserved_connections:
                self._reserved_connections, self._state = count, None

    def _current_state(self) -> ClientState:
        state = self._state
        if state is None or state.generation != self.configuration._generation:
            state = self._rebuild_state()
        return state

    def _rebuild_state(self) -> ClientState:
        config = self.configuration
        with self._lock:
            if self._own_transport:
                settings = config.pool_settings
                if settings.maxsize < self._reserved_connections:
                    settings = dataclasses.replace(settings, maxsize=self._reserved_connections)
                if self._transport is None or settings != self._pool_key:
                    # The old transport is dropped, not closed: calls still using it finish,
                    # and it closes its connections when the last of them lets go.
                    self._transport, self._pool_key = RESTClientObject(settings), settings
            assert self._transport is not None
            state = ClientState(config, self._transport, self._default_headers)
            self._state = state
            return state

    def prepare(
        self,
        state: ClientState,
        endpoint: Endpoint[Any, Any],
        body: Any,
        options: RequestOptions,
    ) -> HttpRequest:
        """The request to send, checked; raises before any byte goes out."""
        if not options:  # the common case, kept short: nothing per call but the body
            payload = endpoint.encode(body)
            url, headers, secrets = state.routes.get(endpoint) or state.route(endpoint)
            return HttpRequest(
                endpoint.method, url, headers, payload, state.timeout, state.budget,
                state.max_bytes, False, secrets,
            )  # fmt: skip
        unknown = options.keys() - _OPTION_NAMES
        if unknown:  # before the body: `create_offer_display(lead_uuid=...)` lands here
            raise unknown_options(endpoint, unknown)
        payload = endpoint.encode(body)
        auth = options.get("_request_auth")
        url = state.host + endpoint.path
        host_index = options.get("_host_index")
        if host_index is not None:
            url = self.configuration.get_host_from_settings(host_index) + endpoint.path
        headers = dict(state.base_headers)
        if auth is None:
            merge_headers(headers, state.auth_headers(endpoint))
        content_type = options.get("_content_type")
        if content_type is not None:
            merge_headers(headers, {"Content-Type": check_content_type(endpoint, content_type)})
        extra_headers = options.get("_headers") or {}
        if not isinstance(extra_headers, Mapping):
            raise ApiTypeError(f"_headers must be a mapping, not {type(extra_headers).__name__}")
        for name, value in extra_headers.items():
            check_header(name, value)
        merge_headers(headers, extra_headers)
        secrets = secrets_of(headers)
        if auth is not None:
            url, auth_secret = apply_auth(auth, headers, url)
            secrets = (*secrets_of(headers), auth_secret)
        if endpoint.auth:
            refuse_without_credentials(endpoint.name, secrets)
        refuse_insecure(state.allow_insecure_http, url, secrets)
        secrets += state.proxy_secrets
        timeout = state.timeout
        if options.get("_request_timeout") is not None:
            timeout = to_timeout(options["_request_timeout"], "_request_timeout")
        return HttpRequest(
            endpoint.method, url, headers, payload, timeout, timeout_budget(timeout),
            state.max_bytes, False, secrets,
        )  # fmt: skip

    def execute(
        self, state: ClientState, request: HttpRequest, policy: RetryPolicy
    ) -> tuple[RESTResponse, int]:
        """Send with retries, all within the request's budget; returns (response, retries)."""
        started = time.monotonic()
        deadline = started + request.budget
        debug = _logs.logger.isEnabledFor(logging.DEBUG) or _URLLIB3_LOG.isEnabledFor(logging.DEBUG)
        retries = 0
        while True:
            try:
                if debug:
                    response = _logs.send_logged(
                        state.transport, request, deadline, retries, started
                    )
                else:
                    response = state.transport.send(request, deadline)
            except ApiConnectionError as error:
                wait = (
                    policy.backoff(retries + 1) if policy.should_retry_failure(error.kind) else None
                )
                if not _may_retry(policy, retries, wait, deadline):
                    error.retries = retries
                    raise
                if debug:
                    _logs.logger.debug(
                        "attempt %d failed (%s); retrying", retries + 1, error.reason
                    )
            else:
                if not policy.should_retry_status(response.status):
                    return response, retries
                wait = policy.wait_before_retry(retries + 1, response.headers)
                if not _may_retry(policy, retries, wait, deadline):
                    return response, retries
                if request.stream:
                    discard(response.response)
            assert wait is not None
            time.sleep(wait)
            retries += 1

    def _after_fork_in_child(self) -> None:
        """A lock held by a parent thread at fork time would never be released in the child."""
        self._lock = threading.Lock()
        self._per_call_lock = threading.Lock()
        self._state = None

    def __repr__(self) -> str:
        return f"ApiClient(host={strip_userinfo(self.configuration.host)!r})"


def _may_retry(policy: RetryPolicy, retries: int, wait: float | None, deadline: float) -> bool:
    """Another attempt is allowed by the count, wanted (``wait`` set) and fits before the deadline."""
    return wait is not None and retries < policy.max_retries and time.monotonic() + wait < deadline
