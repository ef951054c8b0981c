"""openapi-generator 7.x's ``ApiClient`` contract, on this SDK's pipeline.

Modules generated for other Engine endpoints call ``param_serialize`` → ``call_api`` →
``response_deserialize`` (and ``select_header_*``, ``sanitize_for_serialization``,
``deserialize``). Here those calls go through the same prepared request, deadline, retries,
redaction and typed errors as the SDK's own operations.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, urlencode

from pydantic import BaseModel, SecretStr, ValidationError

from openapi_client._requests import (
    apply_auth,
    refuse_insecure,
    refuse_without_credentials,
    secrets_of,
)
from openapi_client._responses import response_error
from openapi_client.api_response import ApiResponse
from openapi_client.exceptions import ApiTypeError, ApiValueError
from openapi_client.transport import HttpRequest, RESTResponse
from openapi_client.validation import check_header, merge_headers, timeout_budget, to_timeout

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from openapi_client.api_client import ApiClient

RequestSerialized = tuple[str, str, dict[str, str], Any, list[Any]]
"""``(method, url, header_params, body, post_params)``, as ``param_serialize`` returns it."""


class SerializedHeaders(dict[str, str]):
    """The headers ``param_serialize`` returns, carrying to ``call_api`` the per-call secret
    (``_request_auth``) that they or the URL hold: generated modules pass them on unchanged
    (``call_api(*_param)``), so each call redacts its own secret, whatever other threads
    serialize in between."""

    __slots__ = ("secrets",)

    def __init__(self, headers: Mapping[str, str], secrets: tuple[str, ...] = ()) -> None:
        super().__init__(headers)
        self.secrets = secrets


_JSON_MEDIA = re.compile(r"json", re.IGNORECASE)
_CHARSET = re.compile(r"charset=([a-zA-Z\-\d]+)[\s;]?")
_COLLECTION_SEPARATORS = {"csv": ",", "ssv": " ", "tsv": "\t", "pipes": "|"}


class GeneratedClientContract:
    """The methods generated API modules call on ``ApiClient`` (mixed into it)."""

    def param_serialize(
        self,
        method: str,
        resource_path: str,
        path_params: Mapping[str, Any] | None = None,
        query_params: Sequence[tuple[str, Any]] | Mapping[str, Any] | None = None,
        header_params: Mapping[str, Any] | None = None,
        body: Any = None,
        post_params: Sequence[tuple[str, Any]] | None = None,
        files: Mapping[str, Any] | None = None,
        auth_settings: Sequence[str] | None = None,
        collection_formats: Mapping[str, str] | None = None,
        _host: str | None = None,
        _request_auth: Mapping[str, Any] | None = None,
    ) -> RequestSerialized:
        """Everything a request needs, checked: path parameters quoted, query encoded, auth set."""
        client = _client(self)
        if post_params or files:
            raise ApiValueError("form and file parameters are not supported by this client")
        formats = collection_formats or {}
        headers = dict(client.default_headers)
        for name, value in (header_params or {}).items():
            if value is not None:
                merge_headers(headers, {name: _header_text(value)})
        for name, value in headers.items():
            check_header(name, value)
        path = resource_path
        for name, value in _pairs(self.sanitize_for_serialization(path_params or {}), formats):
            path = path.replace("{" + name + "}", quote(str(value), safe=""))
        url = (_host or client.configuration.host) + path
        query = _pairs(self.sanitize_for_serialization(query_params or []), formats)
        if query:
            url += "?" + urlencode([(k, _query_text(v)) for k, v in query])
        secrets: tuple[str, ...] = ()
        if _request_auth is not None:
            url, secret = apply_auth(_request_auth, headers, url)
            secrets = (secret,)
            client._remember_per_call_secret(secret)
        else:
            config_auth = client.configuration.auth_settings()
            for name in auth_settings or ():
                setting = config_auth.get(name)
                if setting is not None:
                    url = _apply_setting(setting, headers, url)
            if auth_settings:
                refuse_without_credentials(f"{method} {resource_path}", secrets_of(headers))
        body = self.sanitize_for_serialization(body)
        return method, url, SerializedHeaders(headers, secrets), body, []

    def call_api(
        self,
        method: str,
        url: str,
        header_params: Mapping[str, str] | None = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> RESTResponse:
        """Send it, with this client's deadline, retries and errors; the body is left for
        ``response.read()``, which must come within the call's time budget."""
        client = _client(self)
        state = client._current_state()
        headers = dict(state.base_headers)
        merge_headers(headers, header_params or {})
        values = [url, *headers.values()]
        # The secret carried with the headers is this call's own; the recent ones cover headers
        # that were copied on the way here (and lost what they carried).
        carried = header_params.secrets if isinstance(header_params, SerializedHeaders) else ()
        candidates = (*carried, *client._recent_per_call_secrets())
        sent = tuple(s for s in candidates if any(s in value for value in values))
        secrets = secrets_of(headers) + sent
        refuse_insecure(state.allow_insecure_http, url, secrets)
        timeout = state.timeout
        if _request_timeout is not None:
            timeout = to_timeout(_request_timeout, "_request_timeout")
        payload = _encode_body(body)
        request = HttpRequest(
            method, url, headers, payload, timeout, timeout_budget(timeout), state.max_bytes,
            True, secrets + state.proxy_secrets,
        )  # fmt: skip
        response, retries = client.execute(state, request, state.policy)
        response.retries = retries
        return response

    def response_deserialize(
        self,
        response_data: RESTResponse,
        response_types_map: Mapping[str, str | None] | None = None,
    ) -> ApiResponse[Any]:
        """The response as ``ApiResponse``; a non-2xx raises the matching ``ApiException``."""
        status = response_data.status
        data = response_data.read()
        types = response_types_map or {}
        response_type = types.get(str(status)) or types.get(f"{str(status)[0]}XX")
        request = response_data.request or HttpRequest("", "", {}, None, to_timeout(1), 1, 1)
        if not 200 <= status <= 299:
            raise response_error(request, response_data, response_data.retries)
        result: Any = None
        if response_type == "bytearray":
            result = data
        elif response_type is not None:
            content_type = response_data.getheader("Content-Type")
            text = _decoded(data, content_type)
            try:
                result = self.deserialize(text, response_type, content_type)
            except (ValueError, ApiTypeError) as error:
                raise response_error(
                    request, response_data, response_data.retries,
                    f"response is not a valid {response_type}: {_first_line(error)}",
                ) from None  # fmt: skip
        return ApiResponse(
            status, response_data.getheaders(), result, data, response_data.retries,
            request.secrets,
        )  # fmt: skip

    def sanitize_for_serialization(self, obj: Any) -> Any:
        """``obj`` as JSON-ready data: models by alias, dates in ISO 8601, containers recursively."""
        if obj is None or isinstance(obj, str | int | float | bool | bytes):
            return obj
        if isinstance(obj, SecretStr):
            return obj.get_secret_value()
        if isinstance(obj, enum.Enum):
            return obj.value
        if isinstance(obj, list | tuple):
            return [self.sanitize_for_serialization(item) for item in obj]
        if isinstance(obj, datetime.datetime | datetime.date):
            return obj.isoformat()
        if isinstance(obj, decimal.Decimal):
            return str(obj)
        if isinstance(obj, Mapping):
            return {key: self.sanitize_for_serialization(value) for key, value in obj.items()}
        if isinstance(obj, BaseModel):
            return self.sanitize_for_serialization(obj.model_dump(by_alias=True, exclude_none=True))
        return str(obj)

    def deserialize(
        self, response_text: str | None, response_type: str, content_type: str | None
    ) -> Any:
        """Parse ``response_text`` as ``response_type`` ("OfferDisplay", "List[ApiError]", …)."""
        if response_text is None:
            return None
        if content_type is None or _JSON_MEDIA.search(content_type):
            try:
                data: Any = json.loads(response_text) if response_text else None
            except RecursionError:  # nested deeper than the parser goes: as unparseable as bad JSON
                raise ApiValueError("response JSON is nested too deeply to parse") from None
        elif content_type.lower().startswith("text/"):
            data = response_text
        else:
            raise ApiValueError(f"Unsupported content type: {content_type}")
        if response_type == "object":
            return data
        try:
            return _adapter(response_type).validate_python(data)
        except ValidationError as error:
            raise ApiValueError(str(error)) from None

    def select_header_accept(self, accepts: Sequence[str]) -> str | None:
        """The JSON media type among ``accepts``, else the first; ``None`` for none."""
        return _prefer_json(accepts)

    def select_header_content_type(self, content_types: Sequence[str]) -> str | None:
        """The JSON media type among ``content_types``, else the first; ``None`` for none."""
        return _prefer_json(content_types)


