"""Where ``EventRecorder.record_offer_display(dict)`` spends the caller's time.

Records go to the loopback server in blocks of 500 with a flush after each block, as in the
``recorder`` figures; only the caller's thread is profiled (cProfile follows the thread that
enables it). Run from the repository root:

    python benchmarks/profile_recorder.py                 # top 20 by tottime, 20 000 records
    python benchmarks/profile_recorder.py --executor      # executor.submit, for comparison
    python benchmarks/profile_recorder.py --spool         # with a spool, and its lock waits
    python benchmarks/profile_recorder.py --parts         # the record path's parts, timed alone

``--spool`` also wraps the spool's internal lock (``Spool._lock``, benchmark only) to show how
long the caller waits for it and how long workers hold it; if that internal moves it says so.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from recorder import WORKERS, GatedTransport
from run import BODY, TOKEN, _orders, _sdk_client, _time_calls
from server import start_server

from openapi_client import ApiClient, Configuration, UIEventsApi
from openapi_client.recorder import EventRecorder

BLOCK = 500


class TimedLock:
    """A ``threading.Lock`` that notes how long the caller waited for it and how long each
    thread held it (caller: the record path; workers: delivery's deletes, claims)."""

    def __init__(self, caller: int) -> None:
        self._lock = threading.Lock()
        self._caller = caller
        self._since = 0.0
        self.waits: list[float] = []
        self.held: dict[str, list[float]] = {"caller": [], "workers": []}

    def __enter__(self) -> None:
        start = time.perf_counter()
        self._lock.acquire()
        self._since = time.perf_counter()
        if threading.get_ident() == self._caller:
            self.waits.append(self._since - start)

    def __exit__(self, *exc_info: object) -> None:
        held = time.perf_counter() - self._since
        self._lock.release()
        who = "caller" if threading.get_ident() == self._caller else "workers"
        self.held[who].append(held)


def _quantiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100)
    return ", ".join(f"p{p} {cuts[p - 1] * 1e6:.1f} µs" for p in (50, 90, 99))


def parts(rounds: int = 11, calls: int = BLOCK) -> int:
    """CPU per call of ``record_offer_display(dict)``, ``executor.submit`` and the record path's
    parts, each alone: every worker held (no thread competes), no network, rounds interleaved."""
    from openapi_client.api.ui_events_api import CREATE_OFFER_DISPLAY
    from openapi_client.recorder._event import OFFER_DISPLAY, RecordedEvent

    transport = GatedTransport()
    client = ApiClient(
        Configuration(host="http://127.0.0.1:9", access_token=TOKEN), transport=transport
    )
    api = UIEventsApi(client)
    recorder = EventRecorder(client, workers=WORKERS, max_queue=10**6)
    executor = ThreadPoolExecutor(max_workers=WORKERS)
    for _ in range(WORKERS):  # every thread on both sides held inside send
        recorder.record_offer_display(BODY)
        executor.submit(api.create_offer_display, BODY)
    transport.wait_busy(2 * WORKERS)
    model = CREATE_OFFER_DISPLAY.validate(BODY)
    variants: dict[str, Callable[[], object]] = {
        "record_offer_display(dict)": lambda: recorder.record_offer_display(BODY),
        "executor.submit(api.create_offer_display, body)": (
            lambda: executor.submit(api.create_offer_display, BODY)
        ),
        "  part: Endpoint.validate(dict)": lambda: CREATE_OFFER_DISPLAY.validate(BODY),
        "  part: RecordedEvent(kind, model, time.time())": (
            lambda: RecordedEvent(OFFER_DISPLAY, model, time.time())
        ),
        "  for comparison: concurrent.futures.Future()": Future,
    }
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for order in _orders(rounds, list(variants)):
        for name in order:
            cpu[name].append(_time_calls(variants[name], calls)[1])
    transport.release()
    recorder.close(60)
    executor.shutdown()
    med = {name: statistics.median(samples) for name, samples in cpu.items()}
    print(f"CPU per call, µs, median of {rounds} interleaved rounds of {calls} calls; every "
          f"worker held, so no other thread runs\n")  # fmt: skip
    for name, value in med.items():
        low, high = min(cpu[name]), max(cpu[name])
        print(f"{value:6.2f}  [{low:.2f}–{high:.2f}]  {name}")
    names = list(med)
    rest = med[names[0]] - med[names[2]] - med[names[3]]
    print(f"{rest:6.2f}  (medians)       the rest of record_offer_display: _accept's own work")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--sort", default="tottime", help="a pstats sort key (default tottime)")
    parser.add_argument("--limit", type=int, default=20, help="functions to print (default 20)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--spool", action="store_true", help="the recorder with a spool file")
    what.add_argument("--executor", action="store_true", help="ThreadPoolExecutor.submit instead")
    what.add_argument("--parts", action="store_true", help="time the record path's parts alone")
    args = parser.parse_args(argv)
    if args.parts:
        return parts()
    profiler = cProfile.Profile()
    took: list[float] = []
    lock: TimedLock | None = None

    with start_server() as server, tempfile.TemporaryDirectory(prefix="bench-spool-") as folder:
        client, api = _sdk_client(server.url)
        record: Callable[[], object]
        settle: Callable[[list[Any]], object]
        if args.executor:
            executor = ThreadPoolExecutor(max_workers=WORKERS)
            record = lambda: executor.submit(api.create_offer_display, BODY)  # noqa: E731
            settle = wait
        else:
            spool = os.path.join(folder, "events.db") if args.spool else None
            recorder = EventRecorder(client, workers=WORKERS, spool=spool)
            record = lambda: recorder.record_offer_display(BODY)  # noqa: E731
            settle = lambda _: recorder.flush(60)  # noqa: E731

        def block(profiled: bool) -> None:
            handles = []
            for _ in range(BLOCK):
                start = time.perf_counter()
                if profiled:
                    profiler.enable()
                handles.append(record())
                if profiled:
                    profiler.disable()
                took.append(time.perf_counter() - start)
            settle(handles)

        block(profiled=False)  # warm-up: threads, connection, spool file
        if args.spool:
            inner = getattr(recorder, "_spool", None)
            if inner is not None and hasattr(inner, "_lock"):
                lock = inner._lock = TimedLock(threading.get_ident())
            else:
                print("(the spool's lock moved: no lock figures)")
        took.clear()
        for _ in range(max(1, args.records // BLOCK)):
            block(profiled=True)
        if args.executor:
            executor.shutdown()
        else:
            recorder.close()
        client.close()

    what_ = "executor.submit" if args.executor else "record_offer_display"
    where = " with a spool" if args.spool else ""
    print(f"{what_}(dict){where} x {len(took)}, loopback, {WORKERS} threads delivering")
    print(f"per call, timed around the profiler too: {_quantiles(took)}")
    if lock is not None and lock.waits:
        total = sum(took)
        print(f"caller waiting for the spool's lock: {sum(lock.waits) / total:.0%} of the time in "
              f"record; per record {_quantiles(lock.waits)}")  # fmt: skip
        for who, held in lock.held.items():
            if len(held) > 1:
                print(f"lock held by the {who} ({len(held)} times): {_quantiles(held)}")
    print("(cProfile adds its own cost per function call: compare shares, not absolute µs)\n")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats(args.sort).print_stats(args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
