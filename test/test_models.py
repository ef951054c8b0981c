"""The models: round trips, camelCase and snake_case construction, UUID and datetime handling."""

from __future__ import annotations

import ast
import datetime
import inspect
import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from samples import LEAD

from openapi_client.models import (
    ApiError,
    OfferDisplay,
    OfferDisplayCreateData,
    SessionInit,
    SessionInitCreateData,
)
from openapi_client.models._base import Model

uuids = st.uuids().map(str)
# A UUID as a caller might give it: canonical, uppercase, or a uuid.UUID instance.
uuid_inputs = st.uuids().flatmap(lambda u: st.sampled_from([str(u), str(u).upper(), u]))
offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda minutes: datetime.timezone(datetime.timedelta(minutes=minutes))
)
datetimes = st.datetimes(
    min_value=datetime.datetime(1970, 1, 1), max_value=datetime.datetime(2200, 1, 1)
).flatmap(lambda d: st.sampled_from([d]) | offsets.map(lambda tz: d.replace(tzinfo=tz)))
ids = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def canonical(value: str | uuid.UUID) -> str:
    return str(value).lower()


@st.composite
def offer_displays(draw: st.DrawFn) -> OfferDisplay:
    return OfferDisplay(
        id=draw(ids),
        uuid=draw(uuids),
        lead_uuid=draw(uuids),
        rate_table_uuid=draw(uuids),
        offer_uuid=draw(uuids),
        created_at=draw(datetimes),
        created_by=draw(uuids),
    )


@st.composite
def session_inits(draw: st.DrawFn) -> SessionInit:
    return SessionInit(
        id=draw(ids),
        uuid=draw(uuids),
        session_uuid=draw(uuids),
        created_at=draw(datetimes),
        created_by=draw(uuids),
    )


# -- round trips -----------------------------------------------------------------------------


@given(st.one_of(offer_displays(), session_inits()))
def test_answer_models_round_trip_through_dict_and_json(model: OfferDisplay | SessionInit) -> None:
    cls = type(model)

    assert cls.from_dict(model.to_dict()) == model
    assert cls.from_json(model.to_json()) == model
    assert cls.from_json(model.to_json().encode()) == model
    assert json.loads(model.to_json())["createdAt"]
    assert "created_at" not in model.to_dict()


@given(st.one_of(offer_displays(), session_inits()))
def test_datetimes_survive_json_with_their_offset(model: OfferDisplay | SessionInit) -> None:
    again = type(model).from_json(model.to_json())

    assert again.created_at == model.created_at
    assert again.created_at.utcoffset() == model.created_at.utcoffset()


@given(uuid_inputs, uuid_inputs, uuid_inputs)
def test_request_model_camel_and_snake_construction_agree(
    lead: str | uuid.UUID, rate_table: str | uuid.UUID, offer: str | uuid.UUID
) -> None:
    by_alias = OfferDisplayCreateData(  # type: ignore[call-arg]  # aliases work at run time
        leadUuid=lead, rateTableUuid=rate_table, offerUuid=offer
    )
    by_name = OfferDisplayCreateData(lead_uuid=lead, rate_table_uuid=rate_table, offer_uuid=offer)

    assert by_alias == by_name
    assert by_alias.to_dict() == {
        "leadUuid": canonical(lead),
        "rateTableUuid": canonical(rate_table),
        "offerUuid": canonical(offer),
    }
    assert OfferDisplayCreateData.from_dict(by_alias.to_dict()) == by_alias
    assert OfferDisplayCreateData.from_json(by_alias.to_json()) == by_alias


@given(st.none() | uuid_inputs)
def test_session_init_create_data_round_trips(session: str | uuid.UUID | None) -> None:
    model = SessionInitCreateData(session_uuid=session)

    expected = {} if session is None else {"sessionUuid": canonical(session)}
    assert model.to_dict() == expected
    assert json.loads(model.to_json()) == expected
    assert SessionInitCreateData.from_json(model.to_json()) == model
    assert SessionInitCreateData(sessionUuid=session) == model  # type: ignore[call-arg]  # aliases work at run time


