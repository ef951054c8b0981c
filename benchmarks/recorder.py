"""The EventRecorder's figures, side by side with what a user writes without it.

The baseline everywhere is a ``concurrent.futures.ThreadPoolExecutor`` with as many threads as
the recorder has workers, submitting the SDK's own ``api.create_offer_display(body)``. Both run
in one process, alternating round by round (order flipped each round), each with its own
``ApiClient``. ``run.py`` registers these figures as ``recorder``:

    python benchmarks/run.py --only recorder            # about two minutes
    python benchmarks/run.py --only recorder --smoke    # a few seconds

The memory figure measures in fresh interpreters: this file, run as
``python benchmarks/recorder.py --queued-child VARIANT COUNT [--trace]``, prints one JSON line.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from typing import Any

from run import (
    BODY,
    TOKEN,
    CannedTransport,
    Row,
    Sizes,
    _orders,
    _quiet_gc,
    _ratios,
    _sdk_client,
    _time_calls,
)
from server import start_server

from openapi_client import ApiClient, Configuration, OfferDisplay, UIEventsApi
from openapi_client.api.ui_events_api import CREATE_OFFER_DISPLAY
from openapi_client.recorder import EventRecorder
from openapi_client.rest import HttpRequest, RESTResponse

WORKERS = 4
SLOW_DELAY = 0.020
"""Seconds the server waits before each answer in the delivery-rate figure (ideal: 200/s)."""
FLUSH_TIMEOUT = 120.0
Log = Callable[[str], None]


def figures(sizes: Sizes, log: Log) -> list[Row]:
    """Every recorder figure, in the order of the issue."""
    return (
        figure_record(sizes, log)
        + figure_slow(sizes, log)
        + figure_rate(sizes, log)
        + figure_queued(sizes, log)
    )


# -- setup -----------------------------------------------------------------------------------


@contextmanager
def _recorder(url: str, **options: Any) -> Iterator[EventRecorder]:
    """An ``EventRecorder`` with ``WORKERS`` workers on its own client; closed (flushed) after."""
    client, _ = _sdk_client(url)
    recorder = EventRecorder(client, workers=WORKERS, **options)
    try:
        yield recorder
        _check_delivered(recorder)
    finally:
        recorder.close(timeout=FLUSH_TIMEOUT)
        client.close()


@contextmanager
def _executor(url: str) -> Iterator[tuple[ThreadPoolExecutor, UIEventsApi]]:
    """The hand-written alternative: a pool of ``WORKERS`` threads and the API on its own client."""
    client, api = _sdk_client(url)
    executor = ThreadPoolExecutor(max_workers=WORKERS)
    try:
        yield executor, api
    finally:
        executor.shutdown(wait=True)
        client.close()


def _flush(recorder: EventRecorder) -> None:
    """Wait until every recorded event is delivered; a recorder that cannot is a crash here."""
    if not recorder.flush(timeout=FLUSH_TIMEOUT):
        raise RuntimeError(
            f"EventRecorder did not deliver in {FLUSH_TIMEOUT:g} s: {recorder.stats()}"
        )


def _check_delivered(recorder: EventRecorder) -> None:
    """Over loopback every event must be acknowledged, or the figures measured something else."""
    stats = recorder.stats()
    if stats.failed or stats.dropped or stats.sent != stats.enqueued:
        raise RuntimeError(f"EventRecorder lost events during the benchmark: {stats}")


def _check_answers(futures: list[Future[Any]]) -> None:
    """Every executor call succeeded, and the answer is the model (the baseline did real work)."""
    for future in futures:
        future.result()  # raises the call's error, if any
    if futures:
        assert isinstance(futures[-1].result(), OfferDisplay), futures[-1].result()


# -- figures 1 and 2: the cost of one record in the caller's thread ---------------------------


def _record_block(recorder: EventRecorder, count: int) -> tuple[list[float], float]:
    """Seconds each of ``count`` ``record_offer_display`` calls took, and the caller's thread
    CPU per call; then wait for delivery, so each block starts with an empty queue."""
    took = []
    clock = time.perf_counter
    with _quiet_gc():
        cpu = time.thread_time()
        for _ in range(count):
            start = clock()
            recorder.record_offer_display(BODY)
            took.append(clock() - start)
        cpu = time.thread_time() - cpu
    _flush(recorder)
    return took, cpu / count


def _submit_block(
    executor: ThreadPoolExecutor, api: UIEventsApi, count: int
) -> tuple[list[float], float]:
    """The same for ``executor.submit(api.create_offer_display, body)``."""
    took = []
    futures = []
    clock = time.perf_counter
    with _quiet_gc():
        cpu = time.thread_time()
        for _ in range(count):
            start = clock()
            future = executor.submit(api.create_offer_display, BODY)
            took.append(clock() - start)
            futures.append(future)
        cpu = time.thread_time() - cpu
    wait(futures)
    _check_answers(futures)
    return took, cpu / count


def _percentiles(samples: list[float]) -> dict[int, float]:
    """p50, p90 and p99 of one round's samples, in µs."""
    cuts = statistics.quantiles(samples, n=100)
    return {p: cuts[p - 1] * 1e6 for p in (50, 90, 99)}


