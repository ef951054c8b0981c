"""EventRecorder delivery throughput against a slow API: two trees and a plain executor, one run.

What it measures: how many events per second ``EventRecorder`` (made with its DEFAULT settings,
only the client given) delivers to a loopback API that answers after a set latency, when the
application offers events at a steady rate; what it costs the process (threads, CPU per
delivered event); what is lost or duplicated; how it rides out a latency step, drains a spooled
backlog, and what an interpreter exit costs. Three variants per scenario:

- ``before``: the recorder of ``--before TREE`` (a checkout containing ``openapi_client/``),
- ``after``: the recorder of ``--after TREE`` (default: this repository),
- ``executor``: ``concurrent.futures.ThreadPoolExecutor(64)`` around the synchronous
  ``UIEventsApi(client).create_offer_display(body)`` (the client's default retries, no more),
  with the ``--after`` tree's package.

Run from the repository root with the project's Python:

    python benchmarks/recorder_throughput.py --before /work/base --after .   # ~15 min
    python benchmarks/recorder_throughput.py --before A --after B --smoke     # < 1 min
    python benchmarks/recorder_throughput.py --before A --only 20ms-500,limit16 --seconds 5 \\
        --json out.json

How: every scenario starts a fresh API process (server.py with ``control=True``: asyncio,
HTTP/1.1 keep-alive, 201 with the canned ``OfferDisplay`` after the latency, counting statuses,
the peak of requests handled at once and every ``offerUuid`` answered with a 201). The variants
then run one after another, each in its own interpreter with ``PYTHONPATH`` set to its tree only
(the other ``PYTHON*`` variables dropped, ``-s``; the child checks that ``openapi_client`` comes
from that tree), after the server's counts are reset. Every event carries fresh uuid4s, so the
server can tell lost and duplicated events apart.

Scenarios (``--only`` takes these names):

- ``20ms-500``, ``100ms-200``, ``100ms-500``, ``300ms-200``: the latency and the offered
  rate. A pacing loop records events on an absolute schedule for ``--seconds`` (10); at the
  window's end the child reads the server's counts and its own (delivered in the window,
  backlog = recorder ``stats().pending`` or executor submitted - completed), its CPU over the
  window (``time.process_time``, all threads) and the peak of ``threading.active_count()``
  (sampled every 50 ms, the main and sampler threads included). Then it flushes (the executor:
  waits) up to 30 s and closes; lost = offered - distinct offerUuids answered 201, duplicates =
  offerUuids answered 201 more than once, counted at the server once it has nothing in flight.
- ``limit16``: 100 ms, 200/s offered, the server answers ``503`` + ``Retry-After: 1`` at once
  above 16 requests at a time; delivered/s is also given against what the API can take,
  16 / 0.1 s = 160/s.
- ``step``: 100/s for 30 s at 100 ms; from 5 s to 15 s the latency is 2000 ms (the child asks
  the server, ``POST /_bench/latency``). Reported: peak threads and server concurrency, peak
  backlog, the time after the step ends until a whole 1 s bucket delivers >= 95 % of the
  offered rate with the backlog <= 100 at its end (1 s resolution; within the window only),
  when the backlog is <= 100 again (the flush included), lost and duplicates after a flush of
  up to 60 s.
- ``spool-drain``: the tree's own recorder records 100,000 events into a spool while its API
  is a socket nobody accepts on, then is SIGKILLed; a new ``EventRecorder(client, spool=path)``
  drains the file to the API at 50 ms, while new events are recorded at 50/s, until
  ``stats().spooled == 0`` or 60 s. Reported: events sent per second (backlog and new), how
  fast the backlog shrank, ``stats().concurrency_limit`` where the tree has it and the rate it
  allows (limit / 0.05 s), and ``record_offer_display`` p50/p99 during the drain against the
  same at 50/s on an idle recorder (a spool file of its own, before the drain, same child).
  No executor variant.
- ``exit-1000``: 20 ms, no spool: the child records 1,000 events as fast as it can and returns
  from main (the recorder's exit handler has its default ``exit_timeout``, 2 s; the executor's
  own exit hook joins its threads). Lost = 1,000 - distinct offerUuids the server answered 201;
  also the wall time from the last record to the end of the process.

Once per run: the synchronous client's CPU per call (sequential ``create_offer_display`` over
loopback, 0 ms latency, ``--after`` tree), to hold CPU per delivered event against.

``--smoke`` shrinks everything (1 s windows, short flushes, a 1,000-event spool) and its
numbers mean nothing. A child that fails is a row saying why; the run goes on. Exit status 0
unless the parent itself crashes.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import server as api_server
from recorder_durability import tree_label

HERE = Path(__file__).resolve()
TOKEN = "pk_bench"
EXECUTOR_THREADS = 64
VARIANTS = ("before", "after", "executor")
SAMPLE_PERIOD = 0.05
"""Thread count sampled this often; delivered and backlog every ``SAMPLE_EVERY`` samples."""
SAMPLE_EVERY = 20
RECOVERED_SHARE = 0.95
RECOVERED_BACKLOG = 100


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "rate" (also the step), "drain" or "exit"
    latency_ms: float
    rate: float = 0.0
    limit: int = 0
    step: bool = False
    title: str = ""


SCENARIOS = [
    Scenario("20ms-500", "rate", 20, 500, title="latency 20 ms, offered 500/s"),
    Scenario("100ms-200", "rate", 100, 200, title="latency 100 ms, offered 200/s"),
    Scenario("100ms-500", "rate", 100, 500, title="latency 100 ms, offered 500/s"),
    Scenario("300ms-200", "rate", 300, 200, title="latency 300 ms, offered 200/s"),
    Scenario(
        "limit16",
        "rate",
        100,
        200,
        limit=16,
        title="latency 100 ms, server takes 16 at once (503 + Retry-After: 1 above), "
        "offered 200/s; the API can take 160/s",
    ),
    Scenario(
        "step",
        "rate",
        100,
        100,
        step=True,
        title="offered 100/s, latency 100 ms, 2000 ms for a while, then 100 ms again",
    ),
    Scenario(
        "spool-drain",
        "drain",
        50,
        50,
        title="a spooled backlog drained at 50 ms latency while new events come at 50/s",
    ),
    Scenario(
        "exit-1000",
        "exit",
        20,
        title="latency 20 ms, 1,000 events recorded at once, then the interpreter exits",
    ),
]
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


@dataclass
class Sizes:
    seconds: float = 10.0  # the offered window of the steady-rate scenarios
    flush: float = 30.0
    step_before: float = 5.0
    step_high: float = 10.0
    step_after: float = 15.0
    step_ms: float = 2000.0
    step_flush: float = 60.0
    spool_events: int = 100_000
    drain_seconds: float = 60.0
    idle_seconds: float = 10.0
    exit_events: int = 1000
    cpu_calls: int = 3000
    settle: float = 15.0  # longest wait for the server's requests in flight between variants
    close: float = 1.0  # a recorder's close() after its flush: what it holds then is lost

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(
            seconds=1.0,
            flush=0.2,
            step_before=0.5,
            step_high=0.5,
            step_after=0.5,
            step_ms=500.0,
            step_flush=0.2,
            spool_events=1000,
            drain_seconds=1.0,
            idle_seconds=0.5,
            exit_events=200,
            cpu_calls=100,
            settle=0.5,
            close=0.1,
        )


# -- the children (one interpreter each, PYTHONPATH = one tree) ------------------------------


def _check_tree(tree: str) -> str:
    """The ``openapi_client`` this child imports is the tree's, or the comparison is void."""
    import openapi_client

    where = os.path.realpath(str(openapi_client.__file__))
    if not where.startswith(os.path.realpath(tree) + os.sep):
        raise RuntimeError(f"openapi_client comes from {where}, not from the tree {tree}")
    return where


