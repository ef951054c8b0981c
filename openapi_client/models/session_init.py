"""Answer of ``POST /uiEvent/sessionInits``."""

from datetime import datetime

from pydantic import Field, StrictInt

from openapi_client.models._base import ResponseModel, UuidStr


class SessionInit(ResponseModel):
    """A recorded session start; pass ``session_uuid`` on to later rate table requests."""

    id: StrictInt
    uuid: UuidStr
    session_uuid: UuidStr = Field(alias="sessionUuid")
    created_at: datetime = Field(alias="createdAt")
    created_by: UuidStr = Field(alias="createdBy")