def test_from_dict_of_none_is_none() -> None:
    assert OfferDisplay.from_dict(None) is None
    assert ApiError.from_dict(None) is None


# -- field handling --------------------------------------------------------------------------


def answer(**changes: Any) -> dict[str, Any]:
    base = {
        "id": 1, "uuid": LEAD, "leadUuid": LEAD, "rateTableUuid": LEAD, "offerUuid": LEAD,
        "createdAt": "2021-05-01T00:00:00Z", "createdBy": LEAD,
    }  # fmt: skip
    return {**base, **changes}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-05-01T00:00:00.00", datetime.datetime(2021, 5, 1)),
        ("2021-05-01T00:00:00.000Z", datetime.datetime(2021, 5, 1, tzinfo=datetime.timezone.utc)),
        (
            "2021-05-01T12:30:45.123456+02:00",
            datetime.datetime(
                2021, 5, 1, 12, 30, 45, 123456,
                tzinfo=datetime.timezone(datetime.timedelta(hours=2)),
            ),
        ),
    ],
)  # fmt: skip
def test_created_at_accepts_the_api_datetime_forms(text: str, expected: datetime.datetime) -> None:
    model = OfferDisplay.from_json(json.dumps(answer(createdAt=text)))

    assert model.created_at == expected
    assert model.created_at.utcoffset() == expected.utcoffset()


def test_unknown_fields_in_answers_are_kept() -> None:
    model = OfferDisplay.from_dict(answer(subAccountUuid=LEAD))

    assert model is not None
    assert model.lead_uuid == LEAD
    assert model.to_dict()["subAccountUuid"] == LEAD
    assert json.loads(model.to_json())["subAccountUuid"] == LEAD
    session = SessionInit.from_json(
        json.dumps({**answer(sessionUuid=LEAD, newField={"nested": [1]})})
    )
    assert session.to_dict()["newField"] == {"nested": [1]}


def test_uuid_instances_are_accepted_and_serialised_canonical_lowercase() -> None:
    value = uuid.UUID(LEAD.upper())

    model = OfferDisplayCreateData(lead_uuid=value, rate_table_uuid=value, offer_uuid=value)

    assert model.lead_uuid == LEAD
    assert isinstance(model.lead_uuid, str)
    assert model.to_json() == json.dumps(
        {"leadUuid": LEAD, "rateTableUuid": LEAD, "offerUuid": LEAD}, separators=(",", ":")
    )


def test_uppercase_uuid_is_normalised_in_answers_and_requests() -> None:
    display = OfferDisplay.from_dict(answer(leadUuid=LEAD.upper()))
    assert display is not None
    assert display.lead_uuid == LEAD
    by_alias = SessionInitCreateData(sessionUuid=LEAD.upper())  # type: ignore[call-arg]  # aliases work at run time
    assert by_alias.session_uuid == LEAD


def test_assignment_is_validated() -> None:
    model = SessionInitCreateData()
    model.session_uuid = LEAD.upper()
    assert model.session_uuid == LEAD

    with pytest.raises(ValidationError):
        model.session_uuid = "not-a-uuid"


@pytest.mark.parametrize(
    "changes",
    [{"id": "1"}, {"id": 1.5}, {"uuid": "x"}, {"createdAt": "yesterday"}, {"leadUuid": None}],
)
def test_invalid_answers_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        OfferDisplay.from_dict(answer(**changes))


def test_api_error_with_details_dict() -> None:
    document = {
        "attribute": "leadUuid",
        "type": "not_found",
        "details": {"leadUuid": LEAD, "hint": "create the lead first"},
        "message": "Lead not found",
        "traceId": "abc",
    }

    error = ApiError.from_dict(document)

    assert error is not None
    assert error.details == {"leadUuid": LEAD, "hint": "create the lead first"}
    assert error.to_dict() == document
    assert ApiError.from_json(error.to_json()) == error
    assert ApiError().to_dict() == {}


def test_api_error_details_must_be_strings() -> None:
    with pytest.raises(ValidationError):
        ApiError.from_dict({"details": {"count": 3}})


