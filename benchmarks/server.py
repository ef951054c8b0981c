"""A loopback HTTP/1.1 keep-alive server that answers every request with one canned 201.

It runs in its own process so that it never competes with the measured client for the GIL.
``start_server()`` launches it and returns a handle; the server process ends by itself when
the parent closes its stdin (or dies), or after ``--lifetime`` seconds, whichever comes first.

Run alone for a quick look: ``python benchmarks/server.py --delay-ms 2`` prints the port and
serves until ``--lifetime`` runs out or it is interrupted.

With ``--control`` (``start_server(control=True)``) the server also counts what it answers and
takes control requests, for recorder_throughput.py; without it, it is exactly the plain server
above (no body is parsed, nothing is counted):

- ``--limit N``: while N API requests are being handled, another one is answered at once with a
  ``503``, ``Retry-After: 1`` and ``[{"message":"busy","type":"server"}]``;
- ``POST /_bench/latency`` with ``{"ms": 2000}`` (or ``?ms=2000``) changes the delay of the
  requests that arrive from then on;
- ``GET /_bench/stats``: API requests answered, by status, the peak of API requests handled at
  once, the distinct ``offerUuid`` values answered with a 201 and how many got more than one;
- ``POST /_bench/reset`` zeroes those counts (requests still in flight then are not counted).

``control(url, method, path, payload)`` sends a control request (plain ``http.client``).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"
DEFAULT_LIFETIME = 600.0

ANSWER_BODY = json.dumps(
    {
        "id": 4242,
        "uuid": "6a2f41a3-c54c-fce8-32d2-0324e1c32e22",
        "leadUuid": "f914eb07-a64f-51d8-b882-ff508a8c5c81",
        "rateTableUuid": "0f2c3f6e-7f41-4d6b-9a55-3a4e2f0c9b10",
        "offerUuid": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
        "createdAt": "2024-05-01T12:34:56.789Z",
        "createdBy": "11111111-2222-4333-8444-555555555555",
    },
    separators=(",", ":"),
).encode()
"""A valid ``OfferDisplay`` as the real API would send it."""

ANSWER = (
    b"HTTP/1.1 201 Created\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: " + str(len(ANSWER_BODY)).encode() + b"\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n" + ANSWER_BODY
)
_CLOSE_ANSWER = ANSWER.replace(b"Connection: keep-alive", b"Connection: close")
_MAX_HEAD = 64 * 1024


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Serve one connection: any number of requests, each answered with the canned 201."""
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # the client closed the connection between requests
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
            if length:
                await reader.readexactly(length)
            if delay:
                await asyncio.sleep(delay)
            writer.write(_CLOSE_ANSWER if close else ANSWER)
            if close:
                await writer.drain()
                return
            if writer.transport.get_write_buffer_size() > _MAX_HEAD:
                await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        return
    except asyncio.CancelledError:
        return  # the server is shutting down with this connection still open
    finally:
        writer.close()


# -- the control-enabled variant (--control): counts, a concurrency limit, a latency knob ----

BUSY_BODY = b'[{"message":"busy","type":"server"}]'
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: " + str(len(BUSY_BODY)).encode() + b"\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n" + BUSY_BODY
)
CONTROL_PREFIX = b"/_bench/"


class BenchState:
    """What the control-enabled server counts, and its knobs (one event loop: no locks)."""

    def __init__(self, delay: float, limit: int) -> None:
        self.delay = delay
        self.limit = limit
        self.in_flight = 0
        """API requests being handled now, counted or not (what the limit looks at)."""
        self.generation = 0
        self.reset()

    def reset(self) -> None:
        self.generation += 1
        self.requests = 0
        self.by_status: dict[int, int] = {}
        self.current = 0  # requests of this generation being handled now
        self.peak = 0
        self.offers: dict[str, int] = {}  # offerUuid -> 201s answered for it

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": {str(status): count for status, count in sorted(self.by_status.items())},
            "peak_concurrency": self.peak,
            "in_flight": self.current,
            "in_flight_all": self.in_flight,
            "offers_201": len(self.offers),
            "duplicates": sum(1 for count in self.offers.values() if count > 1),
            "duplicate_answers": sum(count - 1 for count in self.offers.values() if count > 1),
            "latency_ms": self.delay * 1000,
            "limit": self.limit,
            "generation": self.generation,
        }

    def answered(self, status: int) -> None:
        self.requests += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1


def _json_answer(status: str, payload: object, close: bool) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: {'close' if close else 'keep-alive'}\r\n\r\n"
    ).encode() + body


def _control_answer(
    state: BenchState, method: bytes, target: bytes, body: bytes
) -> tuple[str, object]:
    path, _, query = target.partition(b"?")
    name = path[len(CONTROL_PREFIX) :].decode("ascii", "replace")
    if name == "stats" and method == b"GET":
        return "200 OK", state.stats()
    if name == "reset" and method == b"POST":
        state.reset()
        return "200 OK", state.stats()
    if name == "latency" and method == b"POST":
        fields: dict[str, Any] = {
            k: v[-1] for k, v in urllib.parse.parse_qs(query.decode()).items()
        }
        if body.strip():
            fields.update(json.loads(body))
        ms = float(fields["ms"])
        if not 0 <= ms <= 600_000:
            raise ValueError(f"latency out of range: {ms}")
        state.delay = ms / 1000
        return "200 OK", {"latency_ms": ms}
    return "404 Not Found", {"error": f"no control {method.decode()} {path.decode()}"}


