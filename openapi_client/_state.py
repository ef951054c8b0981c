"""What a client derives from its Configuration, built once per change of it and swapped whole:
the host, the retry policy, the timeouts, and per operation its URL, headers and secrets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import urllib3

from openapi_client._requests import (
    refuse_insecure,
    refuse_without_credentials,
    secrets_of,
)
from openapi_client.endpoint import Endpoint
from openapi_client.retries import RetryPolicy
from openapi_client.transport import Transport
from openapi_client.validation import merge_headers, timeout_budget

if TYPE_CHECKING:
    from openapi_client.configuration import Configuration

_JSON = "application/json"


class ClientState:
    """What a client derives from its Configuration; immutable once built, swapped whole."""

    __slots__ = (
        "allow_insecure_http", "auth", "base_headers", "budget", "generation", "host",
        "max_bytes", "policy", "proxy_secrets", "routes", "timeout", "transport",
    )  # fmt: skip

    def __init__(
        self, config: Configuration, transport: Transport, default_headers: Mapping[str, str]
    ) -> None:
        self.generation = config._generation
        self.transport = transport
        self.host = config.host
        self.auth = config.auth_settings()
        self.allow_insecure_http = config.allow_insecure_http
        self.timeout: urllib3.Timeout = config.timeout
        self.budget = timeout_budget(self.timeout)
        self.policy: RetryPolicy = config.retries
        self.max_bytes: int = config.max_response_bytes
        self.proxy_secrets = secrets_of(config.proxy_headers or {})
        """Sent to the proxy, not in the request's headers, but removed from responses all the same."""
        self.base_headers = {"Accept": _JSON, "Content-Type": _JSON}
        merge_headers(self.base_headers, default_headers)
        self.routes: dict[Endpoint[Any, Any], tuple[str, dict[str, str], tuple[str, ...]]] = {}

    def route(self, endpoint: Endpoint[Any, Any]) -> tuple[str, dict[str, str], tuple[str, ...]]:
        """The URL, headers (with the endpoint's auth) and secrets of an operation, built once."""
        route = self.routes.get(endpoint)
        if route is None:
            headers = dict(self.base_headers)
            merge_headers(headers, self.auth_headers(endpoint))
            url = self.host + endpoint.path
            secrets = secrets_of(headers)
            if endpoint.auth:
                refuse_without_credentials(endpoint.name, secrets)
            refuse_insecure(self.allow_insecure_http, url, secrets)
            route = self.routes[endpoint] = (url, headers, secrets + self.proxy_secrets)
        return route

    def auth_headers(self, endpoint: Endpoint[Any, Any]) -> dict[str, str]:
        found = (self.auth.get(name) for name in endpoint.auth)
        return {setting["key"]: setting["value"] for setting in found if setting is not None}
