"""The API classes."""

from openapi_client.api.ui_events_api import UIEventsApi

__all__ = ["UIEventsApi"]