def figure_record(sizes: Sizes, log: Log) -> list[Row]:
    """Each call timed on its own, in blocks of ``record_block`` with a flush after each block."""
    log(f"recorder: one record_offer_display(dict) vs executor.submit, loopback, {WORKERS} "
        f"workers delivering; memory and spool")  # fmt: skip
    with ExitStack() as stack:
        server = stack.enter_context(start_server())
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-spool-"))
        memory = stack.enter_context(_recorder(server.url))
        spooled = stack.enter_context(
            _recorder(server.url, spool=os.path.join(folder, "events.db"))
        )
        executor, api = stack.enter_context(_executor(server.url))
        blocks: dict[str, Callable[[int], tuple[list[float], float]]] = {
            "memory": lambda n: _record_block(memory, n),
            "spool": lambda n: _record_block(spooled, n),
            "executor": lambda n: _submit_block(executor, api, n),
        }
        for block in blocks.values():  # warm-up: threads, connections, the spool file
            block(sizes.record_block)
        rounds: dict[str, list[dict[int, float]]] = {name: [] for name in blocks}
        cpu: dict[str, list[float]] = {name: [] for name in blocks}
        validate: list[float] = []
        for order in _orders(sizes.rounds, [*blocks, "validate"]):
            for name in order:
                if name == "validate":
                    calls = 10 * sizes.record_block
                    validate.append(_time_calls(lambda: CREATE_OFFER_DISPLAY.validate(BODY), calls)[0])  # fmt: skip
                    continue
                took: list[float] = []
                seconds = 0.0
                for _ in range(sizes.record_blocks):
                    block_took, block_cpu = blocks[name](sizes.record_block)
                    took += block_took
                    seconds += block_cpu / sizes.record_blocks
                rounds[name].append(_percentiles(took))
                cpu[name].append(seconds * 1e6)

    def pick(name: str, p: int) -> list[float]:
        return [percentiles[p] for percentiles in rounds[name]]

    mem50, mem99, ex50, ex99 = pick("memory", 50), pick("memory", 99), pick("executor", 50), pick("executor", 99)  # fmt: skip
    ratio50 = _ratios(mem50, ex50)
    spool50 = pick("spool", 50)
    block = f"blocks of {sizes.record_block}"
    return [
        Row(f"recorder: record_offer_display(dict) p50 in the caller's thread vs executor.submit("
            f"api.create_offer_display, body), {WORKERS} threads, loopback, {block}", "µs",
            mem50, ex50, ratio50, goal="<= 0.50x", met=statistics.median(ratio50) <= 0.50),
        Row("  same, p99", "µs", mem99, ex99, _ratios(mem99, ex99)),
        Row("  same, the caller's thread CPU per call (thread_time over each block)", "µs",
            cpu["memory"], cpu["executor"], _ratios(cpu["memory"], cpu["executor"])),
        Row("  part of every record: validating the dict (Endpoint.validate), no threads busy",
            "µs", validate),
        Row("recorder with a spool (SQLite file in the temp folder): record_offer_display(dict) "
            "p50, vs executor.submit", "µs", spool50, ex50, _ratios(spool50, ex50),
            goal="<= 60 µs", met=statistics.median(spool50) <= 60.0),
        Row("  same, p90", "µs", pick("spool", 90), pick("executor", 90),
            _ratios(pick("spool", 90), pick("executor", 90))),
        Row("  same, p99", "µs", pick("spool", 99), ex99, _ratios(pick("spool", 99), ex99)),
    ]  # fmt: skip