def _client(contract: GeneratedClientContract) -> ApiClient:
    """The mixin's instance as the ``ApiClient`` it always is."""
    return cast("ApiClient", contract)


def _prefer_json(media_types: Sequence[str]) -> str | None:
    if not media_types:
        return None
    return next((m for m in media_types if _JSON_MEDIA.search(m)), media_types[0])


def _pairs(params: Any, formats: Mapping[str, str]) -> list[tuple[str, Any]]:
    """Parameters as (name, value) pairs, lists joined or repeated by their collection format."""
    items = params.items() if isinstance(params, Mapping) else params
    pairs: list[tuple[str, Any]] = []
    for name, value in items:
        if isinstance(value, list):
            style = formats.get(name, "csv")
            if style == "multi":
                pairs.extend((name, item) for item in value)
                continue
            value = _COLLECTION_SEPARATORS.get(style, ",").join(_query_text(v) for v in value)
        pairs.append((name, value))
    return pairs


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _header_text(value: Any) -> str:
    return _query_text(value) if not isinstance(value, str) else value


def _apply_setting(setting: Mapping[str, str], headers: dict[str, str], url: str) -> str:
    """Apply one of ``Configuration.auth_settings()`` to the headers or the URL."""
    where, key, value = setting["in"], setting["key"], setting["value"]
    if where == "query":
        return url + ("&" if "?" in url else "?") + urlencode({key: value})
    merge_headers(headers, {"Cookie" if where == "cookie" else key: value})
    return url


