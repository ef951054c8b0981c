"""Settings of a client: where to send, how to authenticate, TLS, proxy, pool, timeouts, retries, logging.

Values are checked and normalised when set, so the request path never re-checks them. Every
change bumps a counter that ``ApiClient`` compares on each call, so a setting changed after the
client was made is still honoured.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import sys
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, ClassVar, TypedDict

import urllib3

from openapi_client._logs import LOGGER_NAME, attach_redaction
from openapi_client._version import __version__
from openapi_client.exceptions import ApiTypeError, ApiValueError
from openapi_client.retries import RetryPolicy

DEFAULT_HOST = "https://api.engine.tech"
HOST_ENV_VAR = "ENGINE_API_HOST"
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_TIMEOUT = urllib3.Timeout(connect=DEFAULT_CONNECT_TIMEOUT, read=DEFAULT_READ_TIMEOUT)
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
MAX_TIMEOUT_SECONDS = 1e9
"""Longer timeouts overflow the socket layer (and mean "never"; 1e9 s is 31 years)."""

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
TimeoutSetting = float | int | tuple[float, float] | urllib3.Timeout | None


class HostVariable(TypedDict):
    description: str
    default_value: str
    enum_values: list[str]


class HostSetting(TypedDict):
    url: str
    description: str
    variables: dict[str, HostVariable]


@lru_cache(maxsize=64)
def _timeout_from_hashable(value: float | tuple[float, float]) -> urllib3.Timeout:
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ApiValueError("timeout: a tuple must be (connect, read)")
        connect, read = value
        return urllib3.Timeout(connect=_seconds(connect), read=_seconds(read))
    seconds = _seconds(value)
    return urllib3.Timeout(connect=seconds, read=seconds)


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiTypeError(f"timeout: expected seconds as a number, got {type(value).__name__}")
    if not 0 < value <= MAX_TIMEOUT_SECONDS:  # also refuses NaN, inf and ints beyond float
        raise ApiValueError(
            f"timeout: must be a positive number of seconds up to {MAX_TIMEOUT_SECONDS:g}"
        )
    return float(value)


def to_timeout(value: TimeoutSetting) -> urllib3.Timeout:
    """One number (connect and read each), a (connect, read) pair, or a ``urllib3.Timeout``."""
    if isinstance(value, urllib3.Timeout):
        return value
    if value is None:
        raise ApiValueError("timeout: None would wait forever; give seconds")
    if isinstance(value, list):
        value = tuple(value)
    try:
        hash(value)
    except TypeError:  # a dict, a set, a pair holding a list: not seconds
        raise ApiTypeError(f"timeout: expected seconds, got {type(value).__name__}") from None
    return _timeout_from_hashable(value)


def timeout_budget(timeout: urllib3.Timeout) -> float:
    """The longest a whole call (all attempts and waits) may take under these timeouts."""
    if isinstance(timeout.total, int | float):
        return float(timeout.total)
    parts = [
        t for t in (timeout.connect_timeout, timeout.read_timeout) if isinstance(t, int | float)
    ]
    return float(sum(parts)) if parts else float("inf")


def check_header_value(name: str, value: str) -> None:
    """Refuse headers that could split a request (CR, LF, NUL), break its framing, or that
    HTTP cannot carry (a name that is not a token, a value that is not Latin-1)."""
    for text, what in ((name, "name"), (value, "value")):
        if not isinstance(text, str):
            raise ApiTypeError(f"header {name!r}: {what} must be a str, got {type(text).__name__}")
        if "\r" in text or "\n" in text or "\0" in text:
            raise ApiValueError(f"header {name!r}: {what} must not contain CR, LF or NUL")
    if not _HEADER_NAME.fullmatch(name):
        raise ApiValueError(f"header {name!r}: name must be an HTTP token such as 'X-Trace-Id'")
    if name.lower() in ("content-length", "transfer-encoding"):
        raise ApiValueError(f"header {name!r}: the SDK sets it from the body")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ApiValueError(f"header {name!r}: value must be Latin-1 text") from None


class Configuration:
    """Settings shared by the clients made from it. See README, "Configuration"."""

    _default: ClassVar[Configuration | None] = None
    _generation: int

    def __init__(
        self,
        host: str | None = None,
        access_token: str | None = None,
        *,
        server_index: int | None = None,
        server_variables: Mapping[str, str] | None = None,
        verify_ssl: bool = True,
        ssl_ca_cert: str | None = None,
        ca_cert_data: str | bytes | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        assert_hostname: str | bool | None = None,
        tls_server_name: str | None = None,
        proxy: str | None = None,
        proxy_headers: Mapping[str, str] | None = None,
        connection_pool_maxsize: int = 10,
        retries: object = None,
        timeout: TimeoutSetting = DEFAULT_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        allow_insecure_http: bool = False,
        socket_options: list[tuple[int, int, int | bytes]] | None = None,
        debug: bool = False,
        logger_file: str | None = None,
        logger_format: str = "%(asctime)s %(levelname)s %(name)s: %(message)s",
    ) -> None:
        object.__setattr__(self, "_generation", 0)
        self._host: str | None = None
        self.server_index = server_index
        self.server_variables = dict(server_variables or {})
        if host is not None:
            self.host = host
        self.access_token = access_token
        self.verify_ssl = verify_ssl
        self.ssl_ca_cert = ssl_ca_cert
        self.ca_cert_data = ca_cert_data
        self.cert_file = cert_file
        self.key_file = key_file
        self.assert_hostname = assert_hostname
        self.tls_server_name = tls_server_name
        self.proxy = proxy
        self.proxy_headers = proxy_headers
        self.connection_pool_maxsize = connection_pool_maxsize
        self.retries = retries
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.allow_insecure_http = allow_insecure_http
        self.socket_options = socket_options
        self.logger_format = logger_format
        self.logger: dict[str, logging.Logger] = {
            "package_logger": logging.getLogger(LOGGER_NAME),
            "urllib3_logger": logging.getLogger("urllib3"),
        }
        self._logger_file: str | None = None
        self._file_handler: logging.Handler | None = None
        self._stream_handler: logging.Handler | None = None
        self._debug = False
        self._saved_levels: dict[str, int] = {}
        self.logger_file = logger_file
        self.debug = debug

    def __setattr__(self, name: str, value: Any) -> None:
        """Check the value, store it, and tell clients that settings changed."""
        checker = _CHECKS.get(name)
        if checker is not None:
            value = checker(value)
        object.__setattr__(self, name, value)
        object.__setattr__(self, "_generation", self._generation + 1)

    @property
    def timeout(self) -> urllib3.Timeout:
        """Default timeouts of every call (connect 5 s, read 10 s); a call never runs past their sum."""
        return self._timeout

    @timeout.setter
    def timeout(self, value: TimeoutSetting) -> None:
        self._timeout = to_timeout(value)

    @property
    def retries(self) -> RetryPolicy:
        """The retry policy; set None (defaults), 0 (off), an int, a RetryPolicy or a urllib3.Retry."""
        return self._retries

    @retries.setter
    def retries(self, value: object) -> None:
        self._retries = RetryPolicy.from_setting(value)

    # -- hosts -------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """Base URL of the API: the explicit ``host``, else ``$ENGINE_API_HOST``, else the server list."""
        if self._host is not None:
            return self._host
        from_env = os.environ.get(HOST_ENV_VAR)
        if from_env and self.server_index is None:
            return _check_host(from_env)
        return self.get_host_from_settings(self.server_index, self.server_variables)

    @host.setter
    def host(self, value: str) -> None:
        self._host = _check_host(value)

    def get_host_settings(self) -> list[HostSetting]:
        """The servers this API is published on."""
        return [{"url": DEFAULT_HOST, "description": "Engine by MoneyLion API", "variables": {}}]

    def get_host_from_settings(
        self,
        index: int | None,
        variables: Mapping[str, str] | None = None,
        servers: list[HostSetting] | None = None,
    ) -> str:
        """The URL of server ``index`` (None: the first), with its variables filled in."""
        if index is None:
            index = 0
        if isinstance(index, bool) or not isinstance(index, int):
            raise ApiTypeError(f"host index must be an int, got {type(index).__name__}")
        servers = servers if servers is not None else self.get_host_settings()
        if not 0 <= index < len(servers):
            raise ApiValueError(
                f"Invalid host index {index}: must be at least 0 and less than {len(servers)}"
            )
        server = servers[index]
        url = server["url"]
        variables = variables or {}
        for name, spec in server["variables"].items():
            value = variables.get(name, spec["default_value"])
            if spec["enum_values"] and value not in spec["enum_values"]:
                raise ApiValueError(
                    f"Variable {name!r} is {value!r}; it must be one of {spec['enum_values']}"
                )
            url = url.replace("{" + name + "}", value)
        return url

    # -- auth --------------------------------------------------------------------------------

    def auth_settings(self) -> dict[str, dict[str, str]]:
        """The authentication to apply to calls: the publishable bearer token, when one is set."""
        if self.access_token is None:
            return {}
        return {
            "publishableBearerToken": {
                "type": "bearer",
                "in": "header",
                "key": "Authorization",
                "value": "Bearer " + self.access_token,
            }
        }

    # -- logging -----------------------------------------------------------------------------

    @property
    def debug(self) -> bool:
        """Log each request and answer at DEBUG through ``logging`` (token redacted; never stdout)."""
        return self._debug

    @debug.setter
    def debug(self, value: bool) -> None:
        value = bool(value)
        if value == self._debug:
            return
        self._debug = value
        package_logger = self.logger["package_logger"]
        if value:  # remember the levels the application chose, to give them back later
            self._saved_levels = {name: log.level for name, log in self.logger.items()}
            for log in self.logger.values():
                log.setLevel(logging.DEBUG)
            if not _has_handler(package_logger):
                handler = logging.StreamHandler(sys.stderr)
                handler.setFormatter(logging.Formatter(self.logger_format))
                attach_redaction(handler)
                package_logger.addHandler(handler)
                self._stream_handler = handler
            return
        for name, log in self.logger.items():
            log.setLevel(self._saved_levels.get(name, logging.NOTSET))
        if self._stream_handler is not None:
            package_logger.removeHandler(self._stream_handler)
            self._stream_handler = None

    @property
    def logger_file(self) -> str | None:
        """Also write the package's log records to this file (token redacted)."""
        return self._logger_file

    @logger_file.setter
    def logger_file(self, value: str | None) -> None:
        package_logger = self.logger["package_logger"]
        if self._file_handler is not None:
            package_logger.removeHandler(self._file_handler)
            self._file_handler.close()
            self._file_handler = None
        self._logger_file = value
        if value:
            handler = logging.FileHandler(value)
            handler.setFormatter(logging.Formatter(self.logger_format))
            attach_redaction(handler)
            package_logger.addHandler(handler)
            self._file_handler = handler

    # -- defaults ----------------------------------------------------------------------------

    @classmethod
    def set_default(cls, default: Configuration | None) -> None:
        """Make ``default`` the configuration of clients created without one."""
        cls._default = default

    @classmethod
    def get_default(cls) -> Configuration:
        """The default configuration (created on first use)."""
        if cls._default is None:
            cls._default = Configuration()
        return cls._default

    @classmethod
    def get_default_copy(cls) -> Configuration:
        """A copy of the default configuration, to change without touching the default."""
        return copy.copy(cls.get_default())

    # -- reports -----------------------------------------------------------------------------

    def to_debug_report(self) -> str:
        """Facts to paste into a bug report; never includes the token."""
        import importlib.metadata
        import platform

        return (
            "Python SDK Debug Report:\n"
            f"OS: {sys.platform}\n"
            f"Python Version: {platform.python_version()}\n"
            "Version of the API: 1.58.0\n"
            f"SDK Package Version: {__version__}\n"
            f"urllib3 Version: {importlib.metadata.version('urllib3')}\n"
            f"Host: {self.host}\n"
            f"Access token: {'set' if self.access_token else 'not set'}"
        )

    def __repr__(self) -> str:
        token = "'***'" if self.access_token else "None"
        return (
            f"Configuration(host={self.host!r}, access_token={token}, timeout={self.timeout!r}, "
            f"retries={self.retries!r}, verify_ssl={self.verify_ssl!r}, proxy={_redact_url(self.proxy)!r})"
        )