# -- figures 3 and 4: delivery rate ---------------------------------------------------------


def _recorded_rate(recorder: EventRecorder, count: int) -> float:
    """Events per second from the first record to the end of the flush that delivered them."""
    with _quiet_gc():
        start = time.perf_counter()
        for _ in range(count):
            recorder.record_offer_display(BODY)
        _flush(recorder)
        elapsed = time.perf_counter() - start
    return count / elapsed


def _submitted_rate(executor: ThreadPoolExecutor, api: UIEventsApi, count: int) -> float:
    """The same with the executor: submit ``count`` calls, wait for all of them."""
    with _quiet_gc():
        start = time.perf_counter()
        futures = [executor.submit(api.create_offer_display, BODY) for _ in range(count)]
        wait(futures)
        elapsed = time.perf_counter() - start
    _check_answers(futures)
    return count / elapsed


def _sequential_rate(api: UIEventsApi, count: int) -> float:
    """The synchronous client in a plain loop, one call after the other."""
    with _quiet_gc():
        start = time.perf_counter()
        for _ in range(count):
            api.create_offer_display(BODY)
        elapsed = time.perf_counter() - start
    return count / elapsed


def _rates(variants: dict[str, Callable[[int], float]], rounds: int, count: int,
           warm: int) -> dict[str, list[float]]:  # fmt: skip
    """Per-round rates of every variant, interleaved, after one unmeasured warm-up each."""
    for variant in variants.values():
        variant(warm)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for order in _orders(rounds, list(variants)):
        for name in order:
            rates[name].append(variants[name](count))
    return rates


def figure_slow(sizes: Sizes, log: Log) -> list[Row]:
    """Delivery rate when each answer takes ``SLOW_DELAY``: the workers' concurrency is the rate."""
    ideal = WORKERS / SLOW_DELAY
    log(f"recorder: delivery rate, server +{SLOW_DELAY * 1000:g} ms per answer, {WORKERS} workers "
        f"vs ThreadPoolExecutor({WORKERS}) (ideal {ideal:g}/s)")  # fmt: skip
    with ExitStack() as stack:
        server = stack.enter_context(start_server(delay=SLOW_DELAY))
        recorder = stack.enter_context(_recorder(server.url))
        executor, api = stack.enter_context(_executor(server.url))
        rates = _rates(
            {"recorder": lambda n: _recorded_rate(recorder, n),
             "executor": lambda n: _submitted_rate(executor, api, n)},
            sizes.thread_rounds, sizes.slow_events, warm=2 * WORKERS,
        )  # fmt: skip
    rec, ex = rates["recorder"], rates["executor"]
    ratio = _ratios(rec, ex)
    return [
        Row(f"recorder: delivery rate, server +{SLOW_DELAY * 1000:g} ms per answer, {WORKERS} "
            f"workers vs ThreadPoolExecutor({WORKERS}), {sizes.slow_events} events (record, "
            f"flush)", "/s", rec, ex, ratio, goal=">= 0.95x", met=statistics.median(ratio) >= 0.95),
        Row(f"  fraction of the ideal workers / latency ({ideal:g}/s), recorder vs executor", "x",
            [r / ideal for r in rec], [e / ideal for e in ex], ratio),
    ]  # fmt: skip


