"""The recorder's shared view of the API's health: send freely while it answers; when it does
not, every worker waits, then one probe at a time goes out until a response comes back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from openapi_client.retries import RetryPolicy


class DeliveryGate:
    """Backoff for the recorder as a whole (no worker hammers an API that is down)."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._condition = threading.Condition()
        self._failures = 0
        self._until = 0.0
        self._probing = False

    def enter(self, deadline: float, stopping: Callable[[], bool]) -> bool | None:
        """Wait for a turn to send: ``False`` a normal send, ``True`` the probe after an outage,
        ``None`` if ``deadline`` came (or the recorder is stopping) first."""
        if self._failures == 0:  # healthy: no lock on the common path
            return False
        with self._condition:
            while True:
                if self._failures == 0:
                    return False
                now = time.monotonic()
                if now >= deadline or stopping():
                    return None
                if now < self._until:
                    self._condition.wait(min(self._until, deadline) - now)
                elif not self._probing:
                    self._probing = True
                    return True
                else:  # another worker's probe is out: wait for its outcome
                    self._condition.wait(deadline - now)

    def leave(self, probe: bool, healthy: bool | None, retry_after: float | None = None) -> bool:
        """Report an attempt: ``healthy`` when the API answered as a working server does,
        ``None`` when the answer says nothing of an outage (one busy answer among successes).
        ``True`` if the gate is shut now."""
        if (healthy or healthy is None) and self._failures == 0 and not probe:
            return False
        with self._condition:
            if probe:
                self._probing = False
            if healthy is None:
                pass
            elif healthy:
                # Only a probe, or an answer once the wait is over, reopens the gate: a request
                # sent before the failure says nothing about now, nor cancels a Retry-After.
                if probe or time.monotonic() >= self._until:
                    self._failures = 0
            elif probe or self._failures == 0:  # not every worker caught in one outage
                self._failures += 1
                wait = self._policy.backoff(self._failures)
                if retry_after is not None:
                    wait = max(wait, retry_after)
                self._until = max(self._until, time.monotonic() + wait)
            self._condition.notify_all()
            return self._failures > 0

    def cancel(self, probe: bool) -> None:
        """A turn taken and not used (no room to send): another may probe."""
        if probe:
            with self._condition:
                self._probing = False
                self._condition.notify_all()

    def pause(self, until: float, stopping: Callable[[], bool]) -> bool:
        """Wait until ``until`` (one event's own wait after an overload answer); ``False`` if
        the recorder began stopping first."""
        with self._condition:
            while not stopping():
                now = time.monotonic()
                if now >= until:
                    return True
                self._condition.wait(until - now)
            return False

    def wake(self) -> None:
        """Let waiting workers look again (the recorder is stopping or flushing)."""
        with self._condition:
            self._condition.notify_all()

    @property
    def healthy(self) -> bool:
        return self._failures == 0
