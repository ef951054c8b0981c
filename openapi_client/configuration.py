"""Settings of a client: where to send, how to authenticate, TLS, proxy, pool, timeouts, retries, logging.

Each setting is declared once, below, with the check that normalises it; a bad value raises
``ApiTypeError``/``ApiValueError`` naming the setting, when it is set. Every change bumps a
counter that ``ApiClient`` compares on each call, so a setting changed after the client was
made is honoured on its next call.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypedDict

import urllib3

from openapi_client import _logs
from openapi_client._redaction import strip_userinfo
from openapi_client._settings import (
    Setting,
    SocketOption,
    SocketOptions,
    check_bool,
    check_cert_data,
    check_existing_path,
    check_hostname,
    check_index,
    check_log_format,
    check_positive_int,
    check_retries,
    check_socket_options,
    check_string_map,
    check_text,
    check_timeout,
    check_token,
    check_writable_path,
    optional,
)
from openapi_client._version import __version__
from openapi_client.exceptions import ApiAttributeError, ApiTypeError, ApiValueError
from openapi_client.rest import PoolSettings
from openapi_client.retries import RetryPolicy
from openapi_client.validation import TimeoutSetting, check_headers, check_url

DEFAULT_HOST = "https://api.engine.tech"
HOST_ENV_VAR = "ENGINE_API_HOST"
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_TIMEOUT = urllib3.Timeout(connect=DEFAULT_CONNECT_TIMEOUT, read=DEFAULT_READ_TIMEOUT)
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
DEFAULT_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
RetriesSetting = RetryPolicy | int | bool | urllib3.Retry | None
PathSetting = str | os.PathLike[str] | None


class HostVariable(TypedDict):
    description: str
    default_value: str
    enum_values: list[str]


class HostSetting(TypedDict):
    url: str
    description: str
    variables: dict[str, HostVariable]


def _server_in_list(config: Configuration, index: int | None) -> None:
    if index is not None:
        count = len(config.get_host_settings())
        if index >= count:
            raise ApiValueError(
                f"server_index must be less than {count} (the servers listed), got {index}"
            )


# -- reactions to changes of the logging settings -------------------------------------------


def _debug_changed(config: Configuration, old: bool | None, new: bool) -> None:
    if bool(old) == new:
        return
    if new:
        _logs.enable_debug(config._values.get("logger_format", DEFAULT_LOG_FORMAT))
        config._finalizers["debug"] = weakref.finalize(config, _logs.disable_debug)
    else:
        config._finalizers.pop("debug").detach()
        _logs.disable_debug()


def _logger_file_changed(config: Configuration, old: str | None, new: str | None) -> None:
    if old == new:
        return
    if old:
        config._finalizers.pop("logger_file").detach()
        _logs.close_log_file(old)
    if new:
        _logs.open_log_file(new, config._values.get("logger_format", DEFAULT_LOG_FORMAT))
        config._finalizers["logger_file"] = weakref.finalize(config, _logs.close_log_file, new)


def _host_or_fallback(config: Configuration, explicit: str | None) -> str:
    """The explicit ``host``, else ``$ENGINE_API_HOST``, else the server list."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(HOST_ENV_VAR)
    if from_env and config.server_index is None:
        return check_url(HOST_ENV_VAR, from_env)
    return config.get_host_from_settings(config.server_index, config.server_variables)


