"""A loopback HTTP/1.1 keep-alive server that answers every request with one canned 201.

It runs in its own process so that it never competes with the measured client for the GIL.
``start_server()`` launches it and returns a handle; the server process ends by itself when
the parent closes its stdin (or dies), or after ``--lifetime`` seconds, whichever comes first.

Run alone for a quick look: ``python benchmarks/server.py --delay-ms 2`` prints the port and
serves until ``--lifetime`` runs out or it is interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType

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


async def _serve(port: int, delay: float, lifetime: float, watch_stdin: bool) -> None:
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


def start_server(delay: float = 0.0, lifetime: float = DEFAULT_LIFETIME) -> ServerHandle:
    """Start the server in a fresh interpreter and wait until it listens.

    ``delay`` is added (with ``asyncio.sleep``) before each answer, in seconds.
    """
    process = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--delay-ms",
            repr(delay * 1000),
            "--lifetime",
            repr(lifetime),
            "--watch-stdin",
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
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.delay_ms / 1000, args.lifetime, args.watch_stdin))


if __name__ == "__main__":
    main()
