"""Where recorders meet their process: the last delivery at interpreter exit, and ``SIGTERM``.

Python's default ``SIGTERM`` ends a process without ``atexit``: events in memory would go
silently. A recorder made in the main thread while ``SIGTERM`` has its default handler installs
one (``handle_sigterm=False`` opts out) that does what exit does, within ``exit_timeout``, then
puts the default back and re-raises, so the process still ends by ``SIGTERM``. A server that
installs its own handler and later restores ours and re-raises (uvicorn) reaches it the same way.
"""

from __future__ import annotations

import atexit
import logging
import signal
import threading
import weakref
from typing import Any

from openapi_client._fork import after_fork_in_child

_RECORDERS: weakref.WeakSet[Any] = weakref.WeakSet()
"""Each recorder's dispatcher (the part that outlives a recorder dropped without ``close``)."""
_lock = threading.Lock()
_atexit_installed = False
_sigterm_installed = False


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


def register_for_exit(dispatcher: Any, handle_sigterm: bool) -> None:
    """Stop ``dispatcher`` (its ``at_exit(reason)``) at interpreter exit, and at ``SIGTERM``."""
    global _atexit_installed
    with _lock:
        _RECORDERS.add(dispatcher)
        if not _atexit_installed:
            _atexit_installed = True
            atexit.register(_stop_all, "stopped at interpreter exit")
            after_fork_in_child(None, _after_fork_in_child)
    if handle_sigterm:
        _install_sigterm_handler()


def _stop_all(reason: str) -> None:
    for dispatcher in list(_RECORDERS):
        try:
            dispatcher.at_exit(reason)
        except Exception:  # one recorder's trouble must not cost the others their events
            logging.getLogger(__name__).exception("EventRecorder: error at exit")


def _install_sigterm_handler() -> None:
    global _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return  # the application (or its server) decides what SIGTERM does
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError, AttributeError):  # no signals here (a sub-interpreter)
        return
    _sigterm_installed = True


def _on_sigterm(signum: int, frame: object) -> None:
    """Deliver or spool what the recorders hold, then end by ``SIGTERM`` as before."""
    # In a thread: the main thread may be inside a recorder, holding one of its locks.
    budget = sum(r.exit_timeout + 1.0 for r in list(_RECORDERS))
    worker = threading.Thread(target=_stop_all, args=("stopped by SIGTERM",), daemon=True)
    try:
        worker.start()
    except RuntimeError:  # no thread now (shutdown): here, then
        _stop_all("stopped by SIGTERM")
    else:
        worker.join(budget)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.raise_signal(signal.SIGTERM)



