"""Body of ``POST /uiEvent/offerDisplays``."""

from typing import TYPE_CHECKING

from openapi_client.models._base import RequestModel, UuidInput, UuidStr


class OfferDisplayCreateData(RequestModel):
    """The offer that was shown: the lead, the rate table and the offer, each by UUID.

    JSON names: ``leadUuid``, ``rateTableUuid``, ``offerUuid``.
    """

    lead_uuid: UuidStr
    rate_table_uuid: UuidStr
    offer_uuid: UuidStr

    if TYPE_CHECKING:
        # The constructor type checkers see, with or without pydantic's mypy plugin: Python
        # names, and uuid.UUID beside str (validation stores it as a lowercase string).
        # At run time pydantic's __init__ also takes the JSON names.
        def __init__(
            self, *, lead_uuid: UuidInput, rate_table_uuid: UuidInput, offer_uuid: UuidInput
        ) -> None: ...