def _encode_body(body: Any) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _decoded(data: bytes, content_type: str | None) -> str:
    """The body as text in the ``charset`` its Content-Type names; UTF-8 (as everywhere else in
    the package) when it names none, or one Python has no text codec for (``x-foo``, ``hex``,
    ``undefined``), undecodable bytes replaced."""
    match = _CHARSET.search(content_type or "")
    if match:
        try:
            return data.decode(match.group(1), "replace")
        except (LookupError, ValueError):  # no such codec, not a text codec, or no "replace"
            pass
    return data.decode("utf-8", "replace")


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


_TYPE_PATTERN = re.compile(r"^(List|Dict)\[(.*)\]$")
_NATIVE: dict[str, Any] = {
    "int": int, "float": float, "str": str, "bool": bool, "bytearray": bytes,
    "date": datetime.date, "datetime": datetime.datetime, "decimal": decimal.Decimal,
    "object": Any,
}  # fmt: skip


@lru_cache(maxsize=128)
def _adapter(response_type: str) -> TypeAdapter[Any]:
    """A pydantic adapter for a generator type string, built once per string (imported on
    first use: only generated modules need it)."""
    from pydantic import TypeAdapter

    return TypeAdapter(_resolve(response_type))


def _resolve(type_name: str) -> Any:
    type_name = type_name.strip()
    container = _TYPE_PATTERN.match(type_name)
    if container:
        kind, inner = container.groups()
        if kind == "List":
            return list[_resolve(inner)]  # type: ignore[misc]
        key, _, value = inner.partition(",")
        return dict[_resolve(key), _resolve(value)]  # type: ignore[misc]
    if type_name in _NATIVE:
        return _NATIVE[type_name]
    import openapi_client.models

    model = getattr(openapi_client.models, type_name, None)
    if model is None:
        raise ApiTypeError(f"unknown response type {type_name!r} (not in openapi_client.models)")
    return model
