"""One item of the error array the API answers with on failure."""

from pydantic import StrictStr

from openapi_client.models._base import ResponseModel


class ApiError(ResponseModel):
    """What went wrong, and with which attribute; every field is optional."""

    attribute: StrictStr | None = None
    type: StrictStr | None = None
    details: dict[str, StrictStr] | None = None
    message: StrictStr | None = None
