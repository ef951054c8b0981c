"""A loopback HTTP/1.1 keep-alive server for the recorder's concurrency tests: an API that
takes its time, may take only so many requests at once, and counts what it sees.

Each connection is served by a thread of its own, request after request (keep-alive), until
the client closes it. A request is answered after ``latency`` seconds (read as it arrives, so
a test may change it at run time) with ``status``: a 201 carries the ``OfferDisplay`` for the
body, so the recorder sees a real success; another status an error body. Above ``limit``
requests at once the server answers ``503`` instead (an API that sheds load); ``script``
answers given requests (by arrival number, 1-based) with a status of their own. Every 503 is
answered at once, with ``Retry-After: 1`` unless ``retry_after`` says otherwise. ``hold()``
keeps every request waiting before its answer until ``let_go()``::

    with LimitedServer(latency=0.05, limit=8) as server:
        ...  # point a recorder at server.url
        assert server.peak <= 8 and server.delivered() == expected

What it records: every arrival in order (its ``offerUuid``, how many requests were being
handled at that instant, itself included, and the status it got), the peak of that count,
the offerUuids answered 201 (``delivered``), and the TCP connections accepted
(``connections``). A request counts as handled from the moment it is read in full until
just before its answer is sent (so the server never counts a request the client already
considers done). Nothing here sleeps to synchronise: waits are on a condition that ``stop()``
wakes.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import socket
import threading
from collections.abc import Mapping
from http import HTTPStatus

from rawserver import RawServer, read_raw_request
from samples import offer_display_answer

RETRY_AFTER = "1"


@dataclasses.dataclass(frozen=True)
class Arrival:
    """One request as it arrived."""

    number: int
    """1, 2, ... in order of arrival."""
    offer_uuid: str
    open: int
    """Requests being handled at the server as it arrived, itself included."""
    status: int
    """The status it was (or will be) answered with."""
    connection: int


class LimitedServer(RawServer):
    """See the module docstring. ``port`` (0: any free one) lets a server take over a port
    that refused connections until then (an API coming back)."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        limit: int | None = None,
        status: int = 201,
        script: Mapping[int, int] | None = None,
        retry_after: str | None = RETRY_AFTER,
        port: int = 0,
    ) -> None:
        super().__init__(name="limitedserver", port=port)
        self.latency = latency
        self.limit = limit
        self.status = status
        self.script = dict(script or {})
        self.retry_after = retry_after
        """The ``Retry-After`` of every 503 (``None``: none)."""
        self._changed = threading.Condition(self._lock)
        self._stopped = False
        self._holding = False
        self._handling = 0
        self.peak = 0
        self._arrivals: list[Arrival] = []
        self._delivered: list[str] = []

    # -- what tests do -------------------------------------------------------------------------

    def hold(self) -> None:
        """From now on, requests wait before their answer until ``let_go()``."""
        with self._changed:
            self._holding = True

    def let_go(self) -> None:
        with self._changed:
            self._holding = False
            self._changed.notify_all()

    # -- what tests read -----------------------------------------------------------------------

    @property
    def arrivals(self) -> list[Arrival]:
        with self._lock:
            return list(self._arrivals)

    @property
    def arrived(self) -> int:
        with self._lock:
            return len(self._arrivals)

    @property
    def in_progress(self) -> int:
        """Requests being handled now."""
        with self._lock:
            return self._handling

    @property
    def delivery_order(self) -> list[str]:
        """The offerUuids answered 201, in the order their answers went out."""
        with self._lock:
            return list(self._delivered)

    def delivered(self) -> collections.Counter[str]:
        """How often each offerUuid was answered 201 (stored, as far as the API goes)."""
        return collections.Counter(self.delivery_order)

    def statuses(self) -> collections.Counter[int]:
        """How many requests got each status."""
        return collections.Counter(arrival.status for arrival in self.arrivals)

    # -- lifecycle -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Wake every waiting request (it ends without an answer), then ``RawServer.stop``."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        super().stop()

    # -- serving -------------------------------------------------------------------------------

    def _handle(self, sock: socket.socket, number: int) -> None:
        while True:
            raw = read_raw_request(sock)
            if raw is None:
                return  # the client closed the connection
            body = json.loads(raw.body)
            with self._changed:
                arrival_number = len(self._arrivals) + 1
                status = self.script.get(arrival_number, self.status)
                if self.limit is not None and self._handling >= self.limit:
                    status = 503
                self._handling += 1
                self.peak = max(self.peak, self._handling)
                self._arrivals.append(
                    Arrival(
                        arrival_number, body.get("offerUuid", ""), self._handling, status, number
                    )
                )
                latency = 0.0 if status == 503 else self.latency  # a 503 is answered at once
                if latency > 0:
                    self._changed.wait_for(lambda: self._stopped, timeout=latency)
                self._changed.wait_for(lambda: self._stopped or not self._holding)
                self._handling -= 1
                if self._stopped:
                    return
                if status == 201:
                    self._delivered.append(body["offerUuid"])
            sock.sendall(self._answer(status, body, arrival_number))
            if any(v.lower() == "close" for v in raw.header_values("connection")):
                return

    def _answer(self, status: int, body: dict[str, str], number: int) -> bytes:
        headers = {"Content-Type": "application/json"}
        if status == 201:
            payload = json.dumps(offer_display_answer(body, number)).encode()
        elif status == 503:
            payload = b""
            if self.retry_after is not None:
                headers["Retry-After"] = self.retry_after
        else:
            payload = json.dumps([{"message": f"refused with {status}"}]).encode()
        headers["Content-Length"] = str(len(payload))
        head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return (head + "\r\n").encode("latin-1") + payload
