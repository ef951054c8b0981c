"""Sample values the tests share: one offer display, as the API's documentation shows one, one
session, and the documents the API answers with when it has created an event."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

LEAD = "f914eb07-a64f-51d8-b882-ff508a8c5c81"
RATE_TABLE = "952a1184-d369-5958-9a0f-bec903e11c48"
OFFER = "3426f971-1aa5-5cb0-91a9-cf2edcfa5dfa"
OFFER_BODY = {"leadUuid": LEAD, "rateTableUuid": RATE_TABLE, "offerUuid": OFFER}
"""A valid ``POST /uiEvent/offerDisplays`` body (camelCase, as on the wire)."""
SESSION = "820cc28f-ae99-55a5-a364-6353efd4a48b"
"""A ``sessionUuid``."""

CREATED_BY = "0f4d9f3e-5d0b-4b8e-9e4f-6c1f2a3b4c5d"
CREATED_AT = "2021-05-01T12:30:00.000Z"


def offer_display_answer(
    request_body: Mapping[str, Any] = OFFER_BODY, event_id: int = 1
) -> dict[str, Any]:
    """The ``OfferDisplay`` the API would answer (201) for this request body."""
    return {
        "id": event_id,
        "uuid": str(uuid.uuid4()),
        "leadUuid": request_body["leadUuid"],
        "rateTableUuid": request_body["rateTableUuid"],
        "offerUuid": request_body["offerUuid"],
        "createdAt": CREATED_AT,
        "createdBy": CREATED_BY,
    }


def session_init_answer(
    request_body: Mapping[str, Any] | None = None, event_id: int = 1
) -> dict[str, Any]:
    """The ``SessionInit`` the API would answer (201) for this request body (a fresh
    ``sessionUuid`` where it has none)."""
    return {
        "id": event_id,
        "uuid": str(uuid.uuid4()),
        "sessionUuid": (request_body or {}).get("sessionUuid") or str(uuid.uuid4()),
        "createdAt": CREATED_AT,
        "createdBy": CREATED_BY,
    }
