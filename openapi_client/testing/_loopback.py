"""An HTTP server for tests on this machine: threads per connection, a register of open
connections so that stopping hangs them up, and an accept loop that stops at once.

The fake Engine server is built on it, and so is the SDK's own test server.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import socketserver
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

JOIN_TIMEOUT_SECONDS: Final = 5.0
_log = logging.getLogger("openapi_client.testing")


def hang_up(connections: Iterable[tuple[socket.socket, threading.Thread]]) -> None:
    """Shut every connection down (its handler's read returns), then join its thread."""
    connections = list(connections)
    for sock, _ in connections:
        with contextlib.suppress(OSError):  # already closed by the peer or its handler
            sock.shutdown(socket.SHUT_RDWR)
    for _, thread in connections:
        thread.join(JOIN_TIMEOUT_SECONDS)


class LoopbackHTTPServer(ThreadingHTTPServer):
    """The stdlib threading server, made to start and stop cleanly and at once."""

    daemon_threads = True
    request_queue_size = 128  # a burst of concurrent clients must not wait for SYN retries

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        family: socket.AddressFamily = socket.AF_INET,
        stopping: threading.Event | None = None,
    ) -> None:
        self.address_family = family
        self.stopping = stopping or threading.Event()
        self._connections_lock = threading.Condition()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._thread: threading.Thread | None = None
        # stop() writes a byte here to wake the accept loop at once (no polling interval).
        self._wake_reader, self._wake_writer = socket.socketpair()
        try:
            super().__init__(address, handler)
        except BaseException:
            self._wake_reader.close()
            self._wake_writer.close()
            raise
        self.socket.setblocking(False)  # accept() must not hang if a connection vanished

    # -- running it on a thread of its own ---------------------------------------------------

    def start_thread(self, name: str) -> None:
        """Serve in a background thread until :meth:`stop_serving`."""
        self._thread = threading.Thread(target=self.serve, name=name, daemon=True)
        self._thread.start()

    def stop_serving(self) -> None:
        """Stop accepting, hang up every open connection, close the socket."""
        self.stopping.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_SECONDS)
            self._thread = None
        self.close_connections()
        self.server_close()

    def serve(self) -> None:
        """Accept connections until :meth:`wake` is called after ``stopping`` is set.

        ``serve_forever`` would notice a shutdown only at its next poll; this loop sleeps in
        ``select`` on the listening socket and on a wake-up socket, so stopping is immediate.
        """
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self.stopping.is_set():
                ready = {key.fileobj for key, _ in selector.select()}
                if self.socket in ready and not self.stopping.is_set():
                    self._accept()

    def _accept(self) -> None:
        try:
            request, client_address = self.get_request()
        except OSError:  # nothing to accept after all (BlockingIOError) or the peer left
            return
        request.setblocking(True)
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)

    def wake(self) -> None:
        """Wake :meth:`serve` so that it sees ``stopping``."""
        with contextlib.suppress(OSError):  # the buffer is full of wake-ups already
            self._wake_writer.send(b"\0")

    # -- the connections ---------------------------------------------------------------------

    @property
    def open_connections(self) -> int:
        with self._connections_lock:
            return len(self._connections)

    def wait_open_connections_at_most(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until no more than ``count`` connections are open; False if it did not happen."""
        with self._connections_lock:
            return self._connections_lock.wait_for(lambda: len(self._connections) <= count, timeout)

    def close_connections(self) -> None:
        """Hang up every open connection and wait for its thread to finish."""
        with self._connections_lock:
            connections = list(self._connections.items())
        hang_up(connections)

    # -- socketserver hooks ------------------------------------------------------------------

    def server_close(self) -> None:
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve a host name for the address (slow, useless here).
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"loopback-conn-{client_address}",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.pop(request, None)
            self._connections_lock.notify_all()
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("error while answering %s", client_address, exc_info=True)
