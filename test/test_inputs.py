"""Bad input raises an SDK input error before any byte is sent; the pixel helper checks its UUIDs."""

from __future__ import annotations

import decimal
import html
import uuid
from typing import Any

import pytest
import urllib3
from samples import LEAD, OFFER, OFFER_BODY, RATE_TABLE
from support import TOKEN, RecordingServer

from openapi_client import (
    ApiClient,
    ApiTypeError,
    ApiValueError,
    Configuration,
    OfferDisplayCreateData,
    OpenApiException,
    UIEventsApi,
)
from openapi_client.rest import RESTClientObject


@pytest.fixture
def nothing_sent(recording_server: RecordingServer) -> Any:
    """After the test, assert that the server received no request at all."""
    yield
    assert recording_server.requests == []
    assert recording_server.connections_opened == 0


# -- request bodies --------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["not-a-uuid", LEAD.replace("-", ""), "", LEAD + "0", " " + LEAD])
def test_invalid_uuid_names_the_field_and_the_parameter(
    api: UIEventsApi, nothing_sent: None, bad: str
) -> None:
    with pytest.raises(ApiValueError) as caught:
        api.create_offer_display({**OFFER_BODY, "leadUuid": bad})

    message = str(caught.value)
    assert "leadUuid" in message
    assert "offer_display_create_data" in message
    assert "rateTableUuid" not in message
    assert caught.value.path_to_item == ["offer_display_create_data", "leadUuid"]


def test_invalid_session_uuid_names_session_parameter(api: UIEventsApi, nothing_sent: None) -> None:
    with pytest.raises(ApiValueError, match="sessionUuid") as caught:
        api.create_session_init({"sessionUuid": "123"})

    assert "session_init_create_data" in str(caught.value)


@pytest.mark.parametrize("missing", ["leadUuid", "rateTableUuid", "offerUuid"])
def test_missing_required_field_is_refused(
    api: UIEventsApi, nothing_sent: None, missing: str
) -> None:
    body = {k: v for k, v in OFFER_BODY.items() if k != missing}

    with pytest.raises(ApiValueError, match=f"{missing}: field required"):
        api.create_offer_display(body)


@pytest.mark.parametrize("value", [12345, 1.5, b"bytes", ["list"], True])
def test_wrong_type_for_uuid_field_is_a_type_error(
    api: UIEventsApi, nothing_sent: None, value: Any
) -> None:
    with pytest.raises(ApiTypeError, match="offerUuid"):
        api.create_offer_display({**OFFER_BODY, "offerUuid": value})


@pytest.mark.parametrize("body", ["{}", [OFFER_BODY], 42, object()])
def test_body_that_is_not_a_dict_or_model_is_a_type_error(
    api: UIEventsApi, nothing_sent: None, body: Any
) -> None:
    with pytest.raises(ApiTypeError, match="offer_display_create_data") as caught:
        api.create_offer_display(body)

    assert isinstance(caught.value, TypeError)
    assert type(body).__name__ in str(caught.value)


def test_body_model_of_the_other_operation_is_a_type_error(
    api: UIEventsApi, nothing_sent: None
) -> None:
    with pytest.raises(ApiTypeError, match="session_init_create_data"):
        api.create_session_init(OfferDisplayCreateData(**OFFER_BODY))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "extra", [{"leadUUID": LEAD}, {"subAccountUuid": LEAD}, {"lead_uuid_typo": LEAD}]
)
def test_unknown_key_is_refused(api: UIEventsApi, nothing_sent: None, extra: Any) -> None:
    with pytest.raises(ApiValueError, match=next(iter(extra))):
        api.create_offer_display({**OFFER_BODY, **extra})


def test_unknown_key_in_session_body_is_refused(api: UIEventsApi, nothing_sent: None) -> None:
    with pytest.raises(ApiValueError, match="session_uuid_typo"):
        api.create_session_init({"session_uuid_typo": LEAD})


def test_missing_body_for_create_offer_display_is_refused(
    api: UIEventsApi, nothing_sent: None
) -> None:
    with pytest.raises(ApiValueError, match="offer_display_create_data"):
        api.create_offer_display()
    with pytest.raises(ApiValueError, match="offer_display_create_data"):
        api.create_offer_display_with_http_info(None)
    with pytest.raises(ApiValueError, match="offer_display_create_data"):
        api.create_offer_display_without_preload_content()


