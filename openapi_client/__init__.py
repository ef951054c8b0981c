"""Python client for the Engine by MoneyLion UI Events API.

Names are imported on first use (PEP 562), so ``import openapi_client`` costs almost nothing
until a client, model or exception is touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from openapi_client._version import __version__

if TYPE_CHECKING:
    from openapi_client.api.ui_events_api import UIEventsApi
    from openapi_client.api_client import ApiClient, RequestOptions
    from openapi_client.api_response import ApiResponse
    from openapi_client.configuration import Configuration
    from openapi_client.exceptions import (
        ApiAttributeError,
        ApiConnectionError,
        ApiException,
        ApiKeyError,
        ApiResponseValidationError,
        ApiStatusError,
        ApiTimeoutError,
        ApiTypeError,
        ApiValueError,
        BadRequestException,
        ConflictException,
        ForbiddenException,
        NotFoundException,
        OpenApiException,
        RecorderClosedError,
        RecorderError,
        RecorderFullError,
        ServiceException,
        UnauthorizedException,
        UnprocessableEntityException,
    )
    from openapi_client.models.api_error import ApiError
    from openapi_client.models.offer_display import OfferDisplay
    from openapi_client.models.offer_display_create_data import OfferDisplayCreateData
    from openapi_client.models.session_init import SessionInit
    from openapi_client.models.session_init_create_data import SessionInitCreateData
    from openapi_client.retries import RetryPolicy

__all__ = [
    "ApiAttributeError",
    "ApiClient",
    "ApiConnectionError",
    "ApiError",
    "ApiException",
    "ApiKeyError",
    "ApiResponse",
    "ApiResponseValidationError",
    "ApiStatusError",
    "ApiTimeoutError",
    "ApiTypeError",
    "ApiValueError",
    "BadRequestException",
    "Configuration",
    "ConflictException",
    "ForbiddenException",
    "NotFoundException",
    "OfferDisplay",
    "OfferDisplayCreateData",
    "OpenApiException",
    "RecorderClosedError",
    "RecorderError",
    "RecorderFullError",
    "RequestOptions",
    "RetryPolicy",
    "ServiceException",
    "SessionInit",
    "SessionInitCreateData",
    "UIEventsApi",
    "UnauthorizedException",
    "UnprocessableEntityException",
    "__version__",
]

_EXPORTS: dict[str, str] = {
    "UIEventsApi": "openapi_client.api.ui_events_api",
    "ApiClient": "openapi_client.api_client",
    "ApiResponse": "openapi_client.api_response",
    "RequestOptions": "openapi_client.api_client",
    "Configuration": "openapi_client.configuration",
    "RetryPolicy": "openapi_client.retries",
    "ApiError": "openapi_client.models.api_error",
    "OfferDisplay": "openapi_client.models.offer_display",
    "OfferDisplayCreateData": "openapi_client.models.offer_display_create_data",
    "SessionInit": "openapi_client.models.session_init",
    "SessionInitCreateData": "openapi_client.models.session_init_create_data",
    **dict.fromkeys(
        [name for name in __all__ if name.endswith(("Error", "Exception")) and name != "ApiError"],
        "openapi_client.exceptions",
    ),
}


def __getattr__(name: str) -> Any:
    """Import an exported name on first access, then keep it as a module attribute."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'openapi_client' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
