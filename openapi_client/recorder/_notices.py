"""The recorder's log lines, at most one a minute per kind: a full disk or a long outage must
not flood the application's logs. What was held back is counted in the next line."""

from __future__ import annotations

import threading
import time

from openapi_client._logs import logger

WARNING_SECONDS = 60.0


class Notices:
    """Rate-limited warnings, by kind (``"spool"``, ``"drop"``, ``"credential"`` …)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held_back: dict[str, int] = {}
        self._once: set[str] = set()

    def warn(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < WARNING_SECONDS:
                self._held_back[kind] = self._held_back.get(kind, 0) + 1
                return
            self._last[kind] = now
            held_back = self._held_back.pop(kind, 0)
        if held_back:
            message += f" ({held_back} similar line(s) held back in the last minute)"
        logger.warning("EventRecorder: " + message, *args)

    def once(self, kind: str, message: str, *args: object) -> None:
        """A warning said once in the life of the recorder."""
        with self._lock:
            if kind in self._once:
                return
            self._once.add(kind)
        logger.warning("EventRecorder: " + message, *args)
