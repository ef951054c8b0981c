"""Background recording of UI events: ``EventRecorder`` and what it returns."""

from openapi_client.recorder._event import RecordedEvent
from openapi_client.recorder._recorder import EventRecorder, RecorderStats

__all__ = ["EventRecorder", "RecordedEvent", "RecorderStats"]
