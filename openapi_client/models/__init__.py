"""The API's data models (pydantic v2)."""

from openapi_client.models.api_error import ApiError
from openapi_client.models.offer_display import OfferDisplay
from openapi_client.models.offer_display_create_data import OfferDisplayCreateData
from openapi_client.models.session_init import SessionInit
from openapi_client.models.session_init_create_data import SessionInitCreateData

__all__ = [
    "ApiError",
    "OfferDisplay",
    "OfferDisplayCreateData",
    "SessionInit",
    "SessionInitCreateData",
]
