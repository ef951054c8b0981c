"""What a call sends: the credentials it carries, found and applied, and the checks that refuse a
request before a byte goes out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import urllib3

from openapi_client._redaction import header_secrets
from openapi_client.endpoint import Endpoint
from openapi_client.exceptions import ApiTypeError, ApiValueError
from openapi_client.validation import check_header, is_loopback, merge_headers

_JSON = "application/json"


def secrets_of(headers: Mapping[str, str]) -> tuple[str, ...]:
    """Every credential among request headers (Authorization, Cookie… in any case)."""
    found: tuple[str, ...] = ()
    for name, value in headers.items():
        found += header_secrets(name, value)
    return found


def apply_auth(auth: Mapping[str, str], headers: dict[str, str], url: str) -> tuple[str, str]:
    """Add per-call auth to the headers or the URL; returns (url, the secret it carries)."""
    if not isinstance(auth, Mapping):
        raise ApiTypeError(f"_request_auth must be a mapping, not {type(auth).__name__}")
    where, key, value = auth.get("in", "header"), auth.get("key"), auth.get("value")
    if not isinstance(key, str) or not key or not isinstance(value, str):
        raise ApiValueError("_request_auth needs 'key' and 'value' as strings")
    if where == "header":
        check_header(key, value)
        merge_headers(headers, {key: value})
        return url, value
    if where == "cookie":
        cookie = f"{key}={value}"
        check_header("Cookie", cookie)
        merge_headers(headers, {"Cookie": cookie})
        return url, value
    if where == "query":
        from urllib.parse import urlencode

        return url + ("&" if "?" in url else "?") + urlencode({key: value}), value
    raise ApiValueError(f"_request_auth 'in' must be header, cookie or query, not {where!r}")


def refuse_without_credentials(operation: str, secrets: tuple[str, ...]) -> None:
    """A call that needs auth and carries no credential at all would only earn a 401."""
    if not secrets:
        raise ApiValueError(
            f"`{operation}` needs the publishable bearer token: set "
            "Configuration(access_token=...) (or $BEARER_TOKEN in the CLI), or pass "
            "_request_auth for this call"
        )


def refuse_insecure(allowed: bool, url: str, secrets: tuple[str, ...]) -> None:
    """Refuse to send any credential in clear text beyond this machine, unless the user opted in."""
    if allowed or not secrets or not url.startswith("http://"):
        return
    host = urllib3.util.parse_url(url).host or ""
    if is_loopback(host):
        return
    raise ApiValueError(
        f"Refusing to send credentials over plain http:// to {host!r}: use https://, "
        "or set Configuration.allow_insecure_http = True if this network is trusted"
    )


def check_content_type(endpoint: Endpoint[Any, Any], content_type: object) -> str:
    if not isinstance(content_type, str):
        raise ApiTypeError(f"_content_type must be a str, not {type(content_type).__name__}")
    if not content_type.lower().startswith(_JSON):
        raise ApiValueError(
            f"_content_type {content_type!r} is not supported; `{endpoint.name}` sends {_JSON}"
        )
    check_header("Content-Type", content_type)
    return content_type


def unknown_options(endpoint: Endpoint[Any, Any], unknown: Iterable[str]) -> ApiTypeError:
    """The error for keywords an operation does not take, with the right call when they are
    the body's fields (``create_offer_display(lead_uuid=...)``)."""
    unknown = set(unknown)
    names = ", ".join(repr(name) for name in sorted(unknown))
    message = f"{endpoint.name}() got unexpected keyword arguments: {names}"
    model = endpoint.request_model
    fields = model.model_fields if model is not None else {}
    aliases = {info.alias for info in fields.values() if info.alias}
    if model is not None and unknown & (fields.keys() | aliases):
        example = ", ".join(f"{info.alias or name!r}: ..." for name, info in fields.items())
        message += (
            f". Body fields go in one argument: {endpoint.name}({{{example}}}) "
            f"or {endpoint.name}({model.__name__}(...))"
        )
    return ApiTypeError(message)
