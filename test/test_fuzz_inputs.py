"""Random inputs to every public method and model: an SDK error or success, never anything else.

The server behind the client always answers 201, so the only failures a call may raise are the
input errors (``ApiTypeError``/``ApiValueError``), and when it raises one nothing may have
reached the wire: the server's request count must not move.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest
import urllib3
from faultserver import FaultServer, created_for_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samples import OFFER_BODY

from openapi_client import (
    ApiClient,
    Configuration,
    OfferDisplay,
    OfferDisplayCreateData,
    RetryPolicy,
    SessionInit,
    SessionInitCreateData,
    UIEventsApi,
)
from openapi_client.exceptions import ApiTimeoutError, ApiTypeError, ApiValueError

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
INPUT_ERRORS = (ApiTypeError, ApiValueError)
TOKEN = "pk_test_fuzz"


@pytest.fixture(scope="module")
def engine() -> Iterator[tuple[FaultServer, UIEventsApi]]:
    with FaultServer(then=created_for_path()) as server:
        config = Configuration(host=server.url, access_token=TOKEN, retries=0)
        with ApiClient(config) as client:
            yield server, UIEventsApi(client)
        assert server.unscripted == 0


# -- strategies ----------------------------------------------------------------------------------

huge_ints = st.integers(min_value=-(10**400), max_value=10**400)
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | huge_ints
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.binary(max_size=20)
)
json_like = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
uuid_like = (
    st.uuids().map(str)
    | st.uuids().map(lambda u: str(u).upper())
    | st.uuids()
    | st.uuids().map(lambda u: u.hex)
    | st.uuids().map(lambda u: f" {u}")
    | st.uuids().map(lambda u: f"{{{u}}}")
)
field_names = st.sampled_from(
    ["leadUuid", "rateTableUuid", "offerUuid", "sessionUuid",
     "lead_uuid", "rate_table_uuid", "offer_uuid", "session_uuid", "id", "LeadUuid"]
) | st.text(max_size=12)  # fmt: skip
field_values = uuid_like | json_like
valid_offer = st.fixed_dictionaries(
    {"leadUuid": uuid_like, "rateTableUuid": uuid_like, "offerUuid": uuid_like}
)
bodies = (
    valid_offer
    | valid_offer.flatmap(
        lambda body: st.dictionaries(field_names, field_values, max_size=2).map(
            lambda extra: {**body, **extra}
        )
    )
    | st.fixed_dictionaries({}, optional={"sessionUuid": uuid_like | json_like})
    | st.dictionaries(field_names, field_values, max_size=5)
    | json_like
    | st.builds(object)
    | st.just(OfferDisplayCreateData.model_validate(OFFER_BODY))
    | st.just(SessionInitCreateData())
)
numbers = st.integers() | huge_ints | st.floats(allow_nan=True, allow_infinity=True)
timeouts = (
    st.none()
    | numbers
    | st.booleans()
    | st.tuples(numbers, numbers)
    | st.lists(numbers | json_like, max_size=3)
    | st.tuples(json_like, json_like)
    | json_like
    | st.builds(urllib3.Timeout, connect=st.floats(0.5, 5), read=st.floats(0.5, 5))
)
header_text = st.text(max_size=20) | st.sampled_from(["X-Trace", "x-a", "Accept-Language"])
headers = st.none() | st.dictionaries(header_text, st.text(max_size=30) | json_like, max_size=3)
auths = st.none() | json_like | st.fixed_dictionaries(
    {"in": st.sampled_from(["header", "cookie", "query", "body"]) | json_like,
     "key": st.sampled_from(["Authorization", "X-Key", "token"]) | json_like,
     "value": st.text(max_size=20) | json_like}
)  # fmt: skip


def _not_zero(value: object) -> bool:
    return not (isinstance(value, int | float) and value == 0)


options = st.fixed_dictionaries(
    {},
    optional={
        "_request_timeout": timeouts,
        "_headers": headers,
        "_content_type": st.none() | st.sampled_from(["application/json", "text/plain"])
        | st.text(max_size=20) | json_like,
        "_request_auth": auths,
        # never a valid index (0): it would send the call to the real API
        "_host_index": st.none() | st.integers(-2, 3).filter(_not_zero) | json_like.filter(_not_zero),
    },
)  # fmt: skip


# -- the operations ------------------------------------------------------------------------------


def _shortest_timeout(value: Any) -> float:
    if isinstance(value, urllib3.Timeout):
        return min(t for t in (value.connect_timeout, value.read_timeout) if isinstance(t, float))
    if isinstance(value, tuple | list):
        return min(float(v) for v in value)
    return float(value)


def _call_and_account(
    server: FaultServer, call: Any, model: type[pydantic.BaseModel], *args: Any, **kwargs: Any
) -> None:
    before = server.attempts
    try:
        result = call(*args, **kwargs)
    except INPUT_ERRORS:
        assert server.attempts == before, "an invalid call reached the wire"
        return
    except ApiTimeoutError:
        # A valid but absurdly short timeout (hypothesis likes 1e-35 s) may run out first.
        assert _shortest_timeout(kwargs.get("_request_timeout")) < 0.05
        return
    assert server.attempts == before + 1
    sent = server.requests[-1].body
    model.model_validate_json(sent)  # what went out is a valid body
    assert isinstance(getattr(result, "data", result), OfferDisplay | SessionInit)


@pytest.mark.parametrize(
    ("operation", "model"),
    [
        ("create_offer_display", OfferDisplayCreateData),
        ("create_session_init_with_http_info", SessionInitCreateData),
    ],
)
@FUZZ
@given(body=bodies, options=options)
def test_an_operation_with_any_input_raises_an_input_error_or_sends_a_valid_body(
    engine: tuple[FaultServer, UIEventsApi],
    operation: str,
    model: type[pydantic.BaseModel],
    body: Any,
    options: dict[str, Any],
) -> None:
    """Whatever the body and options: an input error with nothing sent, or one valid request."""
    server, api = engine
    _call_and_account(server, getattr(api, operation), model, body, **options)


@FUZZ
@given(name=st.text(min_size=1, max_size=20), value=json_like)
def test_unknown_keyword_arguments_are_refused(
    engine: tuple[FaultServer, UIEventsApi], name: str, value: Any
) -> None:
    server, api = engine
    before = server.attempts
    known = {"_request_timeout", "_headers", "_content_type", "_request_auth", "_host_index"}
    if name in known or not name.isidentifier():
        return
    with pytest.raises(ApiTypeError):
        api.create_offer_display(OFFER_BODY, **{name: value})
    assert server.attempts == before


@FUZZ
@given(lead=uuid_like | json_like, rate_table=uuid_like | json_like, offer=uuid_like | json_like)
def test_pixel_url_with_any_input(
    engine: tuple[FaultServer, UIEventsApi], lead: Any, rate_table: Any, offer: Any
) -> None:
    _, api = engine
    try:
        url = api.offer_display_pixel_url(lead, rate_table, offer)
        tag = api.offer_display_pixel_img_tag(lead, rate_table, offer)
    except INPUT_ERRORS:
        return
    assert url.endswith("/pixel.gif")
    assert str(uuid.UUID(str(lead))) in url
    assert "<" not in url
    assert tag.startswith("<img ")


# -- headers and tokens with CR/LF ---------------------------------------------------------------

crlf_text = st.tuples(st.text(max_size=10), st.sampled_from(["\r", "\n", "\r\n", "\0"]),
                      st.text(max_size=10)).map("".join)  # fmt: skip


@FUZZ
@given(name=header_text, value=crlf_text, where=st.sampled_from(["name", "value"]))
def test_header_with_cr_or_lf_is_refused_everywhere(
    engine: tuple[FaultServer, UIEventsApi], name: str, value: str, where: str
) -> None:
    server, api = engine
    header = (value, "x") if where == "name" else (name or "X-A", value)
    before = server.attempts
    with pytest.raises(ApiValueError):
        api.create_session_init(_headers=dict([header]))
    with pytest.raises(ApiValueError):
        api.api_client.set_default_header(*header)
    assert header[0] not in api.api_client.default_headers
    assert server.attempts == before


any_header_text = st.text(max_size=12) | st.text(
    alphabet=st.sampled_from("aZ-_: \t\x7f\u00e9\u20ac\U0001f600()@"), max_size=8
) | st.sampled_from(["Content-Length", "transfer-encoding", "Host", "X-Trace"])  # fmt: skip


@FUZZ
@given(extra=st.dictionaries(any_header_text, any_header_text, min_size=1, max_size=3))
def test_extra_headers_are_sent_or_refused_before_sending(
    engine: tuple[FaultServer, UIEventsApi], extra: dict[str, str]
) -> None:
    server, api = engine
    _call_and_account(
        server, api.create_offer_display, OfferDisplayCreateData, OFFER_BODY, _headers=extra
    )
    sent = server.requests[-1]
    assert sent.headers["content-length"] == str(len(sent.body))  # framing stays the SDK's


@FUZZ
@given(token=crlf_text)
def test_access_token_with_cr_or_lf_is_refused(token: str) -> None:
    config = Configuration(access_token="good")
    with pytest.raises(ApiValueError):
        config.access_token = token
    assert config.access_token == "good"
    with pytest.raises(ApiValueError):
        Configuration(access_token=token)


@FUZZ
@given(name=header_text, value=st.text(max_size=30) | json_like)
def test_default_header_is_checked_when_set(
    engine: tuple[FaultServer, UIEventsApi], name: str, value: Any
) -> None:
    server, _ = engine
    client = ApiClient(Configuration(host=server.url, access_token=TOKEN, retries=0))
    try:
        client.set_default_header(name, value)
    except INPUT_ERRORS:
        assert name not in client.default_headers or name == "User-Agent"
        return
    finally:
        client.close()
    assert client.default_headers[name] == value


# -- settings ------------------------------------------------------------------------------------

setting_values = (
    json_like | numbers | st.text(max_size=40)
    | st.sampled_from(["http://127.0.0.1:1", "https://a.example", "ftp://x", "http://", "http://[::1"])
    | st.builds(RetryPolicy) | st.just(urllib3.Retry(total=1))
)  # fmt: skip


@FUZZ
@given(
    name=st.sampled_from(
        ["host", "access_token", "timeout", "retries", "max_response_bytes",
         "connection_pool_maxsize", "proxy", "proxy_headers"]
    ),
    value=setting_values,
)  # fmt: skip
def test_configuration_settings_with_any_value(name: str, value: Any) -> None:
    with contextlib.suppress(*INPUT_ERRORS):
        Configuration(**{name: value})
    config = Configuration(host="http://127.0.0.1:1")
    try:
        setattr(config, name, value)
    except INPUT_ERRORS:
        return
    repr(config)  # a set value is usable


# -- models, constructed directly --------------------------------------------------------------

models = st.sampled_from([OfferDisplayCreateData, SessionInitCreateData, OfferDisplay, SessionInit])


@FUZZ
@given(model=models, data=st.dictionaries(field_names, field_values, max_size=6) | json_like)
def test_models_validate_or_raise_validation_error(model: Any, data: Any) -> None:
    try:
        instance = model.model_validate(data)
    except pydantic.ValidationError:
        return
    again = model.from_json(instance.to_json())
    assert again == instance


@FUZZ
@given(model=models, text=st.text(max_size=80) | st.binary(max_size=80) | json_like)
def test_models_from_json_validate_or_raise_validation_error(model: Any, text: Any) -> None:
    with contextlib.suppress(pydantic.ValidationError):
        model.from_json(text)


@FUZZ
@given(model=models, data=st.dictionaries(st.text(max_size=12), field_values, max_size=6))
def test_models_from_keyword_arguments(model: Any, data: dict[str, Any]) -> None:
    try:
        instance = model(**data)
    except pydantic.ValidationError:
        return
    assert isinstance(instance.to_dict(), dict)


@FUZZ
@given(value=field_values)
def test_assignment_to_a_model_field_is_validated(value: Any) -> None:
    model = OfferDisplayCreateData.model_validate(OFFER_BODY)
    try:
        model.lead_uuid = value
    except pydantic.ValidationError:
        assert model.lead_uuid == OFFER_BODY["leadUuid"]
        return
    assert uuid.UUID(model.lead_uuid)
