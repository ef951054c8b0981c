"""One ApiClient shared by many threads: every call succeeds, answers are not mixed up, and the
pool keeps no more connections than its maxsize."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from support import RecordingServer, make_client

from openapi_client import OfferDisplay, UIEventsApi

THREADS = 16
CALLS_PER_THREAD = 50


def _run_threads(api: UIEventsApi) -> list[tuple[dict[str, str], OfferDisplay]]:
    """Each thread sends its own distinct bodies; returns (body sent, answer) pairs."""
    start = threading.Barrier(THREADS)

    def worker(_: int) -> list[tuple[dict[str, str], OfferDisplay]]:
        start.wait(10)
        pairs = []
        for _ in range(CALLS_PER_THREAD):
            body = {
                "leadUuid": str(uuid.uuid4()),
                "rateTableUuid": str(uuid.uuid4()),
                "offerUuid": str(uuid.uuid4()),
            }
            pairs.append((body, api.create_offer_display(body)))
        return pairs

    with ThreadPoolExecutor(THREADS) as executor:
        results = list(executor.map(worker, range(THREADS)))
    return [pair for pairs in results for pair in pairs]


def test_shared_client_serves_many_threads_without_mixing_answers(
    recording_server: RecordingServer,
) -> None:
    with make_client(recording_server, connection_pool_maxsize=THREADS) as client:
        pairs = _run_threads(UIEventsApi(client))

    total = THREADS * CALLS_PER_THREAD
    assert len(pairs) == total
    for body, answer in pairs:
        assert answer.lead_uuid == body["leadUuid"]
        assert answer.rate_table_uuid == body["rateTableUuid"]
        assert answer.offer_uuid == body["offerUuid"]
    requests = recording_server.requests
    assert len(requests) == total
    sent_leads = {r.json()["leadUuid"] for r in requests}
    assert sent_leads == {body["leadUuid"] for body, _ in pairs}
    # Keep-alive: connections are reused, never more than one per thread.
    assert recording_server.connections_opened <= THREADS
    assert len({r.connection for r in requests}) <= THREADS


def test_pool_keeps_at_most_maxsize_connections_open(recording_server: RecordingServer) -> None:
    maxsize = 4
    with make_client(recording_server, connection_pool_maxsize=maxsize) as client:
        pairs = _run_threads(UIEventsApi(client))

        assert len(pairs) == THREADS * CALLS_PER_THREAD
        assert all(answer.lead_uuid == body["leadUuid"] for body, answer in pairs)
        # Connections beyond maxsize are closed after use; the pool keeps at most maxsize.
        assert recording_server.wait_open_connections_at_most(maxsize)
        pool = client._current_state().transport.pool_manager.connection_from_url(
            recording_server.url
        )
        assert pool.num_connections >= 1
        assert pool.pool is not None
        assert pool.pool.qsize() <= maxsize

    assert recording_server.wait_open_connections_at_most(0)
