"""Body of ``POST /uiEvent/sessionInits``."""

from pydantic import Field

from openapi_client.models._base import RequestModel, UuidStr


class SessionInitCreateData(RequestModel):
    """A new session; leave ``session_uuid`` out and the server makes one."""

    session_uuid: UuidStr | None = Field(default=None, alias="sessionUuid")