def _client(url: str, **settings: Any) -> Any:
    # Plain http is allowed to a loopback host without allow_insecure_http (the token never
    # leaves the machine); the SDK refuses it elsewhere.
    from openapi_client import ApiClient, Configuration

    return ApiClient(Configuration(host=url, access_token=TOKEN, **settings))


def _body() -> dict[str, str]:
    return {
        "leadUuid": str(uuid.uuid4()),
        "rateTableUuid": str(uuid.uuid4()),
        "offerUuid": str(uuid.uuid4()),
    }


def _error_name(error: BaseException) -> str:
    status = getattr(error, "status", None)
    return f"{type(error).__name__} {status}" if status else type(error).__name__


class RecorderSide:
    """The recorder under test, made with its defaults (only the client given)."""

    def __init__(self, client: Any, spool: str | None = None) -> None:
        from openapi_client import EventRecorder

        self.recorder = (
            EventRecorder(client) if spool is None else EventRecorder(client, spool=spool)
        )

    def record(self, body: dict[str, str]) -> Any:
        return self.recorder.record_offer_display(body)

    def probe(self) -> dict[str, Any]:
        stats = self.recorder.stats()
        return {
            "delivered": stats.sent,
            "backlog": stats.pending,
            "spooled": stats.spooled,
            "limit": getattr(stats, "concurrency_limit", None),
        }

    def wait(self, timeout: float) -> bool:
        return bool(self.recorder.flush(timeout=timeout))

    def close(self, timeout: float = 1.0) -> None:
        self.recorder.close(timeout=timeout)

    def summary(self) -> dict[str, Any]:
        stats = self.recorder.stats()
        names = (
            "enqueued",
            "sent",
            "failed",
            "dropped",
            "retried",
            "pending",
            "spooled",
            "concurrency_limit",
            "failed_by_reason",
            "dropped_by_reason",
            "last_failure",
        )
        return {name: getattr(stats, name, None) for name in names}


