"""A raw-socket server on this machine that keeps each request's exact bytes and answers with
bytes a test computes from that request.

An HTTP server library would merge duplicate headers and refuse to send malformed answers;
this one (a ``rawserver.RawServer``) does neither. Each accepted connection carries one
request (head plus ``Content-Length`` body, kept as a ``RawRequest``); ``respond(request)``
returns the whole answer as bytes (status line, headers, body: anything at all), which is sent
before the connection is closed::

    with EchoServer(lambda request: http_answer(401, echo_document(request))) as server:
        ...  # point the SDK at server.url
        (request,) = server.requests
        assert request.header_values("authorization") == ["Bearer ..."]

Helpers build the answers the tests need: ``http_answer`` (any status, reason phrase, headers
and body, header values sent as Latin-1 so that a server echoing a header sends its bytes
back) and ``session_init_created`` (a responder: a valid 201 for any request);
``local_lan_address`` finds an address of this machine that is not loopback.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable

from rawserver import RawRequest, RawServer, read_raw_request
from samples import session_init_answer

Responder = Callable[[RawRequest], bytes]


class EchoServer(RawServer):
    """Answers each request with ``respond(request)``; keeps every request in ``requests``.

    Listens on ``host`` (an IPv6 address with ``family=socket.AF_INET6``); the listener,
    threads and ``stop()`` are ``RawServer``'s.
    """

    def __init__(
        self, respond: Responder, host: str = "127.0.0.1", family: int = socket.AF_INET
    ) -> None:
        super().__init__(host=host, family=family, name="echoserver")
        self._respond = respond
        self._requests: list[RawRequest] = []

    @property
    def requests(self) -> list[RawRequest]:
        with self._lock:
            return list(self._requests)

    def _handle(self, sock: socket.socket, number: int) -> None:
        request = read_raw_request(sock)
        if request is None:
            return
        with self._lock:
            self._requests.append(request)
        sock.sendall(self._respond(request))
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)


def http_answer(
    status: int,
    body: bytes,
    headers: list[tuple[str, str]] | None = None,
    *,
    reason: str = "Status",
    content_type: str | None = "application/json",
) -> bytes:
    """A complete HTTP/1.1 answer; header values and the reason phrase are sent as Latin-1."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines += [f"{name}: {value}" for name, value in headers or []]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def session_init_created(request: RawRequest) -> bytes:
    """A responder: ``201 Created`` with a valid ``SessionInit``, whatever was asked."""
    return http_answer(201, json.dumps(session_init_answer()).encode(), reason="Created")


def local_lan_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (so the SDK must treat it as a
    remote host, yet connecting to it never leaves the machine); None if there is none.

    Connecting a UDP socket sends nothing: it only asks the kernel which source address it
    would use.
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 9))
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    if address.startswith("127.") or address == "0.0.0.0":
        return None
    try:  # it must be ours: something can listen on it
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as check:
            check.bind((address, 0))
    except OSError:
        return None
    return address
