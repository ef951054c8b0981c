"""One client shared by 16 threads for thousands of calls: every call accounted for, nothing leaks.

The fake Engine runs in a child process, so the numbers measured here (file descriptors,
threads, resident memory) are the client's alone. They are written to ``test/.soak.txt`` and
to the test report (``record_property``).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psutil
import pytest
from samples import LEAD, OFFER_BODY

from openapi_client import (
    ApiClient,
    Configuration,
    OfferDisplay,
    RetryPolicy,
    SessionInit,
    UIEventsApi,
)

THREADS = 16
WARM_UP_CALLS = 200
RSS_GROWTH_LIMIT = 30 * 1024 * 1024
FD_SLACK = 4
REPORT = pathlib.Path(__file__).with_name(".soak.txt")

_SERVER = """
import sys
from openapi_client.testing import FakeEngineServer

with FakeEngineServer(token=sys.argv[1]) as engine:
    print(engine.url, flush=True)
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        counts = (len(engine.requests), len(engine.session_inits), len(engine.offer_displays))
        print(*counts, flush=True)
"""


class EngineProcess:
    """The fake Engine in a child process; ``counts()`` asks it what it received."""

    def __init__(self, token: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "ENGINE_API_HOST"}
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SERVER, token],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"the fake Engine did not start (said {self.url!r})")

    def counts(self) -> tuple[int, int, int]:
        """(requests, session inits, offer displays) received so far."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write("count\n")
        self._process.stdin.flush()
        requests, sessions, offers = self._process.stdout.readline().split()
        return int(requests), int(sessions), int(offers)

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()


@pytest.fixture(scope="module", autouse=True)
def _fresh_report() -> None:
    REPORT.unlink(missing_ok=True)


@pytest.fixture
def token() -> str:
    return f"pk_soak_{uuid.uuid4().hex}"


@pytest.fixture
def engine(token: str) -> Iterator[EngineProcess]:
    process = EngineProcess(token)
    try:
        yield process
    finally:
        process.stop()


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: int = 0
    offers: int = 0
    ids: set[int] = field(default_factory=set)
    failures: list[BaseException] = field(default_factory=list)


def _worker(api: UIEventsApi, calls: int, start: threading.Barrier, tally: Tally) -> None:
    sessions = offers = 0
    ids = []
    failures: list[BaseException] = []
    start.wait()
    for index in range(calls):
        try:
            if index % 2:
                display = api.create_offer_display(OFFER_BODY)
                assert isinstance(display, OfferDisplay)
                assert display.lead_uuid == LEAD
                offers += 1
                ids.append(display.id)
            else:
                session = api.create_session_init()
                assert isinstance(session, SessionInit)
                sessions += 1
                ids.append(session.id)
        except BaseException as error:  # counted and reported by the test
            failures.append(error)
    with tally.lock:
        tally.sessions += sessions
        tally.offers += offers
        tally.ids.update(ids)
        tally.failures.extend(failures)


def _soak(
    engine: EngineProcess, token: str, total_calls: int, record: Callable[[str, object], None]
) -> None:
    process = psutil.Process()
    fds_before = process.num_fds()
    threads_before = threading.active_count()

    config = Configuration(
        host=engine.url,
        access_token=token,
        connection_pool_maxsize=THREADS,
        retries=RetryPolicy(max_retries=0),  # every failure must show, not be retried away
    )
    client = ApiClient(config)
    api = UIEventsApi(client)
    warm_up = Tally()
    _worker(api, WARM_UP_CALLS, threading.Barrier(1), warm_up)
    assert warm_up.failures == []
    rss_before = process.memory_info().rss

    tally = Tally()
    start = threading.Barrier(THREADS)
    per_thread = total_calls // THREADS
    workers = [
        threading.Thread(target=_worker, args=(api, per_thread, start, tally), name=f"soak-{i}")
        for i in range(THREADS)
    ]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=600)
    elapsed = time.monotonic() - started
    assert not any(worker.is_alive() for worker in workers)
    rss_after = process.memory_info().rss
    fds_during = process.num_fds()
    client.close()
    fds_after = process.num_fds()
    threads_after = threading.active_count()
    requests, sessions, offers = engine.counts()

    calls = per_thread * THREADS
    numbers = {
        "calls": calls,
        "threads": THREADS,
        "elapsed_s": round(elapsed, 2),
        "calls_per_s": round(calls / elapsed),
        "rss_before_mib": round(rss_before / 2**20, 1),
        "rss_after_mib": round(rss_after / 2**20, 1),
        "rss_growth_mib": round((rss_after - rss_before) / 2**20, 1),
        "fds_before": fds_before,
        "fds_with_pool_open": fds_during,
        "fds_after_close": fds_after,
        "threads_before": threads_before,
        "threads_after": threads_after,
        "server_requests": requests,
    }
    for name, value in numbers.items():
        record(name, value)
    with REPORT.open("a") as report:  # emptied when the module starts
        report.write(f"soak {calls} calls\n" + "".join(f"{k}: {v}\n" for k, v in numbers.items()))

    assert tally.failures == [], f"{len(tally.failures)} failed calls, first: {tally.failures[0]!r}"
    assert tally.sessions + tally.offers == calls
    assert requests == calls + WARM_UP_CALLS  # every call reached the server exactly once
    assert sessions == tally.sessions + warm_up.sessions
    assert offers == tally.offers + warm_up.offers
    assert len(tally.ids) == calls  # no answer was handed to two callers
    assert fds_during <= fds_before + THREADS + FD_SLACK  # at most one socket per pool slot
    assert fds_after <= fds_before + FD_SLACK
    assert threads_after == threads_before
    assert rss_after - rss_before < RSS_GROWTH_LIMIT


def test_shared_client_survives_10000_calls_from_16_threads(
    engine: EngineProcess, token: str, record_property: Callable[[str, object], None]
) -> None:
    _soak(engine, token, 10_000, record_property)


@pytest.mark.slow
def test_shared_client_survives_50000_calls_from_16_threads(
    engine: EngineProcess, token: str, record_property: Callable[[str, object], None]
) -> None:
    _soak(engine, token, 50_000, record_property)