class ExecutorSide:
    """What a user writes without the recorder: a 64-thread pool around the synchronous call."""

    def __init__(self, client: Any) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from openapi_client import UIEventsApi

        self.api = UIEventsApi(client)
        self.pool = ThreadPoolExecutor(EXECUTOR_THREADS)
        self.done = threading.Condition()
        self.submitted = 0
        self.sent = 0
        self.failed = 0
        self.errors: dict[str, int] = {}

    def record(self, body: dict[str, str]) -> Any:
        future = self.pool.submit(self.api.create_offer_display, body)
        self.submitted += 1
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: Any) -> None:
        error = None if future.cancelled() else future.exception()
        with self.done:
            if error is None and not future.cancelled():
                self.sent += 1
            else:
                self.failed += 1
                name = "cancelled" if error is None else _error_name(error)
                self.errors[name] = self.errors.get(name, 0) + 1
            self.done.notify_all()

    def probe(self) -> dict[str, Any]:
        with self.done:
            return {"delivered": self.sent, "backlog": self.submitted - self.sent - self.failed}

    def wait(self, timeout: float) -> bool:
        with self.done:
            return self.done.wait_for(lambda: self.sent + self.failed >= self.submitted, timeout)

    def close(self, timeout: float = 0.0) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)  # the running ones end at exit

    def summary(self) -> dict[str, Any]:
        with self.done:
            return {
                "submitted": self.submitted,
                "sent": self.sent,
                "failed": self.failed,
                "errors": dict(self.errors),
            }


Side = RecorderSide | ExecutorSide


def _side(variant: str, client: Any) -> Side:
    return ExecutorSide(client) if variant == "executor" else RecorderSide(client)


