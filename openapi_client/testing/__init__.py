"""Test helpers for applications that use this SDK: a fake Engine server on loopback.

``FakeEngineServer`` needs only the standard library and the SDK's models; the pytest
fixtures (``fake_engine``, ``fake_engine_api``) live in ``openapi_client.testing.pytest_plugin``
(the only module that imports pytest), which pytest loads by itself once the SDK is installed.
"""

from openapi_client.testing.server import (
    CLIENT_TOKEN,
    TRANSPARENT_GIF,
    FakeEngineServer,
    RecordedRequest,
)

__all__ = ["CLIENT_TOKEN", "TRANSPARENT_GIF", "FakeEngineServer", "RecordedRequest"]
