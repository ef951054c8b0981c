"""Response of ``POST /uiEvent/sessionInits``."""

from datetime import datetime

from pydantic import StrictInt

from openapi_client.models._base import ResponseModel, UuidStr


class SessionInit(ResponseModel):
    """A recorded session start; pass ``session_uuid`` on to later rate table requests.

    JSON names: ``id``, ``uuid``, ``sessionUuid``, ``createdAt``, ``createdBy``.
    """

    id: StrictInt
    uuid: UuidStr
    session_uuid: UuidStr
    created_at: datetime
    created_by: UuidStr
