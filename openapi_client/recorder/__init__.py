"""Background recording of UI events: ``EventRecorder`` and what it returns."""

from openapi_client.recorder._event import RecordedEvent
from openapi_client.recorder._recorder import EventRecorder, RecorderStats, read_spool_summary
from openapi_client.recorder._spool import SpoolSummary

__all__ = ["EventRecorder", "RecordedEvent", "RecorderStats", "SpoolSummary", "read_spool_summary"]
