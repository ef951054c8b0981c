"""Body of ``POST /uiEvent/sessionInits``."""

from typing import TYPE_CHECKING

from openapi_client.models._base import RequestModel, UuidInput, UuidStr


class SessionInitCreateData(RequestModel):
    """A new session; leave ``session_uuid`` out and the server makes one.

    JSON name: ``sessionUuid``.
    """

    session_uuid: UuidStr | None = None

    if TYPE_CHECKING:
        # As for OfferDisplayCreateData: Python names, str or uuid.UUID, for every type checker.
        def __init__(self, *, session_uuid: UuidInput | None = None) -> None: ...