class Configuration:
    """Settings shared by the clients made from it. See README, "Configuration"."""

    _default: ClassVar[Configuration | None] = None

    # The settings, in the order they are applied (the log format before the log handlers).
    host: Setting[str, str | None] = Setting(optional(check_url), None, read=_host_or_fallback)
    """Base URL of the API: this, else ``$ENGINE_API_HOST``, else the server list; reads as a str."""
    access_token: Setting[str | None, str | None] = Setting(optional(check_token), None)
    server_index: Setting[int | None, int | None] = Setting(
        optional(check_index), None, check_in_context=_server_in_list
    )
    server_variables: Setting[dict[str, str], Mapping[str, str]] = Setting(check_string_map, {})
    verify_ssl: Setting[bool, bool] = Setting(check_bool, True)
    ssl_ca_cert: Setting[str | None, PathSetting] = Setting(optional(check_existing_path), None)
    ca_cert_data: Setting[str | bytes | None, str | bytes | None] = Setting(
        optional(check_cert_data), None
    )
    cert_file: Setting[str | None, PathSetting] = Setting(optional(check_existing_path), None)
    key_file: Setting[str | None, PathSetting] = Setting(optional(check_existing_path), None)
    assert_hostname: Setting[str | bool | None, str | bool | None] = Setting(
        optional(check_hostname), None
    )
    tls_server_name: Setting[str | None, str | None] = Setting(optional(check_text), None)
    proxy: Setting[str | None, str | None] = Setting(optional(check_url), None)
    proxy_headers: Setting[dict[str, str] | None, Mapping[str, str] | None] = Setting(
        optional(check_headers), None
    )
    connection_pool_maxsize: Setting[int, int] = Setting(check_positive_int, 10)
    retries: Setting[RetryPolicy, RetriesSetting] = Setting(check_retries, None)
    timeout: Setting[urllib3.Timeout, TimeoutSetting] = Setting(check_timeout, DEFAULT_TIMEOUT)
    max_response_bytes: Setting[int, int] = Setting(check_positive_int, DEFAULT_MAX_RESPONSE_BYTES)
    allow_insecure_http: Setting[bool, bool] = Setting(check_bool, False)
    socket_options: Setting[SocketOptions | None, Sequence[SocketOption] | None] = Setting(
        optional(check_socket_options), None
    )
    logger_format: Setting[str, str] = Setting(check_log_format, DEFAULT_LOG_FORMAT)
    debug: Setting[bool, bool] = Setting(check_bool, False, on_change=_debug_changed)
    logger_file: Setting[str | None, PathSetting] = Setting(
        optional(check_writable_path), None, on_change=_logger_file_changed
    )

    _values: dict[str, Any]
    _generation: int
    _finalizers: dict[str, weakref.finalize[Any, Any]]

    def __init__(
        self,
        host: str | None = None,
        access_token: str | None = None,
        *,
        server_index: int | None = None,
        server_variables: Mapping[str, str] | None = None,
        verify_ssl: bool = True,
        ssl_ca_cert: PathSetting = None,
        ca_cert_data: str | bytes | None = None,
        cert_file: PathSetting = None,
        key_file: PathSetting = None,
        assert_hostname: str | bool | None = None,
        tls_server_name: str | None = None,
        proxy: str | None = None,
        proxy_headers: Mapping[str, str] | None = None,
        connection_pool_maxsize: int = 10,
        retries: RetriesSetting = None,
        timeout: TimeoutSetting = DEFAULT_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        allow_insecure_http: bool = False,
        socket_options: Sequence[SocketOption] | None = None,
        debug: bool = False,
        logger_file: PathSetting = None,
        logger_format: str = DEFAULT_LOG_FORMAT,
    ) -> None:
        given = dict(locals())
        if server_variables is None:
            given["server_variables"] = {}
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_generation", 0)
        object.__setattr__(self, "_finalizers", {})
        for name in _SETTING_NAMES:
            setattr(self, name, given[name])

    def __setattr__(self, name: str, value: Any) -> None:
        """Refuse unknown settings (a typo would otherwise be ignored); the rest check themselves.

        Subclasses may add attributes of their own."""
        if (
            type(self) is Configuration
            and not name.startswith("_")
            and not hasattr(Configuration, name)
        ):
            import difflib  # only for this mistake's message

            close = difflib.get_close_matches(name, _PUBLIC_NAMES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ApiAttributeError(f"Configuration has no setting {name!r}{hint}")
        object.__setattr__(self, name, value)

    # -- hosts -------------------------------------------------------------------------------

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

    # -- what the layers below take ----------------------------------------------------------

    @property
    def pool_settings(self) -> PoolSettings:
        """The settings that shape the connection pool, as one comparable value."""
        return PoolSettings(
            verify_ssl=self.verify_ssl,
            ssl_ca_cert=self.ssl_ca_cert,
            ca_cert_data=self.ca_cert_data,
            cert_file=self.cert_file,
            key_file=self.key_file,
            assert_hostname=self.assert_hostname,
            tls_server_name=self.tls_server_name,
            proxy=self.proxy,
            proxy_headers=tuple((self.proxy_headers or {}).items()),
            maxsize=self.connection_pool_maxsize,
            socket_options=self.socket_options,
        )

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

    @property
    def logger(self) -> dict[str, logging.Logger]:
        """The loggers ``debug`` turns up (as generated clients name them)."""
        return {
            "package_logger": logging.getLogger(_logs.LOGGER_NAME),
            "urllib3_logger": logging.getLogger("urllib3"),
        }

    # -- defaults and copies -----------------------------------------------------------------

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

    def __copy__(self) -> Configuration:
        duplicate = type(self).__new__(type(self))
        object.__setattr__(duplicate, "_values", {})
        object.__setattr__(duplicate, "_generation", 0)
        object.__setattr__(duplicate, "_finalizers", {})
        for name in _SETTING_NAMES:
            setattr(duplicate, name, self._values[name])
        return duplicate

    def __deepcopy__(self, memo: dict[int, Any]) -> Configuration:
        return self.__copy__()  # every stored value is immutable or copied by its check

    # -- reports -----------------------------------------------------------------------------

    def to_debug_report(self) -> str:
        """Facts to paste into a bug report; never includes the token or a password."""
        import importlib.metadata
        import platform

        return (
            "Python SDK Debug Report:\n"
            f"OS: {sys.platform}\n"
            f"Python Version: {platform.python_version()}\n"
            "Version of the API: 1.58.0\n"
            f"SDK Package Version: {__version__}\n"
            f"urllib3 Version: {importlib.metadata.version('urllib3')}\n"
            f"Host: {strip_userinfo(self.host)}\n"
            f"Access token: {'set' if self.access_token else 'not set'}"
        )

    def __repr__(self) -> str:
        token = "'***'" if self.access_token else "None"
        proxy = strip_userinfo(self.proxy) if self.proxy else None
        return (
            f"Configuration(host={strip_userinfo(self.host)!r}, access_token={token}, "
            f"timeout={self.timeout!r}, retries={self.retries!r}, "
            f"verify_ssl={self.verify_ssl!r}, proxy={proxy!r})"
        )


_SETTING_NAMES = [name for name, value in vars(Configuration).items() if isinstance(value, Setting)]
_PUBLIC_NAMES = [*_SETTING_NAMES, "logger"]