def test_input_errors_are_sdk_exceptions_and_builtin_ones(api: UIEventsApi) -> None:
    with pytest.raises(OpenApiException):
        api.create_offer_display({})
    with pytest.raises(ValueError, match="leadUuid"):
        api.create_offer_display({**OFFER_BODY, "leadUuid": "x"})
    with pytest.raises(TypeError):
        api.create_offer_display("x")  # type: ignore[arg-type]


# -- per-call options ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Trace": "a\r\nX-Injected: 1"},
        {"X-Trace": "a\nb"},
        {"X-Trace": "a\rb"},
        {"X-Trace": "a\0b"},
        {"X-Bad\r\nName": "v"},
    ],
)
def test_header_with_cr_or_lf_is_refused(
    api: UIEventsApi, nothing_sent: None, headers: dict[str, str]
) -> None:
    with pytest.raises(ApiValueError, match="CR, LF"):
        api.create_session_init(_headers=headers)


def test_non_string_header_value_is_a_type_error(api: UIEventsApi, nothing_sent: None) -> None:
    with pytest.raises(ApiTypeError):
        api.create_session_init(_headers={"X-Count": 3})  # type: ignore[dict-item]


def test_default_header_with_newline_is_refused(client: ApiClient, nothing_sent: None) -> None:
    with pytest.raises(ApiValueError):
        client.set_default_header("X-Trace", "a\r\nb")
    with pytest.raises(ApiValueError):
        client.user_agent = "agent\n"

    assert "X-Trace" not in client.default_headers


def test_request_auth_value_with_newline_is_refused(api: UIEventsApi, nothing_sent: None) -> None:
    with pytest.raises(ApiValueError):
        api.create_session_init(
            _request_auth={"in": "header", "key": "Authorization", "value": "Bearer a\r\nX: y"}
        )


@pytest.mark.parametrize("auth", [{"in": "header"}, {"in": "body", "key": "k", "value": "v"}])
def test_incomplete_or_unknown_request_auth_is_refused(
    api: UIEventsApi, nothing_sent: None, auth: dict[str, str]
) -> None:
    with pytest.raises(ApiValueError, match="_request_auth"):
        api.create_session_init(_request_auth=auth)


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (0, ApiValueError),
        (-1, ApiValueError),
        (float("nan"), ApiValueError),
        (float("inf"), ApiValueError),
        ((1,), ApiValueError),
        ((1, 2, 3), ApiValueError),
        ((0, 5), ApiValueError),
        ("5", ApiTypeError),
        ((1, "2"), ApiTypeError),
        (True, ApiTypeError),
    ],
)
def test_bad_request_timeout_is_refused(
    api: UIEventsApi, nothing_sent: None, timeout: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="timeout"):
        api.create_session_init(_request_timeout=timeout)


@pytest.mark.parametrize("timeout", [0, -1, "5", (1,), None])
def test_bad_configured_timeout_is_refused(timeout: Any) -> None:
    with pytest.raises((ApiValueError, ApiTypeError), match="timeout"):
        Configuration(timeout=timeout)


UNBOUNDED_OR_BAD_URLLIB3_TIMEOUTS = [
    pytest.param(urllib3.Timeout(), ApiValueError, id="nothing-set"),
    pytest.param(urllib3.Timeout(connect=None, read=None), ApiValueError, id="none-none"),
    pytest.param(urllib3.Timeout(connect=1, read=None), ApiValueError, id="read-none"),
    pytest.param(urllib3.Timeout(read=1), ApiValueError, id="connect-left-out"),
    pytest.param(urllib3.Timeout(total=None), ApiValueError, id="total-none"),
    pytest.param(urllib3.Timeout(total=1e300), ApiValueError, id="total-1e300"),
    pytest.param(urllib3.Timeout(total=float("inf")), ApiValueError, id="total-inf"),
    pytest.param(urllib3.Timeout(connect=1, read=float("nan")), ApiValueError, id="read-nan"),
    pytest.param(
        urllib3.Timeout(connect=1e300, read=1, total=2), ApiValueError, id="connect-1e300"
    ),
    pytest.param(urllib3.Timeout(connect=decimal.Decimal(1), read=1), ApiTypeError, id="decimal"),
]
"""urllib3 accepts all of these; each would wait forever or fail every call (OverflowError)."""


