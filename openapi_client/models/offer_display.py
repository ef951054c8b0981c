"""Answer of ``POST /uiEvent/offerDisplays``."""

from datetime import datetime

from pydantic import Field, StrictInt

from openapi_client.models._base import ResponseModel, UuidStr


class OfferDisplay(ResponseModel):
    """A recorded offer display, as the server stored it."""

    id: StrictInt
    uuid: UuidStr
    lead_uuid: UuidStr = Field(alias="leadUuid")
    rate_table_uuid: UuidStr = Field(alias="rateTableUuid")
    offer_uuid: UuidStr = Field(alias="offerUuid")
    created_at: datetime = Field(alias="createdAt")
    created_by: UuidStr = Field(alias="createdBy")
