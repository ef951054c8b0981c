"""The request pipeline every call goes through: build, send (with retries), decode.

Everything that can be computed once per client (headers, URLs, the pool, the retry policy)
lives in a ``_ClientState`` rebuilt only when the ``Configuration`` changes, so a call does the
least work it can: validate and encode the body, one pooled HTTP exchange, validate the answer.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar, Generic, TypedDict, TypeVar

import urllib3
from pydantic import ValidationError

from openapi_client._logs import logger, redact_headers
from openapi_client._version import __version__
from openapi_client.configuration import (
    Configuration,
    TimeoutSetting,
    check_header_value,
    timeout_budget,
    to_timeout,
)
from openapi_client.endpoint import Endpoint, RequestT, ResponseT
from openapi_client.exceptions import (
    ApiConnectionError,
    ApiException,
    ApiResponseValidationError,
    ApiTypeError,
    ApiValueError,
)
from openapi_client.rest import RESTClientObject, discard, read_body
from openapi_client.retries import RetryPolicy

T = TypeVar("T")

_JSON = "application/json"
_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
_POOL_SETTINGS = (
    "verify_ssl", "ssl_ca_cert", "ca_cert_data", "cert_file", "key_file", "assert_hostname",
    "tls_server_name", "proxy", "proxy_headers", "connection_pool_maxsize", "socket_options",
)  # fmt: skip


class RequestOptions(TypedDict, total=False):
    """Per-call options, accepted as keyword arguments by every operation."""

    _request_timeout: TimeoutSetting
    """Seconds: one number (connect and read each) or a (connect, read) pair."""
    _request_auth: Mapping[str, str] | None
    """Replace the configured auth for this call: ``{"in": "header", "key": ..., "value": ...}``."""
    _content_type: str | None
    """Request Content-Type; only JSON types are accepted."""
    _headers: Mapping[str, str] | None
    """Extra headers for this call; they win over the client's default headers."""
    _host_index: int | None
    """Send this call to server ``n`` of ``Configuration.get_host_settings()``."""


_OPTION_NAMES = frozenset(RequestOptions.__annotations__)