class Sampler:
    """A thread: ``threading.active_count()`` every 50 ms; ``probe()`` every ``every`` samples
    (as ``{"t": seconds since start, ...}``); the latency changes of ``schedule`` at their
    time; ``done`` set once ``until(sample)`` holds."""

    def __init__(
        self,
        probe: Callable[[], dict[str, Any]],
        start: float,
        url: str,
        schedule: Sequence[tuple[float, float]] = (),
        every: int = SAMPLE_EVERY,
        until: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.probe = probe
        self.start_time = start
        self.url = url
        self.schedule = sorted(schedule)
        self.every = every
        self.until = until
        self.peak_threads = threading.active_count()
        self.series: list[dict[str, Any]] = []
        self.changes: list[tuple[float, float]] = []
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(time.monotonic())

    def _sample(self, now: float) -> None:
        sample = {"t": round(now - self.start_time, 4), **self.probe()}
        self.series.append(sample)
        if self.until is not None and self.until(sample):
            self.done.set()

    def _run(self) -> None:
        tick = 0
        while True:
            now = time.monotonic()
            self.peak_threads = max(self.peak_threads, threading.active_count())
            while self.schedule and now - self.start_time >= self.schedule[0][0]:
                _, ms = self.schedule.pop(0)
                try:
                    api_server.control(self.url, "POST", "latency", {"ms": ms})
                except (OSError, RuntimeError) as error:
                    print(f"latency change to {ms:g} ms failed: {error}", file=sys.stderr)
                    continue
                self.changes.append((round(time.monotonic() - self.start_time, 4), ms))
            if tick % self.every == 0:
                self._sample(now)
            tick += 1
            pause = self.start_time + tick * SAMPLE_PERIOD - time.monotonic()
            if self._stop.wait(max(0.0, pause)):
                return


def _pace(
    record: Callable[[dict[str, str]], object],
    bodies: Sequence[dict[str, str]],
    rate: float,
    start: float,
    end: float,
    stop: threading.Event | None = None,
) -> int:
    """Record ``bodies[n]`` at ``start + n / rate`` (an absolute schedule: a late call does not
    push the later ones back) until ``end``; returns how many were recorded."""
    clock = time.monotonic
    count = 0
    for body in bodies:
        due = start + count / rate
        if due >= end or (stop is not None and stop.is_set()):
            break
        now = clock()
        if now >= end:
            break
        if due > now:
            time.sleep(due - now)
        record(body)
        count += 1
    return count


def child_rate(task: dict[str, Any]) -> dict[str, Any]:
    """A steady offered rate for a window, then a flush; the steady-rate and step scenarios."""
    where = _check_tree(task["tree"])
    url = task["url"]
    client = _client(url)
    side = _side(task["variant"], client)
    rate, window = float(task["rate"]), float(task["seconds"])
    bodies = [_body() for _ in range(math.ceil(rate * window))]
    gc.collect()
    start = time.monotonic()
    schedule = [(float(at), float(ms)) for at, ms in task["schedule"]]
    sampler = Sampler(side.probe, start, url, schedule=schedule)
    sampler.start()
    cpu = time.process_time()
    offered = _pace(side.record, bodies, rate, start, start + window)
    cpu = time.process_time() - cpu
    ended = time.monotonic()
    peak_threads = sampler.peak_threads
    at_end = {"server": api_server.control(url, "GET", "stats"), **side.probe()}
    settled = side.wait(float(task["flush"]))
    flush_seconds = time.monotonic() - ended
    sampler.stop()
    after_flush = side.probe()
    side.close(float(task["close"]))
    summary = side.summary()
    return {
        "openapi_client": where,
        "offered": offered,
        "target": len(bodies),
        "window": ended - start,
        "cpu": cpu,
        "peak_threads": peak_threads,
        "peak_threads_all": sampler.peak_threads,
        "at_end": at_end,
        "flushed": settled,
        "flush_seconds": flush_seconds,
        "after_flush": after_flush,
        "summary": summary,
        "series": sampler.series,
        "changes": sampler.changes,
    }


def _percentile(ordered: Sequence[float], p: float) -> float | None:
    """Nearest rank."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def child_drain(task: dict[str, Any]) -> dict[str, Any]:
    """Idle record times first (a spool of its own), then a recorder on the prefilled spool,
    new events at ``rate``/s meanwhile, until nothing is spooled or ``seconds`` pass."""
    where = _check_tree(task["tree"])
    url = task["url"]
    rate = float(task["rate"])
    client = _client(url)
    clock = time.perf_counter_ns

    def timed(
        side: RecorderSide, took: list[float], delays: list[float]
    ) -> Callable[[dict[str, str]], object]:
        def record(body: dict[str, str]) -> object:
            began = clock()
            event = side.record(body)
            took.append((clock() - began) / 1000)
            recorded = time.monotonic()

            def finished(future: Any) -> None:
                if not future.cancelled() and future.exception() is None:
                    delays.append(time.monotonic() - recorded)

            event.add_done_callback(finished)
            return event

        return record

    # Idle: the same recording on a recorder with an empty spool and nothing else to send.
    idle_side = RecorderSide(client, spool=task["idle_spool"])
    idle_took: list[float] = []
    idle_bodies = [_body() for _ in range(math.ceil(rate * task["idle_seconds"]))]
    start = time.monotonic()
    _pace(timed(idle_side, idle_took, []), idle_bodies, rate, start, start + task["idle_seconds"])
    idle_side.wait(10.0)
    idle_side.close()
    api_server.control(url, "POST", "reset")

    bodies = [_body() for _ in range(math.ceil(rate * task["seconds"]))]
    gc.collect()
    start = time.monotonic()
    side = RecorderSide(client, spool=task["spool"])
    first = side.probe()
    sampler = Sampler(side.probe, start, url, until=lambda sample: sample["spooled"] == 0)
    sampler.start()
    took: list[float] = []
    delays: list[float] = []
    recorded = _pace(
        timed(side, took, delays), bodies, rate, start, start + task["seconds"], stop=sampler.done
    )
    if not sampler.done.is_set():
        sampler.done.wait(max(0.0, start + task["seconds"] - time.monotonic()))
    ended = time.monotonic()
    last = side.probe()
    server_stats = api_server.control(url, "GET", "stats")
    delivered_new = len(delays)
    new_delays = sorted(delays)
    sampler.stop()
    side.close(float(task["close"]))
    idle_took.sort()
    took.sort()
    limits = [s["limit"] for s in sampler.series if s.get("limit") is not None]
    return {
        "openapi_client": where,
        "seconds": ended - start,
        "spooled_first": first["spooled"],
        "at_end": last,
        "server": server_stats,
        "drained": sampler.done.is_set(),
        "recorded": recorded,
        "new_delivered": delivered_new,
        "new_delay_p50": _percentile(new_delays, 50),
        "idle_calls": len(idle_took),
        "idle_p50": _percentile(idle_took, 50),
        "idle_p99": _percentile(idle_took, 99),
        "drain_calls": len(took),
        "drain_p50": _percentile(took, 50),
        "drain_p99": _percentile(took, 99),
        "limit_last": limits[-1] if limits else None,
        "limit_max": max(limits) if limits else None,
        "peak_threads": sampler.peak_threads,
        "summary": side.summary(),
        "series": sampler.series,
    }


def child_prefill(task: dict[str, Any]) -> None:
    """Record ``count`` events into ``spool`` while the API never answers, say so, and wait to
    be killed (SIGKILL: a crash with a backlog on disk)."""
    from openapi_client import EventRecorder

    _check_tree(task["tree"])
    # Deliveries wait on a socket nobody answers (a read times out only after 10 minutes):
    # nothing is sent, failed or retried while it records.
    client = _client(task["url"], timeout=600.0)
    recorder = EventRecorder(client, spool=task["spool"], delivery_timeout=3600.0)
    began = time.perf_counter()
    for _ in range(task["count"]):
        recorder.record_offer_display(_body())
    deadline = time.monotonic() + 120
    while recorder.stats().spooled < task["count"] and time.monotonic() < deadline:
        time.sleep(0.05)  # a write the caller did not wait for (the file was busy)
    stats = recorder.stats()
    print(
        json.dumps({"seconds": time.perf_counter() - began, "spooled": stats.spooled}), flush=True
    )
    time.sleep(3600)


_KEEP: list[Any] = []
"""What the exit child made, alive until the interpreter exits (as an application's globals)."""


def child_exit(task: dict[str, Any]) -> None:
    """Record ``count`` events as fast as possible, then let main return: the exit handlers
    (the recorder's, or the executor's join) decide what is delivered."""
    _check_tree(task["tree"])
    client = _client(task["url"])
    side = _side(task["variant"], client)
    _KEEP.append(side)
    bodies = [_body() for _ in range(task["count"])]
    began = time.monotonic()
    for body in bodies:
        side.record(body)
    ended = time.monotonic()
    print(
        json.dumps(
            {
                "record_seconds": ended - began,
                "recorded_at": ended,
                "delivered_before_exit": side.probe()["delivered"],
            }
        ),
        flush=True,
    )


def child_cpu(task: dict[str, Any]) -> dict[str, Any]:
    """The synchronous client's CPU and wall time per call, sequential, 0 ms latency."""
    from openapi_client import UIEventsApi

    where = _check_tree(task["tree"])
    client = _client(task["url"])
    api = UIEventsApi(client)
    bodies = [_body() for _ in range(task["calls"] + 200)]
    for body in bodies[:200]:
        api.create_offer_display(body)
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    for body in bodies[200:]:
        api.create_offer_display(body)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    client.close()
    return {
        "openapi_client": where,
        "calls": task["calls"],
        "cpu_us": cpu / task["calls"] * 1e6,
        "wall_us": wall / task["calls"] * 1e6,
    }


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
    "rate": child_rate,
    "drain": child_drain,
    "prefill": child_prefill,
    "exit": child_exit,
    "cpu": child_cpu,
}


def child_main(task: dict[str, Any]) -> int:
    result = CHILDREN[task["task"]](task)
    if result is not None:
        print(json.dumps(result), flush=True)
    return 0


# -- the parent: servers, children, tables -------------------------------------------------


class ChildFailed(Exception):
    pass


class Runner:
    """Starts children: ``PYTHONPATH`` = the tree only, no other ``PYTHON*`` variable, ``-s``,
    bytecode cached in the run's temporary folder (not in the trees)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def env(self, tree: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONPATH"] = tree
        env["PYTHONPYCACHEPREFIX"] = os.path.join(self.folder, "pycache")
        return env

    def command(self, task: dict[str, Any]) -> list[str]:
        return [sys.executable, "-s", str(HERE), "--child", json.dumps(task)]

    def run(self, task: dict[str, Any], timeout: float) -> dict[str, Any]:
        try:
            done = subprocess.run(
                self.command(task),
                env=self.env(task["tree"]),
                cwd=self.folder,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as error:
            raise ChildFailed(f"no answer in {timeout:g} s") from error
        return _parse(done.returncode, done.stdout, done.stderr)

    def popen(self, task: dict[str, Any], **kwargs: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(task), env=self.env(task["tree"]), cwd=self.folder, text=True, **kwargs
        )


def _parse(returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
    lines = stdout.strip().splitlines()
    said = [line for line in stderr.strip().splitlines() if line.strip()]
    if returncode != 0 or not lines or not lines[-1].startswith("{"):
        raise ChildFailed(said[-1] if said else f"exit status {returncode}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["stderr"] = said[-5:]
    return result


def _settle(url: str, patience: float) -> dict[str, Any]:
    """The server's counts once nothing is in flight (or ``patience`` s passed)."""
    deadline = time.monotonic() + patience
    while True:
        stats = api_server.control(url, "GET", "stats")
        if stats["in_flight_all"] == 0 or time.monotonic() >= deadline:
            return stats
        time.sleep(0.05)


def _prepare(url: str, latency_ms: float) -> None:
    api_server.control(url, "POST", "latency", {"ms": latency_ms})
    api_server.control(url, "POST", "reset")


def _status(stats: dict[str, Any], status: int) -> int:
    return int(stats["by_status"].get(str(status), 0))


def measure_rate(
    scenario: Scenario, variant: str, tree: str, url: str, sizes: Sizes, runner: Runner
) -> dict[str, Any]:
    if scenario.step:
        high_from, high_to = sizes.step_before, sizes.step_before + sizes.step_high
        window, flush = high_to + sizes.step_after, sizes.step_flush
        schedule = [(high_from, sizes.step_ms), (high_to, scenario.latency_ms)]
    else:
        window, flush, schedule = sizes.seconds, sizes.flush, []
    task = {
        "task": "rate",
        "variant": variant,
        "tree": tree,
        "url": url,
        "rate": scenario.rate,
        "seconds": window,
        "flush": flush,
        "close": sizes.close,
        "schedule": schedule,
    }
    result = runner.run(task, timeout=window + flush + 120)
    final = _settle(url, sizes.settle)
    server = result["at_end"]["server"]
    delivered = _status(server, 201)
    offered = result["offered"]
    rate = delivered / result["window"]
    result.update(
        final_server=final,
        delivered=delivered,
        delivered_share=delivered / offered if offered else None,
        delivered_rate=rate,
        share_503=_status(server, 503) / server["requests"] if server["requests"] else 0.0,
        cpu_per_delivered=result["cpu"] / delivered if delivered else None,
        lost=offered - final["offers_201"],
        duplicates=final["duplicates"],
    )
    if scenario.limit:
        result["capacity"] = scenario.limit / (scenario.latency_ms / 1000)
        result["vs_capacity"] = rate / result["capacity"]
    if scenario.step:
        result.update(_recovery(result["series"], scenario.rate, high_to, result["window"]))
    return result


def _recovery(
    series: list[dict[str, Any]], rate: float, step_end: float, window: float
) -> dict[str, Any]:
    """From the 1 s samples: when delivery was back after the step (see the docstring)."""
    recovered = None
    for before, sample in itertools.pairwise(series):
        if before["t"] < step_end - 0.01 or sample["t"] > window + 0.01:
            continue
        span = sample["t"] - before["t"]
        if span <= 0:
            continue
        bucket_rate = (sample["delivered"] - before["delivered"]) / span
        if bucket_rate >= RECOVERED_SHARE * rate and sample["backlog"] <= RECOVERED_BACKLOG:
            recovered = sample["t"] - step_end
            break
    cleared = next(
        (
            s["t"] - step_end
            for s in series
            if s["t"] >= step_end and s["backlog"] <= RECOVERED_BACKLOG
        ),
        None,
    )
    return {
        "recovered_after": recovered,
        "backlog_cleared_after": cleared,
        "peak_backlog": max((s["backlog"] for s in series), default=0),
        "window_after_step": window - step_end,
    }


def measure_drain(
    scenario: Scenario, tree: str, url: str, sizes: Sizes, runner: Runner
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="drain-", dir=runner.folder) as folder:
        spool = os.path.join(folder, "events.db")
        prefill = _prefill(tree, spool, sizes.spool_events, runner)
        _prepare(url, scenario.latency_ms)
        task = {
            "task": "drain",
            "tree": tree,
            "url": url,
            "spool": spool,
            "idle_spool": os.path.join(folder, "idle.db"),
            "rate": scenario.rate,
            "seconds": sizes.drain_seconds,
            "idle_seconds": sizes.idle_seconds,
            "close": sizes.close,
        }
        result = runner.run(task, timeout=sizes.idle_seconds + sizes.drain_seconds + 180)
    final = _settle(url, sizes.settle)
    sent = result["at_end"]["delivered"]
    seconds = result["seconds"]
    spooled_left = result["at_end"]["spooled"]
    limit = result["limit_last"]
    result.update(
        prefill=prefill,
        final_server=final,
        drain_rate=sent / seconds,
        backlog_rate=(result["spooled_first"] - spooled_left) / seconds,
        limit_rate=limit / (scenario.latency_ms / 1000) if limit else None,
    )
    return result


def _prefill(tree: str, spool: str, count: int, runner: Runner) -> dict[str, Any]:
    """A recorder of ``tree`` records ``count`` events, its API a socket nobody accepts on;
    then SIGKILL."""
    with socket.socket() as hole:
        hole.bind((api_server.HOST, 0))
        hole.listen(64)
        url = f"http://{api_server.HOST}:{hole.getsockname()[1]}"
        errors = spool + ".prefill-stderr"
        with open(errors, "w+", encoding="utf-8") as stderr:  # a file: a pipe could fill up
            task = {"task": "prefill", "tree": tree, "url": url, "spool": spool, "count": count}
            child = runner.popen(
                task, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
            )
            assert child.stdout is not None
            got: list[str] = []
            reader = threading.Thread(
                target=lambda: got.append(child.stdout.readline()),  # type: ignore[union-attr]
                daemon=True,
            )
            reader.start()
            reader.join(900)
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            child.stdout.close()
            stderr.seek(0)
            said = stderr.read().strip().splitlines()
    line = got[0] if got else ""
    if not line.startswith("{"):
        raise ChildFailed(f"prefill: {said[-1] if said else line or 'no answer'}")
    result: dict[str, Any] = json.loads(line)
    return result


def measure_exit(
    scenario: Scenario, variant: str, tree: str, url: str, sizes: Sizes, runner: Runner
) -> dict[str, Any]:
    task = {
        "task": "exit",
        "variant": variant,
        "tree": tree,
        "url": url,
        "count": sizes.exit_events,
    }
    child = runner.popen(
        task, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = child.communicate(timeout=120)
    except subprocess.TimeoutExpired as error:
        child.kill()
        child.communicate()
        raise ChildFailed("did not exit in 120 s") from error
    exited = time.monotonic()
    result = _parse(child.returncode, out, err)
    final = _settle(url, sizes.settle)
    result.update(
        recorded=sizes.exit_events,
        final_server=final,
        arrived=final["offers_201"],
        lost=sizes.exit_events - final["offers_201"],
        duplicates=final["duplicates"],
        exit_seconds=exited - result["recorded_at"],
    )
    return result


def measure_cpu(tree: str, sizes: Sizes, runner: Runner) -> dict[str, Any]:
    with api_server.start_server() as api:
        return runner.run(
            {"task": "cpu", "tree": tree, "url": api.url, "calls": sizes.cpu_calls}, timeout=300
        )


def run_scenario(
    scenario: Scenario,
    trees: dict[str, str],
    sizes: Sizes,
    runner: Runner,
    log: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    lifetime = 3600.0
    with api_server.start_server(
        delay=scenario.latency_ms / 1000, lifetime=lifetime, control=True, limit=scenario.limit
    ) as api:
        for variant in VARIANTS:
            if scenario.kind == "drain" and variant == "executor":
                results[variant] = {"skipped": "n/a: the executor has no spool"}
                continue
            tree = trees["after"] if variant == "executor" else trees[variant]
            log(f"{scenario.name}: {variant}")
            try:
                _prepare(api.url, scenario.latency_ms)
                if scenario.kind == "rate":
                    result = measure_rate(scenario, variant, tree, api.url, sizes, runner)
                elif scenario.kind == "drain":
                    result = measure_drain(scenario, tree, api.url, sizes, runner)
                else:
                    result = measure_exit(scenario, variant, tree, api.url, sizes, runner)
            except (ChildFailed, RuntimeError, OSError) as error:
                log(f"  failed: {error}")
                result = {"error": str(error)}
                _settle(api.url, sizes.settle)
            results[variant] = result
    return results


# -- the tables ------------------------------------------------------------------------------


def _int(value: Any) -> str:
    return "n/a" if value is None else f"{int(value):,}"


def _num(value: float | None, digits: int = 3, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    text = f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:,.0f}"
    return text + suffix


def _us(seconds: float | None) -> str:
    return _num(None if seconds is None else seconds * 1e6, 3, " µs")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def _seconds(value: float | None, bound: float | None = None) -> str:
    if value is None:
        return f"not within the {bound:.0f} s after it" if bound is not None else "never"
    return f"{value:.1f} s"


Column = tuple[str, Callable[[dict[str, Any]], str]]


def _flushed(result: dict[str, Any]) -> str:
    if result["flushed"]:
        return f"yes, {result['flush_seconds']:.1f} s"
    return f"no ({result['after_flush']['backlog']:,} left after {result['flush_seconds']:.1f} s)"


def _offered(result: dict[str, Any]) -> str:
    offered, target = result["offered"], result["target"]
    return f"{offered:,}" + ("" if offered >= target else f" of {target:,} due")


RATE_COLUMNS: list[Column] = [
    ("offered", _offered),
    ("delivered in window", lambda r: f"{r['delivered']:,}"),
    ("delivered / offered", lambda r: _num(r["delivered_share"])),
    ("delivered/s", lambda r: _num(r["delivered_rate"], 4)),
    ("backlog at end", lambda r: _int(r["at_end"]["backlog"])),
    ("server peak at once", lambda r: _int(r["at_end"]["server"]["peak_concurrency"])),
    ("503 share", lambda r: _pct(r["share_503"])),
    ("client peak threads", lambda r: _int(r["peak_threads"])),
    ("client CPU per delivered", lambda r: _us(r["cpu_per_delivered"])),
    ("flushed", _flushed),
    ("lost", lambda r: _int(r["lost"])),
    ("duplicates", lambda r: _int(r["duplicates"])),
]
LIMIT_COLUMNS: list[Column] = [
    *RATE_COLUMNS[:4],
    ("delivered/s ÷ 160/s", lambda r: _num(r["vs_capacity"])),
    *RATE_COLUMNS[4:],
]
STEP_COLUMNS: list[Column] = [
    *RATE_COLUMNS[:4],
    ("peak backlog", lambda r: _int(r["peak_backlog"])),
    *RATE_COLUMNS[4:6],
    *RATE_COLUMNS[7:9],
    (
        "back to >= 95 % rate and backlog <= 100",
        lambda r: _seconds(r["recovered_after"], r["window_after_step"]),
    ),
    ("backlog <= 100 again", lambda r: _seconds(r["backlog_cleared_after"])),
    *RATE_COLUMNS[9:],
]
DRAIN_COLUMNS: list[Column] = [
    ("spooled at start", lambda r: _int(r["spooled_first"])),
    (
        "drained",
        lambda r: (
            f"yes, {r['seconds']:.1f} s"
            if r["drained"]
            else f"no: {_int(r['at_end']['spooled'])} left after {r['seconds']:.1f} s"
        ),
    ),
    ("sent/s (backlog + new)", lambda r: _num(r["drain_rate"], 4)),
    ("spool shrank /s (net)", lambda r: _num(r["backlog_rate"], 4)),
    ("concurrency_limit (max)", lambda r: f"{_int(r['limit_last'])} ({_int(r['limit_max'])})"),
    ("rate it allows", lambda r: _num(r["limit_rate"], 4, "/s")),
    ("server peak at once", lambda r: _int(r["server"]["peak_concurrency"])),
    ("client peak threads", lambda r: _int(r["peak_threads"])),
    ("record p50 idle → drain", lambda r: f"{_num(r['idle_p50'])} → {_num(r['drain_p50'])} µs"),
    ("record p99 idle → drain", lambda r: f"{_num(r['idle_p99'])} → {_num(r['drain_p99'])} µs"),
    ("new events delivered in window", lambda r: f"{r['new_delivered']:,} of {r['recorded']:,}"),
    ("their delay p50", lambda r: _num(r["new_delay_p50"], 3, " s")),
]
EXIT_COLUMNS: list[Column] = [
    ("recorded", lambda r: f"{r['recorded']:,} in {r['record_seconds'] * 1000:.0f} ms"),
    ("delivered before main returned", lambda r: _int(r["delivered_before_exit"])),
    ("arrived (201, distinct)", lambda r: _int(r["arrived"])),
    ("lost", lambda r: _int(r["lost"])),
    ("duplicates", lambda r: _int(r["duplicates"])),
    ("exit took (last record → process gone)", lambda r: f"{r['exit_seconds']:.2f} s"),
    (
        "what the child said at exit",
        lambda r: "; ".join(r["stderr"])[-160:].replace("|", "/") or "—",
    ),
]


def _columns(scenario: Scenario) -> list[Column]:
    if scenario.kind == "drain":
        return DRAIN_COLUMNS
    if scenario.kind == "exit":
        return EXIT_COLUMNS
    if scenario.step:
        return STEP_COLUMNS
    return LIMIT_COLUMNS if scenario.limit else RATE_COLUMNS


def table(scenario: Scenario, results: dict[str, dict[str, Any]]) -> str:
    columns = _columns(scenario)
    lines = [
        "| variant | " + " | ".join(name for name, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for variant, result in results.items():
        if "skipped" in result or "error" in result:
            said = result.get("skipped") or f"failed: {result['error']}"
            cells = [said.replace("|", "/")] + [""] * (len(columns) - 1)
        else:
            try:
                cells = [fn(result) for _, fn in columns]
            except (KeyError, TypeError, ValueError, ZeroDivisionError) as error:
                cells = [f"no figures: {error!r}"] + [""] * (len(columns) - 1)
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    if scenario.kind != "exit":  # (the exit table has a column for it)
        said = [
            (variant, line)
            for variant, result in results.items()
            for line in result.get("stderr", [])
        ]
        if said:
            lines.append("\nWhat the children wrote to stderr (last lines):")
            lines += [f"- {variant}: {line[:240]}" for variant, line in said]
    return "\n".join(lines)


def _describe(scenario: Scenario, sizes: Sizes) -> str:
    if scenario.step:
        return (
            f"{scenario.title}: {sizes.step_before:g} s at {scenario.latency_ms:g} ms, "
            f"{sizes.step_high:g} s at {sizes.step_ms:g} ms, {sizes.step_after:g} s at "
            f"{scenario.latency_ms:g} ms; flush up to {sizes.step_flush:g} s"
        )
    if scenario.kind == "rate":
        return f"{scenario.title}; {sizes.seconds:g} s window, flush up to {sizes.flush:g} s"
    if scenario.kind == "drain":
        return (
            f"{scenario.title}: {sizes.spool_events:,} events spooled, up to "
            f"{sizes.drain_seconds:g} s; idle record times over {sizes.idle_seconds:g} s"
        )
    return f"{scenario.title} ({sizes.exit_events:,} events)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="TREE", help="checkout whose recorder is 'before'")
    parser.add_argument(
        "--after",
        metavar="TREE",
        default=".",
        help="checkout whose recorder is 'after' (default: .)",
    )
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help="comma list of scenarios (default all): " + ", ".join(BY_NAME),
    )
    parser.add_argument(
        "--seconds",
        type=float,
        help=f"offered window of the steady-rate scenarios (default {Sizes.seconds:g})",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, well under a minute")
    parser.add_argument("--json", metavar="PATH", help="also write every result here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(json.loads(args.child))

    if not args.before:
        parser.error("--before TREE is required")
    trees = {"before": os.path.abspath(args.before), "after": os.path.abspath(args.after)}
    for tree in trees.values():
        if not os.path.isfile(os.path.join(tree, "openapi_client", "__init__.py")):
            parser.error(f"{tree} has no openapi_client/ package")
    names = args.only.split(",") if args.only else list(BY_NAME)
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    sizes = Sizes.smoke() if args.smoke else Sizes()
    if args.seconds:
        sizes.seconds = args.seconds

    began = time.perf_counter()

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f} s] {text}", file=sys.stderr, flush=True)

    load_before = os.getloadavg()[0]
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as folder:
        runner = Runner(folder)
        log("synchronous client CPU per call (after tree)")
        try:
            sync: dict[str, Any] = measure_cpu(trees["after"], sizes, runner)
        except (ChildFailed, RuntimeError, OSError) as error:
            sync = {"error": str(error)}
        for name in names:
            results[name] = run_scenario(BY_NAME[name], trees, sizes, runner, log)
    elapsed = time.perf_counter() - began

    mode = "smoke (numbers meaningless)" if args.smoke else "full"
    print("$ " + shlex.join(["python", os.path.relpath(HERE), *sys.argv[1:]]))
    print(
        f"\nEventRecorder throughput, {mode}. before = {trees['before']} "
        f"({tree_label(trees['before'])}); after = {trees['after']} ({tree_label(trees['after'])}); "
        f"executor = ThreadPoolExecutor({EXECUTOR_THREADS}) + the after tree's synchronous "
        "client"
    )
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs; load average before "
        f"{load_before:.2f}, after {os.getloadavg()[0]:.2f}; {elapsed:.0f} s in all"
    )
    if "error" in sync:
        print(f"synchronous client CPU per call: failed: {sync['error']}")
    else:
        print(
            f"synchronous client, sequential create_offer_display over loopback at 0 ms "
            f"({sync['calls']:,} calls): {sync['cpu_us']:.0f} µs CPU per call, "
            f"{sync['wall_us']:.0f} µs wall"
        )
    for name in names:
        scenario = BY_NAME[name]
        print(f"\n### {name}: {_describe(scenario, sizes)}\n")
        print(table(scenario, results[name]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(
                {
                    "command": sys.argv,
                    "mode": mode,
                    "trees": trees,
                    "sizes": asdict(sizes),
                    "elapsed_s": elapsed,
                    "sync_cpu": sync,
                    "results": results,
                },
                out,
                indent=1,
            )
            out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
