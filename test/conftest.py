"""Shared fixtures: a recording loopback server and clients pointed at it, raw-socket fault
servers, and the recorder tests' recorders and fake Engine."""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # so tests can `import support`

from faultserver import FaultServers
from recorder_support import TOKEN as RECORDER_TOKEN
from recorder_support import Recorders
from support import RecordingServer, make_client

from openapi_client import ApiClient, Configuration, UIEventsApi
from openapi_client.testing import FakeEngineServer


@pytest.fixture
def recording_server() -> Iterator[RecordingServer]:
    """A started ``RecordingServer`` on a free 127.0.0.1 port, stopped after the test."""
    with RecordingServer() as server:
        yield server


@pytest.fixture
def servers() -> Iterator[FaultServers]:
    """Start raw-socket ``FaultServer``s with ``servers(*script, then=...)``; all stopped after."""
    started = FaultServers()
    yield started
    started.stop_all()


@pytest.fixture
def recorders() -> Iterator[Recorders]:
    """Make ``EventRecorder``s with ``recorders(url, **options)``; all closed after the test."""
    made = Recorders()
    yield made
    made.close_all()


@pytest.fixture
def engine() -> Iterator[FakeEngineServer]:
    """The recorder tests' fake Engine: a started ``FakeEngineServer`` that takes only their
    token (``recorder_support.TOKEN``, the one ``recorders`` configures)."""
    with FakeEngineServer(token=RECORDER_TOKEN) as server:
        yield server


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Lets ``held`` requests through; set at teardown too, so nothing stays held."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def client(recording_server: RecordingServer) -> Iterator[ApiClient]:
    """An ``ApiClient`` pointed at ``recording_server`` with retries off; closed after the test."""
    with make_client(recording_server, retries=0) as api_client:
        yield api_client


@pytest.fixture
def api(client: ApiClient) -> UIEventsApi:
    """``UIEventsApi`` over ``client``."""
    return UIEventsApi(client)


@pytest.fixture(autouse=True)
def _restore_global_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo what a test may change globally: default config/client, logger levels, $ENGINE_API_HOST."""
    monkeypatch.delenv("ENGINE_API_HOST", raising=False)
    saved_config, saved_client = Configuration._default, ApiClient._default
    loggers = [logging.getLogger(name) for name in ("openapi_client", "urllib3")]
    saved = [(logger, logger.level, list(logger.handlers)) for logger in loggers]
    yield
    Configuration._default, ApiClient._default = saved_config, saved_client
    if any(logger.level != level for logger, level, _ in saved):
        # A Configuration with ``debug`` on that the test left as garbage (in a reference
        # cycle) still counts as a user of debug logging until it is collected. Collect it
        # now, so that its finaliser switches debug off; else a later test's ``debug=True``
        # finds debug already on, with the levels reset below, and nothing is logged.
        gc.collect()
    for logger, level, handlers in saved:
        logger.setLevel(level)
        for handler in logger.handlers:
            if handler not in handlers:
                logger.removeHandler(handler)
                handler.close()
