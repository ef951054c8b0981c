"""Python client for the Engine by MoneyLion UI Events API (distribution ``engine-ui-events``).

Record that a user began a session and that an offer was shown::

    import os
    import openapi_client

    # The host is $ENGINE_API_HOST when set, else https://api.engine.tech.
    configuration = openapi_client.Configuration(access_token=os.environ["BEARER_TOKEN"])
    with openapi_client.ApiClient(configuration) as api_client:
        api = openapi_client.UIEventsApi(api_client)
        session = api.create_session_init()
        display = api.create_offer_display(
            openapi_client.OfferDisplayCreateData(
                lead_uuid="f914eb07-a64f-51d8-b882-ff508a8c5c81",
                rate_table_uuid="952a1184-d369-5958-9a0f-bec903e11c48",
                offer_uuid="3426f971-1aa5-5cb0-91a9-cf2edcfa5dfa",
            )
        )

Or render ``api.offer_display_pixel_img_tag(lead, rate_table, offer)`` beside the offer
instead of calling ``create_offer_display`` (one or the other per display, not both).

Failures raise ``openapi_client.ApiException`` subclasses (``UnauthorizedException``,
``ApiConnectionError``, ...); input mistakes raise ``ApiValueError`` before anything is sent.
Tests: ``openapi_client.testing.FakeEngineServer`` and the pytest fixtures ``fake_engine`` and
``fake_engine_api``. Command line: ``engine-ui-events --help``. Documentation: README.md and
docs/ in the source distribution.

Names are imported on first use, so ``import openapi_client`` costs almost nothing until a
client, model or exception is touched.
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
        RecorderSpooledError,
        ServiceException,
        UnauthorizedException,
        UnprocessableEntityException,
    )
    from openapi_client.models.api_error import ApiError
    from openapi_client.models.offer_display import OfferDisplay
    from openapi_client.models.offer_display_create_data import OfferDisplayCreateData
    from openapi_client.models.session_init import SessionInit
    from openapi_client.models.session_init_create_data import SessionInitCreateData
    from openapi_client.recorder import EventRecorder, RecordedEvent, RecorderStats
    from openapi_client.retries import RetryPolicy

__all__ = [
    "ApiAttributeError",
    "ApiClient",
    "ApiConnectionError",
    "ApiError",
    "ApiException",
    "ApiResponse",
    "ApiResponseValidationError",
    "ApiStatusError",
    "ApiTimeoutError",
    "ApiTypeError",
    "ApiValueError",
    "BadRequestException",
    "Configuration",
    "ConflictException",
    "EventRecorder",
    "ForbiddenException",
    "NotFoundException",
    "OfferDisplay",
    "OfferDisplayCreateData",
    "OpenApiException",
    "RecordedEvent",
    "RecorderClosedError",
    "RecorderError",
    "RecorderFullError",
    "RecorderSpooledError",
    "RecorderStats",
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
    "EventRecorder": "openapi_client.recorder",
    "RecordedEvent": "openapi_client.recorder",
    "RecorderStats": "openapi_client.recorder",
    "ApiError": "openapi_client.models.api_error",
    "OfferDisplay": "openapi_client.models.offer_display",
    "OfferDisplayCreateData": "openapi_client.models.offer_display_create_data",
    "SessionInit": "openapi_client.models.session_init",
    "SessionInitCreateData": "openapi_client.models.session_init_create_data",
    **dict.fromkeys(
        [
            name
            for name in __all__
            if name.endswith(("Error", "Exception")) and name not in ("ApiError",)
        ],
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