class ApiResponse(Generic[T]):
    """An answer with its metadata: status, headers, the parsed model and the raw bytes."""

    __slots__ = ("data", "headers", "raw_data", "retries", "status_code")

    def __init__(
        self, status_code: int, headers: Mapping[str, str], data: T, raw_data: bytes, retries: int
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.data = data
        self.raw_data = raw_data
        self.retries = retries
        """How many times the call was retried before this answer."""

    def __repr__(self) -> str:
        return (
            f"ApiResponse(status_code={self.status_code}, data={self.data!r}, "
            f"retries={self.retries})"
        )


class _ClientState:
    """What a client derives from its Configuration; immutable once built, swapped whole."""

    __slots__ = (
        "allow_insecure_http", "auth", "base_headers", "budget", "generation", "host",
        "max_bytes", "policy", "rest", "routes", "timeout", "token",
    )  # fmt: skip

    def __init__(
        self, config: Configuration, rest: RESTClientObject, default_headers: Mapping[str, str]
    ) -> None:
        self.generation = config._generation
        self.rest = rest
        self.host = config.host
        self.token = config.access_token
        self.auth = config.auth_settings()
        self.allow_insecure_http = config.allow_insecure_http
        self.timeout: urllib3.Timeout = config.timeout
        self.budget = timeout_budget(self.timeout)
        self.policy: RetryPolicy = config.retries
        self.max_bytes: int = config.max_response_bytes
        self.base_headers = {"Accept": _JSON, "Content-Type": _JSON, **default_headers}
        self.routes: dict[Endpoint[Any, Any], tuple[str, dict[str, str]]] = {}

    def route(self, endpoint: Endpoint[Any, Any]) -> tuple[str, dict[str, str]]:
        """The URL and headers (with the endpoint's auth) of an operation, built once."""
        route = self.routes.get(endpoint)
        if route is None:
            headers = dict(self.base_headers)
            for name in endpoint.auth:
                setting = self.auth.get(name)
                if setting is not None:
                    headers[setting["key"]] = setting["value"]
            url = self.host + endpoint.path
            _refuse_insecure(self.allow_insecure_http, url, headers)
            route = self.routes[endpoint] = (url, headers)
        return route


class ApiClient:
    """Sends calls for the API classes; owns one connection pool shared by all threads.

    Use it as a context manager (or call ``close()``) to release the pool's connections.
    """

    _default: ClassVar[ApiClient | None] = None

    def __init__(
        self,
        configuration: Configuration | None = None,
        header_name: str | None = None,
        header_value: str | None = None,
        cookie: str | None = None,
    ) -> None:
        self.configuration = configuration or Configuration.get_default()
        self._default_headers: dict[str, str] = {
            "User-Agent": f"openapi_client/{__version__} python/{_PYTHON}"
        }
        self._lock = threading.Lock()
        self._rest: RESTClientObject | None = None
        self._rest_key: tuple[Any, ...] | None = None
        self._state: _ClientState | None = None
        if header_name is not None:
            self.set_default_header(header_name, header_value or "")
        if cookie:
            self.set_default_header("Cookie", cookie)

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
            rest, self._rest, self._rest_key, self._state = self._rest, None, None, None
        if rest is not None:
            rest.clear()

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
        """Send this header with every call (per-call ``_headers`` still win)."""
        check_header_value(header_name, header_value)
        with self._lock:
            self._default_headers = {**self._default_headers, header_name: header_value}
            self._state = None

    @property
    def user_agent(self) -> str:
        """The User-Agent header: names this package and its version by default."""
        return self._default_headers["User-Agent"]

    @user_agent.setter
    def user_agent(self, value: str) -> None:
        self.set_default_header("User-Agent", value)

    # -- the pipeline ------------------------------------------------------------------------

    def call(
        self,
        endpoint: Endpoint[RequestT, ResponseT],
        body: RequestT | dict[str, Any] | None,
        options: RequestOptions,
    ) -> ApiResponse[ResponseT]:
        """Run one operation and return its parsed answer, or raise an ``ApiException``."""
        state = self._state
        if state is None or state.generation != self.configuration._generation:
            state = self._rebuild_state()
        if options:
            url, headers, payload, timeout = self._build(state, endpoint, body, options)
        else:  # the common case, kept short: nothing per call but the body
            payload = endpoint.encode(body)
            url, headers = state.routes.get(endpoint) or state.route(endpoint)
            timeout = state.timeout
        response, data, retries = self._send(
            state, endpoint.method, url, headers, payload, timeout, True
        )
        return self._decode(state, endpoint, response, data, retries)

    def call_raw(
        self,
        endpoint: Endpoint[RequestT, ResponseT],
        body: RequestT | dict[str, Any] | None,
        options: RequestOptions,
    ) -> urllib3.BaseHTTPResponse:
        """Run one operation and return urllib3's answer unread (status not checked)."""
        state = self._current_state()
        url, headers, payload, timeout = self._build(state, endpoint, body, options)
        return self._send(state, endpoint.method, url, headers, payload, timeout, False)[0]

    def _current_state(self) -> _ClientState:
        state = self._state
        if state is None or state.generation != self.configuration._generation:
            state = self._rebuild_state()
        return state

    def _rebuild_state(self) -> _ClientState:
        config = self.configuration
        with self._lock:
            key = tuple(getattr(config, name) for name in _POOL_SETTINGS)
            if self._rest is None or key != self._rest_key:
                if self._rest is not None:
                    self._rest.clear()
                self._rest, self._rest_key = RESTClientObject(config), key
            state = _ClientState(config, self._rest, self._default_headers)
            self._state = state
            return state

    def _build(
        self,
        state: _ClientState,
        endpoint: Endpoint[Any, Any],
        body: Any,
        options: RequestOptions,
    ) -> tuple[str, Mapping[str, str], bytes, urllib3.Timeout]:
        """Everything to send, checked; raises before any byte goes out."""
        payload = endpoint.encode(body)
        url, headers = state.route(endpoint)
        if not options:
            return url, headers, payload, state.timeout
        unknown = options.keys() - _OPTION_NAMES
        if unknown:  # a misspelt option must not be silently ignored
            raise ApiTypeError(
                f"Got an unexpected keyword argument {min(unknown)!r} to method {endpoint.name}"
            )
        auth = options.get("_request_auth")
        # _request_auth replaces the configured auth: start from the headers without it.
        headers = dict(state.base_headers if auth is not None else headers)
        timeout = state.timeout
        if options.get("_request_timeout") is not None:
            timeout = to_timeout(options["_request_timeout"])
        host_index = options.get("_host_index")
        if host_index is not None:
            url = self.configuration.get_host_from_settings(host_index) + endpoint.path
        content_type = options.get("_content_type")
        if content_type is not None:
            if not isinstance(content_type, str):
                raise ApiTypeError(
                    f"_content_type must be a str, not {type(content_type).__name__}"
                )
            if not content_type.lower().startswith(_JSON):
                raise ApiValueError(
                    f"_content_type {content_type!r} is not supported; "
                    f"`{endpoint.name}` sends {_JSON}"
                )
            headers["Content-Type"] = content_type
        extra_headers = options.get("_headers") or {}
        if not isinstance(extra_headers, Mapping):
            raise ApiTypeError(f"_headers must be a mapping, not {type(extra_headers).__name__}")
        for name, value in extra_headers.items():
            check_header_value(name, value)
            headers[name] = value
        if auth is not None:
            url = _apply_auth(auth, headers, url)
        _refuse_insecure(state.allow_insecure_http, url, headers)
        return url, headers, payload, timeout

    def _send(
        self,
        state: _ClientState,
        method: str,
        url: str,
        headers: Mapping[str, str],
        payload: bytes,
        timeout: urllib3.Timeout,
        preload: bool,
    ) -> tuple[urllib3.BaseHTTPResponse, bytes, int]:
        """Send with retries; returns (answer, body if ``preload``, retries taken)."""
        policy = state.policy
        started = time.monotonic()
        deadline = started + (state.budget if timeout is state.timeout else timeout_budget(timeout))
        debug = logger.isEnabledFor(logging.DEBUG)
        attempt_timeout = timeout
        retries = 0
        while True:
            if debug:
                _log_request(method, url, headers, payload, retries)
            try:
                response = state.rest.send(method, url, headers, payload, attempt_timeout)
                data = read_body(response, state.max_bytes, deadline) if preload else b""
            except ApiConnectionError as error:
                wait = policy.backoff(retries + 1) if policy.retries_failure(error.kind) else None
                if not _may_retry(policy, retries, wait, deadline):
                    error.retries = retries
                    raise
                if debug:
                    logger.debug("attempt %d failed (%s); retrying", retries + 1, error.reason)
            else:
                if debug:
                    _log_response(response, data, started, state.token)
                if not policy.retries_status(response.status):
                    return response, data, retries
                wait = policy.wait_before_retry(retries + 1, response.headers)
                if not _may_retry(policy, retries, wait, deadline):
                    return response, data, retries
                if not preload:
                    discard(response)
            assert wait is not None
            time.sleep(wait)
            retries += 1
            left = deadline - time.monotonic()
            attempt_timeout = _clip(timeout, left)

    def _decode(
        self,
        state: _ClientState,
        endpoint: Endpoint[Any, ResponseT],
        response: urllib3.BaseHTTPResponse,
        data: bytes,
        retries: int,
    ) -> ApiResponse[ResponseT]:
        """The parsed answer for a 2xx; the matching ``ApiException`` for anything else."""
        status = response.status
        if 200 <= status < 300:
            content_type = response.headers.get("Content-Type")
            if content_type is not None and content_type != _JSON and not _is_json(content_type):
                raise _invalid_answer(
                    response, data, retries, state.token,
                    f"expected {_JSON}, got Content-Type {content_type!r}",
                )  # fmt: skip
            try:
                model = endpoint.decode(data)
            except ValidationError as error:
                raise _invalid_answer(
                    response, data, retries, state.token, _describe_invalid(endpoint, error)
                ) from None
            return ApiResponse(status, response.headers, model, data, retries)
        failure = ApiException.from_response(
            http_resp=response,
            body=_scrub(data.decode("utf-8", "replace"), state.token),
            headers={k: _scrub(v, state.token) for k, v in response.headers.items()},
        )
        failure.retries = retries
        raise failure

    def __repr__(self) -> str:
        return f"ApiClient(host={self.configuration.host!r})"


def _may_retry(policy: RetryPolicy, retries: int, wait: float | None, deadline: float) -> bool:
    """Another attempt is allowed by the count, wanted (``wait`` set) and fits before the deadline."""
    return wait is not None and retries < policy.max_retries and time.monotonic() + wait < deadline


def _clip(timeout: urllib3.Timeout, left: float) -> urllib3.Timeout:
    """The same timeouts, none longer than the time left to the deadline."""
    left = max(left, 0.001)
    connect, read = timeout.connect_timeout, timeout.read_timeout
    return urllib3.Timeout(
        connect=min(connect, left) if isinstance(connect, int | float) else left,
        read=min(read, left) if isinstance(read, int | float) else left,
    )


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == _JSON or media.endswith("+json")


def _describe_invalid(endpoint: Endpoint[Any, Any], error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False)[:5]:
        location = ".".join(str(p) for p in item["loc"]) or "(body)"
        problems.append(f"{location}: {item['msg']}")
    return f"answer is not a valid {endpoint.response_model.__name__}: " + "; ".join(problems)


def _invalid_answer(
    response: urllib3.BaseHTTPResponse, data: bytes, retries: int, token: str | None, reason: str
) -> ApiResponseValidationError:
    error = ApiResponseValidationError(
        status=response.status,
        reason=reason,
        body=_scrub(data.decode("utf-8", "replace"), token),
        headers={k: _scrub(v, token) for k, v in response.headers.items()},
    )
    error.retries = retries
    return error


def _scrub(text: str, token: str | None) -> str:
    """Remove the token from text a server sent back (some echo request headers in errors)."""
    return text.replace(token, "[REDACTED]") if token and token in text else text


def _apply_auth(auth: Mapping[str, str], headers: dict[str, str], url: str) -> str:
    if not isinstance(auth, Mapping):
        raise ApiTypeError(f"_request_auth must be a mapping, not {type(auth).__name__}")
    where, key, value = auth.get("in", "header"), auth.get("key"), auth.get("value")
    if not key or value is None:
        raise ApiValueError("_request_auth needs 'key' and 'value'")
    if where == "header":
        check_header_value(key, value)
        headers[key] = value
        return url
    if where == "cookie":
        check_header_value("Cookie", value)
        headers["Cookie"] = f"{key}={value}" if "=" not in value else value
        return url
    if where == "query":
        from urllib.parse import urlencode

        return url + ("&" if "?" in url else "?") + urlencode({key: value})
    raise ApiValueError(f"_request_auth 'in' must be header, cookie or query, not {where!r}")


def _refuse_insecure(allowed: bool, url: str, headers: Mapping[str, str]) -> None:
    """Refuse to send credentials in clear text beyond this machine, unless the user opted in."""
    if allowed or not url.startswith("http://"):
        return
    if "Authorization" not in headers and "Cookie" not in headers and "?" not in url:
        return
    host = urllib3.util.parse_url(url).host or ""
    if _is_loopback(host):
        return
    raise ApiValueError(
        f"Refusing to send the bearer token over plain http:// to {host!r}: use https://, "
        "or set Configuration.allow_insecure_http = True if this network is trusted"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _log_request(
    method: str, url: str, headers: Mapping[str, str], payload: bytes, retries: int
) -> None:
    logger.debug(
        "HTTP request (attempt %d): %s %s headers=%s body=%s",
        retries + 1, method, url, redact_headers(headers), payload.decode("utf-8", "replace"),
    )  # fmt: skip


def _log_response(
    response: urllib3.BaseHTTPResponse, data: bytes, started: float, token: str | None
) -> None:
    # A server may echo the token back (in an error message or a header): scrub it here too.
    headers = {k: _scrub(v, token) for k, v in redact_headers(response.headers).items()}
    body = _scrub(data[: 2048 + len(token or "")].decode("utf-8", "replace"), token)[:2048]
    logger.debug(
        "HTTP response: %d %s after %.1f ms headers=%s body=%s",
        response.status, response.reason, (time.monotonic() - started) * 1000, headers, body,
    )  # fmt: skip