def _offer_uuid(body: bytes) -> str | None:
    try:
        value = json.loads(body).get("offerUuid")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


async def _handle_bench(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: BenchState
) -> None:
    """Serve one connection of the control-enabled server (see the module's docstring)."""
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            lines = head.split(b"\r\n")
            method, _, rest = lines[0].partition(b" ")
            target = rest.partition(b" ")[0]
            length = 0
            close = False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
            body = await reader.readexactly(length) if length else b""
            if target.startswith(CONTROL_PREFIX):
                try:
                    status, payload = _control_answer(state, method, target, body)
                except (ValueError, KeyError, TypeError) as error:
                    status, payload = "400 Bad Request", {"error": repr(error)}
                writer.write(_json_answer(status, payload, close))
            elif state.limit and state.in_flight >= state.limit:
                state.answered(503)
                writer.write(BUSY.replace(b"keep-alive", b"close") if close else BUSY)
            else:
                generation = state.generation
                state.in_flight += 1
                state.current += 1
                state.peak = max(state.peak, state.current)
                try:
                    if state.delay:
                        await asyncio.sleep(state.delay)
                finally:
                    state.in_flight -= 1
                    if state.generation == generation:
                        state.current -= 1
                if state.generation == generation:  # answered even if the client has gone:
                    state.answered(201)  # the real API would have stored the event
                    offer = _offer_uuid(body)
                    if offer is not None:
                        state.offers[offer] = state.offers.get(offer, 0) + 1
                writer.write(_CLOSE_ANSWER if close else ANSWER)
            if close:
                await writer.drain()
                return
            if writer.transport.get_write_buffer_size() > _MAX_HEAD:
                await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        return
    except asyncio.CancelledError:
        return
    finally:
        writer.close()


def control(
    url: str, method: str, path: str, payload: object = None, timeout: float = 10.0
) -> dict[str, Any]:
    """One control request to a ``--control`` server at ``url``; its JSON answer."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or HOST, parts.port, timeout=timeout)
    try:
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, "/_bench/" + path.lstrip("/"), body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"control {method} {path}: HTTP {response.status} {data[:200]!r}")
        answer: dict[str, Any] = json.loads(data)
        return answer
    finally:
        connection.close()


async def _serve(
    port: int,
    delay: float,
    lifetime: float,
    watch_stdin: bool,
    control: bool = False,
    limit: int = 0,
) -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def watch_parent() -> None:
        # The parent holds our stdin open; EOF means it closed it on purpose or exited.
        try:
            sys.stdin.buffer.read()
        finally:
            loop.call_soon_threadsafe(done.set)

    if watch_stdin:
        threading.Thread(target=watch_parent, daemon=True).start()
    loop.call_later(lifetime, done.set)
    if control:
        state = BenchState(delay, limit)
        server = await asyncio.start_server(
            lambda r, w: _handle_bench(r, w, state), HOST, port, limit=_MAX_HEAD, backlog=128
        )
    else:
        server = await asyncio.start_server(
            lambda r, w: _handle(r, w, delay), HOST, port, limit=_MAX_HEAD, backlog=128
        )
    async with server:
        bound = server.sockets[0].getsockname()[1]
        sys.stdout.write(f"{bound}\n")
        sys.stdout.flush()
        await done.wait()


class ServerHandle:
    """A running canned-answer server process; a context manager that stops it on exit."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, delay: float) -> None:
        self.process = process
        self.port = port
        self.delay = delay
        self.url = f"http://{HOST}:{port}"

    def stop(self) -> None:
        """Ask the server to exit (close its stdin), then make sure it did."""
        if self.process.poll() is not None:
            return
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_server(
    delay: float = 0.0,
    lifetime: float = DEFAULT_LIFETIME,
    *,
    control: bool = False,
    limit: int = 0,
) -> ServerHandle:
    """Start the server in a fresh interpreter and wait until it listens.

    ``delay`` is added (with ``asyncio.sleep``) before each answer, in seconds. ``control``
    makes it the counting server with control requests, ``limit`` (with ``control``) the API
    requests it handles at once before answering 503.
    """
    extra = ["--control", "--limit", str(limit)] if control else []
    process = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--delay-ms",
            repr(delay * 1000),
            "--lifetime",
            repr(lifetime),
            "--watch-stdin",
            *extra,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        process.wait(timeout=5)
        raise RuntimeError(f"benchmark server did not start (said {line!r})")
    return ServerHandle(process, int(line), delay)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="added before each answer")
    parser.add_argument("--lifetime", type=float, default=DEFAULT_LIFETIME, help="seconds")
    parser.add_argument(
        "--watch-stdin", action="store_true", help="exit when stdin closes (parent gone)"
    )
    parser.add_argument(
        "--control", action="store_true", help="count answers, take /_bench/ control requests"
    )
    parser.add_argument(
        "--limit", type=int, default=0, help="with --control: 503 above this many at once"
    )
    args = parser.parse_args(argv)
    if args.limit and not args.control:
        parser.error("--limit needs --control")
    asyncio.run(
        _serve(args.port, args.delay_ms / 1000, args.lifetime, args.watch_stdin, args.control,
               args.limit)
    )  # fmt: skip


if __name__ == "__main__":
    main()