def figure_rate(sizes: Sizes, log: Log) -> list[Row]:
    """Delivery rate over loopback without delay, against the synchronous client in a loop."""
    log(f"recorder: delivery rate on loopback, {WORKERS} workers vs a sequential loop of "
        f"create_offer_display and ThreadPoolExecutor({WORKERS})")  # fmt: skip
    with ExitStack() as stack:
        server = stack.enter_context(start_server())
        recorder = stack.enter_context(_recorder(server.url))
        executor, pool_api = stack.enter_context(_executor(server.url))
        client, api = _sdk_client(server.url)
        stack.callback(client.close)
        rates = _rates(
            {"recorder": lambda n: _recorded_rate(recorder, n),
             "sequential": lambda n: _sequential_rate(api, n),
             "executor": lambda n: _submitted_rate(executor, pool_api, n)},
            sizes.rounds, sizes.rate_events, warm=max(20, sizes.rate_events // 10),
        )  # fmt: skip
    rec, seq, ex = rates["recorder"], rates["sequential"], rates["executor"]
    return [
        Row(f"recorder: delivery rate on loopback ({sizes.rate_events} events: record, flush), "
            f"{WORKERS} workers vs a sequential loop of create_offer_display", "/s", rec, seq,
            _ratios(rec, seq), goal="(no goal set)"),
        Row(f"  ThreadPoolExecutor({WORKERS}) submitting create_offer_display, vs the same loop",
            "/s", ex, seq, _ratios(ex, seq)),
        Row(f"  recorder vs ThreadPoolExecutor({WORKERS})", "/s", rec, ex, _ratios(rec, ex)),
    ]  # fmt: skip


# -- figure 5: memory held by queued events, in fresh interpreters -----------------------------


class GatedTransport:
    """Holds every send until ``release()``, then answers with run.py's canned 201 (benchmark
    only). With every worker held, what is recorded next waits in the queue: the state this
    figure measures. No socket is involved, so nothing times out while it is measured.
    """

    def __init__(self) -> None:
        self._open = threading.Event()
        self._entered = threading.Semaphore(0)
        self._canned = CannedTransport()
        self._lock = threading.Lock()
        self.answered = 0

    def send(self, request: HttpRequest, deadline: float) -> RESTResponse:
        self._entered.release()
        self._open.wait()
        with self._lock:  # one answer built per send, so none sits in memory while measured
            self._canned.load(1)
            self.answered += 1
            return self._canned.send(request, deadline)

    def wait_busy(self, senders: int) -> None:
        """Wait until ``senders`` threads are held inside ``send``."""
        for _ in range(senders):
            if not self._entered.acquire(timeout=30):
                raise RuntimeError("the workers never started sending")

    def release(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._open.set()


def _fresh_body(number: int) -> dict[str, str]:
    """A new dict with new strings per event, as an application builds them."""
    return {
        "leadUuid": f"{number & 0xFFFFFFFF:08x}-a64f-51d8-b882-ff508a8c5c81",
        "rateTableUuid": BODY["rateTableUuid"],
        "offerUuid": f"a1b2c3d4-e5f6-4a7b-8c9d-{number & 0xFFFFFFFFFFFF:012x}",
    }


def _rss_bytes() -> int:
    """Resident set size now (Linux ``/proc/self/statm``); -1 where there is none."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return -1


def queued_child(variant: str, count: int, trace: bool) -> dict[str, float]:
    """In this (fresh) process: hold every worker, queue ``count`` events, measure what they hold.

    ``trace`` measures with tracemalloc (bytes per event); without it, RSS before and after
    (tracemalloc's own bookkeeping would inflate RSS, so the two are separate runs).
    """
    transport = GatedTransport()
    client = ApiClient(
        Configuration(host="http://127.0.0.1:9", access_token=TOKEN), transport=transport
    )
    api = UIEventsApi(client)
    with tempfile.TemporaryDirectory(prefix="bench-spool-") as folder:
        recorder: EventRecorder | None = None
        executor: ThreadPoolExecutor | None = None
        if variant == "executor":
            executor = ThreadPoolExecutor(max_workers=WORKERS)
            submit: Callable[[dict[str, str]], object] = functools.partial(
                executor.submit, api.create_offer_display
            )
        else:
            spool = os.path.join(folder, "events.db") if variant == "spool" else None
            recorder = EventRecorder(client, workers=WORKERS, spool=spool)
            submit = recorder.record_offer_display
        for number in range(WORKERS):  # one event in every worker's hands, held there
            submit(_fresh_body(-1 - number))
        transport.wait_busy(WORKERS)
        gc.collect()
        if trace:
            tracemalloc.start()
        traced0, rss0 = tracemalloc.get_traced_memory()[0], _rss_bytes()
        for number in range(count):
            submit(_fresh_body(number))  # the handle is dropped: only the queue holds it
        gc.collect()
        traced1, rss1 = tracemalloc.get_traced_memory()[0], _rss_bytes()
        tracemalloc.stop()
        transport.release()
        if recorder is not None:
            _flush(recorder)
            _check_delivered(recorder)
            recorder.close()
        if executor is not None:
            executor.shutdown(wait=True)
        if transport.answered != count + WORKERS:
            raise RuntimeError(f"{transport.answered} of {count + WORKERS} events delivered")
    return {
        "bytes_per_event": (traced1 - traced0) / count,
        "rss_before": rss0 / 2**20,
        "rss_after": rss1 / 2**20,
    }


def _run_child(variant: str, count: int, trace: bool) -> dict[str, float]:
    command = [sys.executable, os.path.abspath(__file__), "--queued-child", variant, str(count)]
    done = subprocess.run(
        command + (["--trace"] if trace else []),
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def figure_queued(sizes: Sizes, log: Log) -> list[Row]:
    """Memory per queued event (tracemalloc) and RSS with ``queued_events`` queued."""
    count = sizes.queued_events
    log(f"recorder: memory with {count:,} events queued, {WORKERS} workers held, fresh "
        f"interpreters (recorder, recorder with spool, executor)")  # fmt: skip
    names = ["recorder", "spool", "executor"]
    per_event: dict[str, list[float]] = {name: [] for name in names}
    rss: dict[str, list[float]] = {name: [] for name in names}
    growth: dict[str, list[float]] = {name: [] for name in names}
    for order in _orders(sizes.queued_rounds, names):
        for name in order:
            per_event[name].append(_run_child(name, count, trace=True)["bytes_per_event"])
            measured = _run_child(name, count, trace=False)
            rss[name].append(measured["rss_after"])
            growth[name].append(measured["rss_after"] - measured["rss_before"])

    def delta(name: str, samples: dict[str, list[float]]) -> list[float]:
        return [a - b for a, b in zip(samples[name], samples["executor"], strict=True)]

    rows = [
        Row(f"recorder: memory held per queued event (tracemalloc, {count:,} queued, {WORKERS} "
            f"workers held) vs ThreadPoolExecutor({WORKERS}) work items", "B",
            per_event["recorder"], per_event["executor"],
            _ratios(per_event["recorder"], per_event["executor"]), goal="(no goal set)"),
        Row(f"  RSS with {count:,} events queued, vs executor", "MiB", rss["recorder"],
            rss["executor"], delta("recorder", rss), compare_kind="delta"),
        Row(f"  RSS growth while queuing the {count:,}, vs executor", "MiB", growth["recorder"],
            growth["executor"], delta("recorder", growth), compare_kind="delta"),
        Row("  with a spool: memory held per queued event, vs executor", "B", per_event["spool"],
            per_event["executor"], _ratios(per_event["spool"], per_event["executor"])),
        Row(f"  with a spool: RSS with {count:,} events queued, vs executor", "MiB", rss["spool"],
            rss["executor"], delta("spool", rss), compare_kind="delta"),
    ]  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The memory figure's child process.")
    parser.add_argument("--queued-child", nargs=2, metavar=("VARIANT", "COUNT"), required=True,
                        help="recorder, spool or executor; events to queue")  # fmt: skip
    parser.add_argument("--trace", action="store_true", help="measure with tracemalloc")
    args = parser.parse_args(argv)
    variant, count = args.queued_child
    if variant not in ("recorder", "spool", "executor"):
        parser.error(f"unknown variant {variant!r}")
    print(json.dumps(queued_child(variant, int(count), args.trace)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
