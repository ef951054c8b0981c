"""How many requests the recorder keeps in flight: a limit that adapts between 1 and the
``workers`` maximum, by the answers it gets.

The API takes one event per request, so throughput is requests in flight divided by latency.
The limit grows while a backlog waits and answers come back as fast as they did unloaded:
doubling each round trip until the first sign of trouble; after it, by half its distance from
the limit where trouble came (the *edge*), at least ``MIN_STEP``, each round trip: quickly back towards
the edge, carefully around it, quickly again once well past it (the API found more room). It
shrinks in proportion when the smoothed latency rises above ``TOLERANCE`` times the unloaded
latency (the API is queueing our requests), and by ``BACKOFF`` on an answer that says "too
much" (429, 5xx, a timeout), by half when that comes while it still doubles, and by
``BACKOFF`` while the senders take more than ``CPU_SHARE`` of a CPU (the client itself is the
bottleneck: more threads would only starve the application). At most one
decrease per round trip: the answers to requests sent before a decrease say nothing about the
limit after it. A busy answer comes back at once, so its room stays taken for one round trip
(else the room would be refilled at once, and refused again, many times a round trip). After
an outage the limit starts again from 1 and doubles up to half of what it was (a ramp, not a
surge).
"""

from __future__ import annotations

import collections
import enum
import math
import threading
import time
from collections.abc import Callable

INITIAL = 4
TOLERANCE = 2.0
"""The smoothed latency may be this many times the unloaded latency before the limit shrinks."""
BACKOFF = 0.9
"""The limit after an overload answer, as a share of the limit before it: gentle, since one
busy answer among successes means the edge is near (an outage collapses it instead)."""
SMOOTHING = 0.1
"""The weight of one latency sample in the smoothed latency."""
BASE_WINDOW = 30
"""Seconds over which the unloaded latency is the lowest smoothed latency seen: long enough to
outlast a slow spell, short enough to follow an API that became slower for good."""
MIN_SAMPLES = 10
CPU_SHARE = 0.5
"""Of one CPU, the most the senders' own work may take (measured per ``CPU_WINDOW``): above it
the limit shrinks as if the API were slow. The threads share one interpreter lock with the
application, which must keep it for its own work (``record_*`` included)."""
CPU_WINDOW = 0.5
MIN_STEP = 0.25
"""The least the limit grows per round trip once the API pushed back: near the edge it feels
its way (a quarter of a request per round trip), so that busy answers stay few."""


class Signal(enum.Enum):
    """What an attempt's end says about the API's load."""

    OK = "ok"  # an answer that is not "too much" (a 4xx rejection included): a latency sample
    OVERLOAD = "overload"  # 429, 5xx, a timeout, a refused or broken connection
    NONE = "none"  # nothing was learnt (no request went out)


class ConcurrencyLimit:
    """The number of requests that may be in flight at once; thread-safe."""

    def __init__(self, maximum: int, initial: int = INITIAL) -> None:
        self.maximum = maximum
        self.limit = float(min(maximum, initial))
        self.threshold = float(maximum)  # doubling below it, gentler growth above it
        self.edge = float(maximum)  # the limit when the API last pushed back
        self.in_flight = 0
        self.smoothed: float | None = None  # seconds
        self._samples = 0
        self._minima: collections.deque[list[float]] = collections.deque()  # [second, minimum]
        self._hold_until = 0.0
        self._collapsed = False
        self._cooling: collections.deque[float] = collections.deque()  # busy answers' room
        self._cpu = 0.0  # the senders' CPU seconds since ``_cpu_since``
        self._cpu_since = time.monotonic()
        self._cpu_hot = False  # the last window went over ``CPU_SHARE``
        self._condition = threading.Condition()

    @property
    def current(self) -> int:
        """The limit now, as a whole number of requests."""
        return max(1, int(self.limit))

    def acquire(self, deadline: float, stopping: Callable[[], bool]) -> float | None:
        """Wait for room for one more request; its start time, or ``None`` if ``deadline``
        came (or the recorder is stopping) first."""
        with self._condition:
            cooling = self._cooling
            while True:
                now = time.monotonic()
                while cooling and cooling[0] <= now:
                    cooling.popleft()
                if self.in_flight + len(cooling) < max(1, int(self.limit)):
                    break
                if now >= deadline or stopping():
                    return None
                self._condition.wait(min(deadline, cooling[0] if cooling else deadline) - now)
            self.in_flight += 1
        return now

    def release(self, started: float, signal: Signal, backlog: bool, cpu: float = 0.0) -> None:
        """One request ended: learn from it (``backlog``: events wait for room; ``cpu``: the
        CPU seconds its sender spent on it)."""
        now = time.monotonic()
        with self._condition:
            self.in_flight -= 1
            before = int(self.limit)
            self._count_cpu(cpu, now)
            if signal is Signal.OK:
                self._collapsed = False
                self._learn(now - started, now, backlog)
            elif signal is Signal.OVERLOAD and not self._collapsed:  # an outage: collapsed
                self._cooling.append(now + (self.smoothed or now - started))
                self._decrease(0.5 if self.limit < self.threshold else BACKOFF, now)
            if int(self.limit) > before:
                self._condition.notify(int(self.limit) - before + 1)
            else:
                self._condition.notify()

    def collapse(self) -> None:
        """The API is down: start again from one request, doubling back to half of the limit
        before (only the first report of an outage counts)."""
        with self._condition:
            if not self._collapsed:
                self._collapsed = True
                self.threshold = max(1.0, self.limit / 2)
                self.limit = 1.0
                self._cooling.clear()  # the gate paces the probes now

    def wake(self) -> None:
        """Let waiting senders look again (the recorder is stopping)."""
        with self._condition:
            self._condition.notify_all()

    # -- under the lock -------------------------------------------------------------------

    def _count_cpu(self, seconds: float, now: float) -> None:
        self._cpu += seconds
        elapsed = now - self._cpu_since
        if elapsed >= CPU_WINDOW:
            self._cpu_hot = self._cpu / elapsed > CPU_SHARE
            self._cpu, self._cpu_since = 0.0, now

    def _learn(self, seconds: float, now: float, backlog: bool) -> None:
        smoothed = seconds
        if self.smoothed is not None:
            smoothed = self.smoothed + SMOOTHING * (seconds - self.smoothed)
        self.smoothed = smoothed
        self._samples += 1
        second = math.floor(now)
        minima = self._minima
        if minima and minima[-1][0] == second:
            minima[-1][1] = min(minima[-1][1], smoothed)
        else:
            minima.append([second, smoothed])
            while minima[0][0] <= second - BASE_WINDOW:
                minima.popleft()
        base = min(m[1] for m in minima)
        if self._cpu_hot:  # this process cannot send faster without starving its own work
            self._decrease(BACKOFF, now)
        elif self._samples >= MIN_SAMPLES and smoothed > TOLERANCE * base:
            self._decrease(max(0.5, TOLERANCE * base / smoothed), now)
        elif backlog and (self.in_flight + 1) * 2 >= self.limit:
            if self.limit < self.threshold:
                self.limit += 1.0  # one per answer: doubles each round trip
            else:  # per round trip: half the distance from the edge, at least MIN_STEP
                self.limit += max(MIN_STEP, abs(self.edge - self.limit) / 2) / self.limit
            self.limit = min(self.limit, float(self.maximum))

    def _decrease(self, factor: float, now: float) -> None:
        if now < self._hold_until:
            return
        self.edge = self.limit
        self.limit = max(1.0, self.limit * factor)
        self.threshold = self.limit
        self._hold_until = now + (self.smoothed or 0.0)
