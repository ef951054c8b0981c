"""Application code and test helpers as a user writes them, for type checking only (never run).

``test_typing_user_code.py`` runs ``mypy --strict`` on this file twice, with pydantic's mypy
plugin and without it: what the docs call typed must pass both ways, and what they call
untyped must fail both ways (each ``# type: ignore[...]`` below must be needed, since strict
mode reports unused ones).
"""

from __future__ import annotations

import uuid

from openapi_client import (
    ApiClient,
    Configuration,
    OfferDisplay,
    OfferDisplayCreateData,
    SessionInit,
    SessionInitCreateData,
    UIEventsApi,
)
from openapi_client.cli import main
from openapi_client.testing import FakeEngineServer, RecordedRequest

RATE_TABLE = "952a1184-d369-5958-9a0f-bec903e11c48"
OFFER = "3426f971-1aa5-5cb0-91a9-cf2edcfa5dfa"


# -- the application -------------------------------------------------------------------------


def record_display(api: UIEventsApi, lead: uuid.UUID, rate_table: str, offer: str) -> str:
    body = OfferDisplayCreateData(lead_uuid=lead, rate_table_uuid=rate_table, offer_uuid=offer)
    display: OfferDisplay = api.create_offer_display(body)
    lead_text: str = display.lead_uuid  # a str, whatever was passed in
    return f"{lead_text} at {display.created_at.isoformat()}"


def start_session(api: UIEventsApi, chosen: uuid.UUID | None = None) -> str:
    body = SessionInitCreateData(session_uuid=chosen)
    session: SessionInit = api.create_session_init(body)
    return session.session_uuid


def body_from_json_names(data: dict[str, str]) -> OfferDisplayCreateData:
    return OfferDisplayCreateData.model_validate(data)  # {"leadUuid": ...}: typed as a dict


def pixel_markup(api: UIEventsApi, lead: uuid.UUID) -> str:
    tag = api.offer_display_pixel_img_tag(lead, RATE_TABLE, uuid.UUID(OFFER))
    url: str = api.offer_display_pixel_url(str(lead), RATE_TABLE, OFFER)
    return tag.__html__() + url


def command_line() -> int:
    code: int = main(["--version"])
    return code


# -- its tests' helpers ----------------------------------------------------------------------


def check_against_the_fake(lead: uuid.UUID) -> list[RecordedRequest]:
    with FakeEngineServer(token="pk_test") as engine, engine.client(retries=0) as api_client:
        api = UIEventsApi(api_client)
        record_display(api, lead, RATE_TABLE, OFFER)
        displays: list[OfferDisplay] = engine.wait_for_events(OfferDisplay, 1, timeout=5.0)
        sessions: list[SessionInit] = engine.wait_for_events("session_init", 0)
        assert displays[0].offer_uuid == OFFER
        assert not sessions
        engine.assert_recorded(offer_displays=[{"offer_uuid": OFFER}], session_inits=0)
        engine.assert_token("pk_test")
        arrived: bool = engine.wait_for_requests(1, include_in_flight=True)
        assert arrived
        requests = engine.requests
        status: int | None = requests[0].status
        assert status == 201
        assert requests[0].token_matches("pk_test")
        return requests


# -- what the types refuse -------------------------------------------------------------------


def refused(api: UIEventsApi) -> None:
    # The JSON names are not constructor keywords for type checkers (they are for dicts).
    OfferDisplayCreateData(leadUuid=OFFER, rateTableUuid=OFFER, offerUuid=OFFER)  # type: ignore[call-arg]
    SessionInitCreateData(sessionUuid=OFFER)  # type: ignore[call-arg]
    # A UUID parameter takes a str or a uuid.UUID, not any object.
    api.offer_display_pixel_url(1, RATE_TABLE, OFFER)  # type: ignore[arg-type]
    OfferDisplayCreateData(lead_uuid=1, rate_table_uuid=OFFER, offer_uuid=OFFER)  # type: ignore[arg-type]
    # The event kinds are named, not guessed.
    FakeEngineServer().wait_for_events("offer_displays")  # type: ignore[call-overload]
    ApiClient(Configuration())
