"""The package's one fork hook: objects that hold per-process state (locks, sockets, SQLite
connections, threads) say what a forked child must do with it, and nothing else registers one.

A child inherits every lock in the state its parent's threads left it in, and copies of the
parent's sockets and files: each registered object replaces its locks and forgets (never uses,
never closes politely) what belongs to the parent.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

_callbacks: list[tuple[weakref.ReferenceType[Any] | None, Callable[..., None]]] = []
_lock = threading.Lock()
_installed = False


def after_fork_in_child(owner: object | None, callback: Callable[..., None]) -> None:
    """Call ``callback(owner)`` in a forked child, for as long as ``owner`` lives (or
    ``callback()`` for the life of the process when ``owner`` is None). In the order registered."""
    global _installed
    with _lock:
        reference = weakref.ref(owner) if owner is not None else None
        _callbacks.append((reference, callback))
        if not _installed and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_run_in_child)
            _installed = True
        if len(_callbacks) > 64:  # forget the dead now and then: the list stays small
            _callbacks[:] = [(r, c) for r, c in _callbacks if r is None or r() is not None]


def _run_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a parent thread may have held it at the fork
    for reference, callback in list(_callbacks):
        try:
            if reference is None:
                callback()
            elif (owner := reference()) is not None:
                callback(owner)
        except Exception:  # one object's trouble must not leave the others inherited
            logging.getLogger("openapi_client").exception("error resetting state after fork")
