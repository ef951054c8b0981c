"""Response of ``POST /uiEvent/offerDisplays``."""

from datetime import datetime

from pydantic import StrictInt

from openapi_client.models._base import ResponseModel, UuidStr


class OfferDisplay(ResponseModel):
    """A recorded offer display, as the server stored it.

    JSON names: ``id``, ``uuid``, ``leadUuid``, ``rateTableUuid``, ``offerUuid``,
    ``createdAt``, ``createdBy``.
    """

    id: StrictInt
    uuid: UuidStr
    lead_uuid: UuidStr
    rate_table_uuid: UuidStr
    offer_uuid: UuidStr
    created_at: datetime
    created_by: UuidStr
