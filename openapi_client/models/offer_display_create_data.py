"""Body of ``POST /uiEvent/offerDisplays``."""

from pydantic import Field

from openapi_client.models._base import RequestModel, UuidStr


class OfferDisplayCreateData(RequestModel):
    """The offer that was shown: the lead, the rate table and the offer, each by UUID."""

    lead_uuid: UuidStr = Field(alias="leadUuid")
    rate_table_uuid: UuidStr = Field(alias="rateTableUuid")
    offer_uuid: UuidStr = Field(alias="offerUuid")