@pytest.mark.parametrize(("timeout", "error"), UNBOUNDED_OR_BAD_URLLIB3_TIMEOUTS)
def test_unbounded_or_out_of_range_urllib3_timeout_is_refused_when_set(
    timeout: urllib3.Timeout, error: type[Exception]
) -> None:
    """Configured, in the constructor or on assignment: the same typed error as bad seconds."""
    with pytest.raises(error, match="timeout"):
        Configuration(timeout=timeout)
    config = Configuration()
    with pytest.raises(error, match="timeout"):
        config.timeout = timeout


@pytest.mark.parametrize(("timeout", "error"), UNBOUNDED_OR_BAD_URLLIB3_TIMEOUTS)
def test_unbounded_or_out_of_range_urllib3_timeout_is_refused_per_call(
    api: UIEventsApi, nothing_sent: None, timeout: urllib3.Timeout, error: type[Exception]
) -> None:
    """As ``_request_timeout``: refused before sending, by operations and the generated path."""
    with pytest.raises(error, match="_request_timeout"):
        api.create_session_init(_request_timeout=timeout)
    client = api.api_client
    serialized = client.param_serialize("POST", "/uiEvent/sessionInits", body={})
    with pytest.raises(error, match="_request_timeout"):
        client.call_api(*serialized, _request_timeout=timeout)
    rest = RESTClientObject(client.configuration)
    try:
        with pytest.raises(error, match="_request_timeout"):
            rest.request("POST", serialized[1], _request_timeout=timeout)
    finally:
        rest.close()


@pytest.mark.parametrize(
    "timeout",
    [
        urllib3.Timeout(total=2),
        urllib3.Timeout(connect=1, read=2),
        urllib3.Timeout(connect=1, total=3),
        urllib3.Timeout(connect=None, read=None, total=3),
    ],
    ids=repr,
)
def test_bounded_urllib3_timeout_is_accepted(api: UIEventsApi, timeout: urllib3.Timeout) -> None:
    """connect and read both set, or total set: the call is bounded, and goes through."""
    assert Configuration(timeout=timeout).timeout is not None
    assert api.create_session_init(_request_timeout=timeout).id == 1


@pytest.mark.parametrize(
    ("retries", "error"), [("3", ApiTypeError), (1.5, ApiTypeError), (-1, ApiValueError)]
)
def test_bad_retries_setting_is_refused(retries: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="retries"):
        Configuration(retries=retries)
    config = Configuration()
    with pytest.raises(error, match="retries"):
        config.retries = retries


@pytest.mark.parametrize("token", ["pk\nx", "pk\r\nX-Injected: 1", "pk\0", " pk", "pk "])
def test_token_with_newline_or_padding_is_refused(token: str) -> None:
    with pytest.raises(ApiValueError, match="access_token"):
        Configuration(access_token=token)


def test_token_set_later_is_checked_and_old_one_kept(
    client: ApiClient, recording_server: RecordingServer
) -> None:
    with pytest.raises(ApiValueError):
        client.configuration.access_token = "pk\r\nX-Injected: 1"
    with pytest.raises(ApiTypeError):
        client.configuration.access_token = 123  # type: ignore[assignment]

    UIEventsApi(client).create_session_init()

    assert recording_server.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert "X-Injected" not in recording_server.requests[0].headers


# -- the pixel helper ------------------------------------------------------------------------


def pixel_api(host: str = "https://api.engine.tech") -> UIEventsApi:
    return UIEventsApi(ApiClient(Configuration(host=host)))