def _has_handler(logger: logging.Logger) -> bool:
    current: logging.Logger | None = logger
    while current is not None:
        if current.handlers:
            return True
        current = current.parent if current.propagate else None
    return False


def _redact_url(url: str | None) -> str | None:
    """Hide a password in ``scheme://user:password@host`` (proxies often carry one)."""
    if not url or "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    credentials, _, hostpart = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}"


def _check_host(value: object) -> str:
    if not isinstance(value, str):
        raise ApiTypeError(f"host must be a str URL, got {type(value).__name__}")
    try:
        parsed = urllib3.util.parse_url(value)
    except urllib3.exceptions.LocationParseError:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ApiValueError(f"host must be an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def _check_token(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiTypeError(f"access_token must be a str, got {type(value).__name__}")
    if any(c in value for c in "\r\n\0") or value != value.strip():
        raise ApiValueError("access_token must not contain whitespace at its ends, CR, LF or NUL")
    return value


def _check_positive_int(name: str) -> Any:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiTypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ApiValueError(f"{name} must be >= 1, got {value}")
        return value

    return check


def _check_headers(value: Mapping[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ApiTypeError(f"proxy_headers must be a mapping, got {type(value).__name__}")
    for name, header_value in value.items():
        check_header_value(name, header_value)
    return dict(value)


_CHECKS: dict[str, Any] = {
    "access_token": _check_token,
    "connection_pool_maxsize": _check_positive_int("connection_pool_maxsize"),
    "max_response_bytes": _check_positive_int("max_response_bytes"),
    "proxy_headers": _check_headers,
    "proxy": lambda v: None if v is None else _check_host(v),
}
