"""Pytest fixtures for testing code that calls the Engine UI Events API.

Installed with the SDK, pytest loads this plugin by itself (entry point ``openapi_client``
in the ``pytest11`` group). Without the installed entry point, enable it in a conftest::

    pytest_plugins = ["openapi_client.testing.pytest_plugin"]

Then::

    def test_shows_offer(fake_engine, fake_engine_api):
        show_offer(fake_engine_api, lead, rate_table, offer)  # your code, given the client
        fake_engine.assert_recorded(offer_displays=[{"offer_uuid": offer}])
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openapi_client.api.ui_events_api import UIEventsApi
from openapi_client.testing.server import FakeEngineServer

__all__ = ["fake_engine", "fake_engine_api"]


@pytest.fixture
def fake_engine() -> Iterator[FakeEngineServer]:
    """A started ``FakeEngineServer`` on a free loopback port, stopped after the test.

    It accepts any non-empty bearer token.
    """
    with FakeEngineServer() as server:
        yield server


@pytest.fixture
def fake_engine_api(fake_engine: FakeEngineServer) -> Iterator[UIEventsApi]:
    """A ``UIEventsApi`` on ``fake_engine.client()``: the fake's URL, a token, fast retries.

    Its client is closed after the test; ``fake_engine`` is the same server.
    """
    with fake_engine.client() as api_client:
        yield UIEventsApi(api_client)
