"""Sample values the tests share: one offer display, as the API's documentation shows one."""

LEAD = "f914eb07-a64f-51d8-b882-ff508a8c5c81"
RATE_TABLE = "952a1184-d369-5958-9a0f-bec903e11c48"
OFFER = "3426f971-1aa5-5cb0-91a9-cf2edcfa5dfa"
OFFER_BODY = {"leadUuid": LEAD, "rateTableUuid": RATE_TABLE, "offerUuid": OFFER}
"""A valid ``POST /uiEvent/offerDisplays`` body (camelCase, as on the wire)."""
