"""One item of the error array the API responds with on failure."""

from __future__ import annotations

import json

from pydantic import StrictStr, ValidationError

from openapi_client.models._base import ResponseModel


class ApiError(ResponseModel):
    """What went wrong, and with which attribute; every field is optional."""

    attribute: StrictStr | None = None
    type: StrictStr | None = None
    details: dict[str, StrictStr] | None = None
    message: StrictStr | None = None

    @classmethod
    def list_from_body(cls, body: str | bytes | None) -> list[ApiError]:
        """The Engine error array in a response body; anything else yields ``[]``."""
        if not body:
            return []
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than json can go
            return []
        if not isinstance(decoded, list) or not all(isinstance(i, dict) for i in decoded):
            return []
        try:
            return [cls.model_validate(item) for item in decoded]
        except ValidationError:
            return []
