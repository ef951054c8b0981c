"""The default transport: urllib3 pools of connections that keep each call's deadline.

``ApiException``, ``RESTResponse`` and ``RESTResponseType`` are importable from here, as
generated clients (and the API docs) import them.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3

from openapi_client import _connections
from openapi_client._connections import TRANSPORT_ERRORS, transport_error
from openapi_client._fork import after_fork_in_child
from openapi_client.exceptions import ApiException
from openapi_client.transport import (
    HttpRequest,
    RESTResponse,
    RESTResponseType,
    Transport,
    discard,
    read_body,
)
from openapi_client.validation import timeout_budget, to_timeout

__all__ = [
    "ApiException",
    "HttpRequest",
    "PoolSettings",
    "RESTClientObject",
    "RESTResponse",
    "RESTResponseType",
    "Transport",
    "discard",
    "read_body",
    "transport_error",
]

_NO_RETRY = urllib3.Retry(total=False, redirect=False)
"""urllib3 must not retry (``ApiClient`` does); built once, as ``retries=False`` builds one per call."""
_DEFAULT = urllib3.Timeout(connect=5.0, read=10.0)


@dataclass(frozen=True)
class PoolSettings:
    """Everything that shapes the connection pool; equal settings share a pool."""

    verify_ssl: bool = True
    ssl_ca_cert: str | None = None
    ca_cert_data: str | bytes | None = None
    cert_file: str | None = None
    key_file: str | None = None
    assert_hostname: str | bool | None = None
    tls_server_name: str | None = None
    proxy: str | None = None
    proxy_headers: tuple[tuple[str, str], ...] = ()
    maxsize: int = 10
    socket_options: tuple[tuple[int, int, int | bytes], ...] | None = None

    def pool_arguments(self) -> dict[str, Any]:
        """Keyword arguments for urllib3's pool managers."""
        args: dict[str, Any] = {
            "num_pools": 4,
            "maxsize": self.maxsize,
            "cert_reqs": ssl.CERT_REQUIRED if self.verify_ssl else ssl.CERT_NONE,
            "ca_certs": self.ssl_ca_cert,
            "ca_cert_data": self.ca_cert_data,
            "cert_file": self.cert_file,
            "key_file": self.key_file,
            "retries": False,
        }
        if self.assert_hostname is not None:
            args["assert_hostname"] = self.assert_hostname
        if self.tls_server_name:
            args["server_hostname"] = self.tls_server_name
        if self.socket_options is not None:
            args["socket_options"] = list(self.socket_options)
        return args


class _HasPoolSettings(Protocol):
    @property
    def pool_settings(self) -> PoolSettings: ...


_Opener = urllib3.PoolManager | urllib3.HTTPConnectionPool


