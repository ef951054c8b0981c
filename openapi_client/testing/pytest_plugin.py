"""Pytest fixtures for testing code that calls the Engine UI Events API.

Installed with the SDK, pytest loads this plugin by itself (entry point ``openapi_client``
in the ``pytest11`` group). Without the installed entry point, enable it in a conftest::

    pytest_plugins = ["openapi_client.testing.pytest_plugin"]

Then::

    def test_shows_offer(fake_engine):
        run_my_app(host=fake_engine.url, token="any-token")
        assert len(fake_engine.offer_displays) == 1
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openapi_client.testing.server import FakeEngineServer

__all__ = ["fake_engine"]


@pytest.fixture
def fake_engine() -> Iterator[FakeEngineServer]:
    """A started ``FakeEngineServer`` on a free loopback port, stopped after the test.

    It accepts any non-empty bearer token.
    """
    with FakeEngineServer() as server:
        yield server