def test_to_str_is_readable_dict_with_camelcase_keys() -> None:
    model = OfferDisplay.from_dict(answer())
    assert model is not None

    text = model.to_str()

    assert "'leadUuid': 'f914eb07-a64f-51d8-b882-ff508a8c5c81'" in text
    assert "'id': 1" in text
    assert text.startswith("{")
    assert text.endswith("}")
    assert SessionInitCreateData().to_str() == "{}"


# -- what users see: JSON names, constructor names, signatures ------------------------------

JSON_NAMES: dict[type[Model], list[str]] = {
    OfferDisplayCreateData: ["leadUuid", "rateTableUuid", "offerUuid"],
    SessionInitCreateData: ["sessionUuid"],
    OfferDisplay: [
        "id", "uuid", "leadUuid", "rateTableUuid", "offerUuid", "createdAt", "createdBy",
    ],
    SessionInit: ["id", "uuid", "sessionUuid", "createdAt", "createdBy"],
    ApiError: ["attribute", "type", "details", "message"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("model", "names"), JSON_NAMES.items(), ids=lambda v: getattr(v, "__name__", "")
)
def test_json_names_are_the_api_camel_case_names_everywhere(
    model: type[Model], names: list[str]
) -> None:
    assert [field.alias for field in model.model_fields.values()] == names
    for mode in ("validation", "serialization"):
        schema = model.model_json_schema(by_alias=True, mode=mode)  # type: ignore[arg-type]
        assert list(schema["properties"]) == names


def test_request_models_take_camel_case_and_snake_case_dicts_and_send_camel_case() -> None:
    camel = {"leadUuid": LEAD, "rateTableUuid": LEAD, "offerUuid": LEAD.upper()}
    snake = {"lead_uuid": LEAD, "rate_table_uuid": LEAD, "offer_uuid": LEAD}

    for document in (camel, snake):
        model = OfferDisplayCreateData.model_validate(document)
        assert model == OfferDisplayCreateData.from_dict(document)
        assert model.to_dict() == {"leadUuid": LEAD, "rateTableUuid": LEAD, "offerUuid": LEAD}
        assert json.loads(model.to_json()) == model.to_dict()
    assert SessionInitCreateData.model_validate({"sessionUuid": LEAD}).session_uuid == LEAD


def test_json_input_takes_only_the_json_names_when_asked_as_the_fake_asks() -> None:
    # The fake server validates bodies by alias only, as the API does.
    with pytest.raises(ValidationError):
        SessionInitCreateData.model_validate_json(
            json.dumps({"session_uuid": LEAD}), by_alias=True, by_name=False
        )


@pytest.mark.parametrize("model", JSON_NAMES, ids=lambda m: m.__name__)
def test_signature_shows_python_names_and_plain_types(model: type[Model]) -> None:
    signature = inspect.signature(model)

    keywords = [
        p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    assert keywords == list(model.model_fields)
    assert "Annotated" not in str(signature)
    assert "_UuidString" not in str(signature)


def test_signatures_read_as_documented() -> None:
    assert str(inspect.signature(OfferDisplayCreateData)) == (
        "(*, lead_uuid: str, rate_table_uuid: str, offer_uuid: str) -> None"
    )
    assert str(inspect.signature(SessionInitCreateData)) == (
        "(*, session_uuid: str | None = None) -> None"
    )
    assert str(inspect.signature(SessionInit)).startswith(
        "(*, id: int, uuid: str, session_uuid: str, created_at: datetime.datetime,"
    )


@pytest.mark.parametrize("model", [OfferDisplayCreateData, SessionInitCreateData])
def test_typed_constructor_of_a_request_model_lists_every_field(model: type[Model]) -> None:
    """The ``__init__`` that type checkers read (under TYPE_CHECKING) must not drift from the fields."""
    source = inspect.getsource(inspect.getmodule(model))  # type: ignore[arg-type]
    (init,) = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef) and node.name == "__init__"
    ]
    assert [arg.arg for arg in init.args.kwonlyargs] == list(model.model_fields)
    for arg in init.args.kwonlyargs:
        assert arg.annotation is not None
        assert "UuidInput" in ast.unparse(arg.annotation)
