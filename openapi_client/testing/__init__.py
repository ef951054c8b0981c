"""Test helpers for applications that use this SDK: a fake Engine server on loopback.

``FakeEngineServer`` needs only the standard library and the SDK's models; the pytest
fixtures live in ``openapi_client.testing.pytest_plugin`` (the only module that imports
pytest), which pytest loads by itself once the SDK is installed.
"""

from openapi_client.testing.server import TRANSPARENT_GIF, FakeEngineServer, RecordedRequest

__all__ = ["TRANSPARENT_GIF", "FakeEngineServer", "RecordedRequest"]