class RESTClientObject:
    """The default ``Transport``: a urllib3 pool manager, safe to share between threads."""

    def __init__(self, settings: PoolSettings | _HasPoolSettings) -> None:
        self.settings = settings if isinstance(settings, PoolSettings) else settings.pool_settings
        self._routes: dict[str, tuple[_Opener, str]] = {}
        self.pool_manager = self._new_manager()
        after_fork_in_child(self, RESTClientObject._forget_inherited_connections)

    def _new_manager(self) -> urllib3.PoolManager:
        settings = self.settings
        manager: urllib3.PoolManager
        if settings.proxy:
            manager = urllib3.ProxyManager(
                proxy_url=settings.proxy,
                proxy_headers=dict(settings.proxy_headers),
                **settings.pool_arguments(),
            )
        else:
            manager = urllib3.PoolManager(**settings.pool_arguments())
        manager.pool_classes_by_scheme = _connections.POOL_CLASSES
        return manager

    def send(self, request: HttpRequest, deadline: float) -> RESTResponse:
        """One attempt: send, then read the response (unless ``request.stream``) by ``deadline``."""
        timeout = _attempt_timeout(request.timeout, deadline)
        opener, target = self._route(request.url)
        exchange = _connections.begin(deadline)
        try:
            response = opener.urlopen(
                request.method,
                target,
                body=request.body,
                headers=request.headers,
                timeout=timeout,
                retries=_NO_RETRY,
                redirect=False,
                preload_content=False,
                assert_same_host=False,
            )
        except TRANSPORT_ERRORS as error:
            failure = transport_error(error, exchange, request)
        else:
            if request.stream:  # the body is read later, still within the deadline
                return RESTResponse(response, None, request, exchange)
            data = read_body(response, request.max_bytes, request)
            return RESTResponse(response, data, request, exchange)
        finally:
            _connections.end()
        raise failure  # outside the except block: no chained urllib3 error to leak secrets

    def _route(self, url: str) -> tuple[_Opener, str]:
        """Who sends to ``url`` and what it is given: the host's pool and the path, found once.

        Through a proxy the pool manager keeps the whole URL (it must, for plain http).
        """
        route = self._routes.get(url)
        if route is not None and getattr(route[0], "pool", True) is not None:
            return route
        if self.settings.proxy:
            route = (self.pool_manager, url)
        else:
            pool = self.pool_manager.connection_from_url(url)
            route = (pool, urllib3.util.parse_url(url).request_uri)
        if len(self._routes) < 64:  # bounded: query-string auth makes URLs vary
            self._routes[url] = route
        return route

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        post_params: Any = None,
        _request_timeout: Any = None,
        *,
        max_bytes: int = 1 << 30,
    ) -> RESTResponse:
        """One complete attempt, body included (openapi-generator's entry point)."""
        timeout = (
            to_timeout(_request_timeout, "_request_timeout")
            if _request_timeout is not None
            else _DEFAULT
        )
        payload = body.encode() if isinstance(body, str) else body
        budget = timeout_budget(timeout)
        request = HttpRequest(method, url, headers or {}, payload, timeout, budget, max_bytes)
        return self.send(request, time.monotonic() + budget)

    def close(self) -> None:
        """Close every pooled connection (in-flight ones are closed when released)."""
        self._routes.clear()
        pools = self.pool_manager.pools
        held = [pools.get(key) for key in pools.keys()]  # noqa: SIM118 - it has no __iter__
        self.pool_manager.clear()  # urllib3 drops its pools without closing them
        for pool in held:
            if pool is not None:
                pool.close()

    def __del__(self) -> None:
        # A transport replaced after a configuration change is dropped, not closed, so that
        # calls still using it finish; the last of them to let go closes its connections here.
        with contextlib.suppress(Exception):  # never raise from a finaliser (interpreter exit)
            self.close()

    def _forget_inherited_connections(self) -> None:
        """In a forked child: never touch the parent's connections (or locks); start afresh."""
        for pool in list(getattr(self.pool_manager.pools, "_container", {}).values()):
            idle = getattr(getattr(pool, "pool", None), "queue", ())
            for conn in list(idle):
                sock = getattr(conn, "sock", None)
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()  # the child's copy of the descriptor; no FIN is sent
        self._routes = {}
        self.pool_manager = self._new_manager()


def _attempt_timeout(timeout: urllib3.Timeout, deadline: float) -> urllib3.Timeout:
    """The attempt's timeouts, none longer than the time left (the deadline bounds the rest)."""
    left = deadline - time.monotonic()
    connect = timeout.connect_timeout
    total = timeout.total  # with a total, urllib3 works the read timeout out as it goes
    read = total if isinstance(total, int | float) else timeout.read_timeout
    numbers = isinstance(connect, int | float) and isinstance(read, int | float)
    if numbers and left >= connect and left >= read:  # type: ignore[operator]
        return timeout
    left = max(left, 0.001)
    return urllib3.Timeout(
        connect=min(connect, left) if isinstance(connect, int | float) else left,
        read=min(read, left) if isinstance(read, int | float) else left,
    )
