"""What the recorder's tests share: fresh events, recorders made and closed per test, waiting
for state another thread changes, and collecting what ``on_error`` reports."""

from __future__ import annotations

import collections
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from faultserver import FaultServer

from openapi_client import ApiClient, Configuration, EventRecorder, RetryPolicy
from openapi_client.exceptions import OpenApiException
from openapi_client.recorder import RecordedEvent

FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05)
TOKEN = "pk_test_recorder"
WAIT = 10.0
"""Upper bound on any wait for an outcome that should come in milliseconds."""
THREAD_PREFIX = "openapi_client-recorder-"

Failures = list[tuple[RecordedEvent[Any, Any], OpenApiException]]


def offer() -> dict[str, str]:
    """An offer display body with its own UUIDs (the offerUuid tells events apart)."""
    return {
        "leadUuid": str(uuid.uuid4()),
        "rateTableUuid": str(uuid.uuid4()),
        "offerUuid": str(uuid.uuid4()),
    }


def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait for ``condition`` (state another thread changes) to hold; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        pause.wait(0.005)


def assert_stats_add_up(recorder: EventRecorder) -> None:
    """Without a spool every event accepted is sent, failed, dropped or still pending."""
    s = recorder.stats()
    assert s.enqueued == s.sent + s.failed + s.dropped + s.pending, s


def recorder_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)}


class Recorders:
    """Makes recorders (each with its own client) and closes them all after the test."""

    def __init__(self) -> None:
        self._made: list[tuple[EventRecorder, ApiClient]] = []

    def __call__(
        self, url: str, *, token: str = TOKEN, timeout: Any = (2.0, 5.0), **options: Any
    ) -> EventRecorder:
        client = ApiClient(
            Configuration(host=url, access_token=token, retries=FAST, timeout=timeout)
        )
        recorder = EventRecorder(client, **options)
        self._made.append((recorder, client))
        return recorder

    def close_all(self) -> None:
        for recorder, client in self._made:
            recorder.close(timeout=0.5)
            client.close()


def failures_into(
    failures: Failures,
) -> Callable[[RecordedEvent[Any, Any], OpenApiException], None]:
    """An ``on_error`` that appends ``(event, error)`` to ``failures``."""
    lock = threading.Lock()

    def on_error(event: RecordedEvent[Any, Any], error: OpenApiException) -> None:
        with lock:
            failures.append((event, error))

    return on_error


def offer_uuids_received(server: FaultServer) -> collections.Counter[str]:
    """offerUuids of the requests the server answered in full, with how often each came."""
    return collections.Counter(json.loads(r.body)["offerUuid"] for r in server.processed)


def offer_uuids(events: list[RecordedEvent[Any, Any]]) -> collections.Counter[str]:
    return collections.Counter(event.request.offer_uuid for event in events)
