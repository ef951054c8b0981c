"""Where a recorder meets its process: worker threads started on the first event and stopped
by ``close``, a forked child that starts afresh, and the last delivery at interpreter exit."""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
import weakref
from typing import Any

from openapi_client._logs import logger
from openapi_client.exceptions import RecorderClosedError
from openapi_client.recorder._delivery import PUMP, STOP, Delivery
from openapi_client.recorder._event import RecordedEvent


class Lifecycle(Delivery):
    """Threads, fork and exit, for ``EventRecorder``."""

    _closed: bool
    _exit_timeout: float
    _worker_count: int

    def _flush(self, timeout: float, start_workers: bool) -> bool:
        raise NotImplementedError  # EventRecorder's

    def _stop(self, reason: str, join_seconds: float, at_exit: bool = False) -> None:
        """Stop the workers; give back (spool) or drop (memory only) what is left."""
        left: list[RecordedEvent[Any, Any]] = []
        with self._lock:  # record_* and the pump put events under it, unless this is set
            self._stopping = True
            while True:  # the queue first, the stop signals after: they must not be drained too
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, RecordedEvent):
                    left.append(item)
        self._gate.wake()  # workers waiting out a backoff let their events go (``_abandon``)
        for _ in self._threads:
            self._queue.put(STOP)
        deadline = time.monotonic() + join_seconds
        for thread in self._threads:  # a worker mid-send may outlive this; it is a daemon
            thread.join(max(0.0, deadline - time.monotonic()))
        spool = self._spool
        if spool is not None:
            kept = [event for event in left if event._spool_id is not None]
            with self._settled:  # events waiting on disk, and those parked after their timeout
                waiting = [e for i in self._on_disk if (e := self._futures.get(i)) is not None]
                parked = [e for i, e in self._futures.items() if i not in self._on_disk]
                unheld = len(self._on_disk) - len(waiting)  # no future left to resolve
                self._pending -= unheld
                self._on_disk.clear()
                self._futures.clear()
                self._settled.notify_all()
            self._leave_in_spool(kept + waiting)
            self._leave_in_spool(parked, held=False)
            self._give_back_spool()
            stay = unheld + sum(not event.cancelled() for event in kept + waiting)
            if stay:
                logger.info("EventRecorder %s: %d event(s) stay in the spool", reason, stay)
            left = [event for event in left if event._spool_id is None]
        for event in left:
            closed = RecorderClosedError(f"the recorder was {reason} before delivering it")
            self._drop(event, closed, warn=False)
        with self._lock:
            sending = self._pending if spool is None else 0
            earlier, self._unwarned_drops = self._unwarned_drops, 0
        if left or sending:
            logger.warning(
                "EventRecorder %s: %d event(s) not delivered and not spooled: %d dropped from "
                "the queue, %d still being sent%s",
                reason, len(left) + sending, len(left), sending,
                " (lost with the process)" if at_exit else "",
            )  # fmt: skip
        if earlier:
            logger.warning("EventRecorder %s: %d earlier drop(s) not yet reported", reason, earlier)

    def _start_workers(self) -> None:
        with self._lock:
            if self._threads or self._stopping:
                return
            _import_what_workers_need()
            for number in range(self._worker_count):
                thread = threading.Thread(
                    target=self._work, name=f"openapi_client-recorder-{number}", daemon=True
                )
                self._threads.append(thread)
            if self._spool_path is not None:
                self._queue.put(PUMP)  # events an earlier process left behind
        for thread in self._threads:
            thread.start()

    def _after_fork_in_child(self) -> None:
        self._start_fresh()  # the spool handle too: the child opens its own, as a new owner

    def _at_exit(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # No new thread at exit (3.12 refuses them): what the workers deliver in time is sent.
        self._flush(self._exit_timeout, start_workers=False)
        self._stop("stopped at interpreter exit", join_seconds=0.1, at_exit=True)


RECORDERS: weakref.WeakSet[Lifecycle] = weakref.WeakSet()
_hooks_installed = False


def _import_what_workers_need() -> None:
    """A fork while a worker thread is inside an ``import`` would leave the child's import lock
    held forever; everything a worker may import on first use is imported here, up front."""
    import email.utils  # noqa: F401 - Retry-After dates
    import encodings.idna  # noqa: F401 - urllib3's first connection
    import ipaddress  # noqa: F401
    import urllib.parse  # noqa: F401


def install_process_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_stop_all_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_reset_all_after_fork)


def _stop_all_at_exit() -> None:
    for recorder in list(RECORDERS):
        try:
            recorder._at_exit()
        except Exception:  # one recorder's trouble must not cost the others their events
            logging.getLogger(__name__).exception("EventRecorder: error at exit")


def _reset_all_after_fork() -> None:
    for recorder in list(RECORDERS):
        recorder._after_fork_in_child()