@pytest.mark.parametrize(
    "args",
    [
        ("nope", RATE_TABLE, OFFER),
        (LEAD, "../../admin", OFFER),
        (LEAD, RATE_TABLE, OFFER + "/x"),
        (LEAD, RATE_TABLE, None),
        (LEAD, RATE_TABLE, 5),
        (LEAD, RATE_TABLE, f'{OFFER}"><script>'),
        (LEAD + "\n", RATE_TABLE, OFFER),  # "$" alone would let a trailing newline through
    ],
)
def test_pixel_helper_refuses_non_uuids(args: tuple[Any, Any, Any]) -> None:
    api = pixel_api()
    with pytest.raises(ValueError, match="must be a UUID"):
        api.offer_display_pixel_url(*args)
    with pytest.raises(ValueError, match="must be a UUID"):
        api.offer_display_pixel_img_tag(*args)


def test_pixel_url_follows_documented_pattern() -> None:
    url = pixel_api().offer_display_pixel_url(LEAD, RATE_TABLE, OFFER)

    assert url == (
        f"https://api.engine.tech/uiEvent/offerDisplays/{LEAD}/{RATE_TABLE}/{OFFER}/pixel.gif"
    )


def test_pixel_url_accepts_uuid_instances_and_uppercase() -> None:
    url = pixel_api().offer_display_pixel_url(uuid.UUID(LEAD), RATE_TABLE.upper(), OFFER)

    assert f"/{LEAD}/{RATE_TABLE}/{OFFER}/pixel.gif" in url


def test_pixel_url_uses_configured_host() -> None:
    url = pixel_api("http://127.0.0.1:8080/prefix").offer_display_pixel_url(LEAD, LEAD, LEAD)

    assert url.startswith("http://127.0.0.1:8080/prefix/uiEvent/offerDisplays/")


def test_pixel_img_tag_is_html_escaped() -> None:
    api = pixel_api('https://cdn.example.test/a&b"c')

    tag = api.offer_display_pixel_img_tag(LEAD, RATE_TABLE, OFFER)

    url = api.offer_display_pixel_url(LEAD, RATE_TABLE, OFFER)
    assert tag.startswith(f'<img src="{html.escape(url, quote=True)}"')
    assert "a&amp;b&quot;c" in tag
    assert 'width="1" height="1"' in tag
    assert tag.endswith(">")
    assert tag.count('"') % 2 == 0


# -- keyword mistakes and several problems at once ---------------------------------------------


def test_body_fields_passed_as_keywords_are_named_with_the_right_call(
    api: UIEventsApi, nothing_sent: None
) -> None:
    with pytest.raises(ApiTypeError) as caught:
        api.create_offer_display(lead_uuid=LEAD, rate_table_uuid=RATE_TABLE, offer_uuid=OFFER)  # type: ignore[call-arg]

    message = str(caught.value)
    for keyword in ("'lead_uuid'", "'rate_table_uuid'", "'offer_uuid'"):
        assert keyword in message
    assert "create_offer_display({'leadUuid': ..." in message
    assert "OfferDisplayCreateData(...)" in message


def test_every_bad_field_is_reported_at_its_own_location(
    api: UIEventsApi, nothing_sent: None
) -> None:
    with pytest.raises(ApiValueError) as caught:
        api.create_offer_display({"leadUuid": "nope", "rateTableUuid": "also-nope"})

    problems = {problem.path: problem.message for problem in caught.value.problems}
    assert set(problems) == {
        ("offer_display_create_data", "leadUuid"),
        ("offer_display_create_data", "rateTableUuid"),
        ("offer_display_create_data", "offerUuid"),
    }
    assert problems[("offer_display_create_data", "offerUuid")] == "field required"
    assert "must be a UUID" in problems[("offer_display_create_data", "leadUuid")]
    assert caught.value.path_to_item == ["offer_display_create_data", "leadUuid"]
    for field in ("leadUuid", "rateTableUuid", "offerUuid"):
        assert field in str(caught.value)


@pytest.mark.parametrize("boolean", [True, (1, True)])
def test_a_bool_timeout_is_refused_even_after_the_same_number_was_used(
    api: UIEventsApi, recording_server: RecordingServer, boolean: Any
) -> None:
    """``True == 1`` and they hash alike: a cache of parsed timeouts must not let True through."""
    api.create_session_init(_request_timeout=1)
    api.create_session_init(_request_timeout=(1, 1))
    sent = len(recording_server.requests)

    with pytest.raises(ApiTypeError, match="bool"):
        api.create_session_init(_request_timeout=boolean)
    assert len(recording_server.requests) == sent
