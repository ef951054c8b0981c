"""The EventRecorder's durability costs, two trees of the package side by side in one run.

Compares the recorder of two checkouts (``--before`` and ``--after``): every measurement runs in
a fresh interpreter with ``PYTHONPATH`` set to that tree, the two trees alternating round by
round (run.py's ``_orders``: before, after, then after, before, ...), so drift on a shared
machine hits both alike. The table gives, per tree, the median over rounds [min–max] and the
ratio after/before taken round by round.

    python benchmarks/recorder_durability.py --before /work/base --after .
    python benchmarks/recorder_durability.py --before /work/base --after . --smoke   # < 20 s
    python benchmarks/recorder_durability.py --before A --after B --only a,b --rounds 5

Figures:

(a) ``record_offer_display(dict)`` in the caller's thread, memory only: each call timed alone
    (``perf_counter_ns``), in blocks of 500 each followed by a ``flush`` (as recorder.py does),
    4 workers delivering to the loopback server (server.py) meanwhile; p50 and p99 of the
    round's calls (20,000 per round by default, after one unmeasured warm-up block);
(b) the same with a spool (a SQLite file in the temporary folder);
(c) the same while a busy peer process shares the spool file: a second interpreter that holds
    ``BEGIN IMMEDIATE`` on it for 50 ms every 100 ms (python's sqlite3), as another recorder on
    the file or an operator's shell does. A stall that long is rare per call, so p99.9 and the
    maximum are shown too;
(d) draining a backlog: a recorder (that tree's own, so the file has that tree's schema) records
    100,000 events into a spool while its API never answers (a listening socket nobody
    accepts on), then is killed with SIGKILL (a crash, as in docs/EventRecorder.md); a fresh
    recorder then ``flush()``es the file to a loopback server (in its own process, a 201
    ``OfferDisplay`` at once) that notes when it answers each request. Reported: events/s
    (the backlog over the wall time from creating the recorder to the end of its ``flush``),
    and the time the first 10,000 and the last 10,000 answers took (equal when the drain is
    linear in the backlog).

The measuring children import ``run`` (BODY, TOKEN, ``_quiet_gc``) from this folder with the
tree's own ``openapi_client``; beyond that they use only the public ``EventRecorder`` API. The
parent imports ``run`` (``_orders``, ``_spread``) with the ``--before`` tree first on its path,
so a broken ``openapi_client`` in the checkout it runs from does not stop the comparison. A
child that fails is reported in the table (the last line it wrote to stderr) and the run goes
on. Exit status is 0 unless the parent itself crashes; there are no goals here.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import math
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import server as canned_server

HERE = Path(__file__).resolve()
WORKERS = 4
BLOCK = 500
"""Records timed one by one, then a flush: the memory queue never fills, as in recorder.py."""
PEER_HOLD = 0.050
PEER_PERIOD = 0.100
FLUSH_TIMEOUT = 1800.0
"""A drain slower than this is reported as far as it went."""
CHILD_TIMEOUT = FLUSH_TIMEOUT + 300.0
FIGURES = {
    "a": "memory only",
    "b": "spool",
    "c": "spool + busy peer",
    "d": "drain a backlog",
}


@dataclass
class Sizes:
    rounds: int = 3
    calls: int = 20_000  # timed records per tree per round, figures a, b and c
    block: int = BLOCK
    backlog: int = 100_000
    slice: int = 10_000  # first and last answers compared in figure d

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(rounds=1, calls=300, block=100, backlog=1_000, slice=100)


# -- the measuring children (one interpreter each, PYTHONPATH = the tree) ----------------------


def _check_tree(tree: str) -> str:
    """The ``openapi_client`` this child imports is the tree's, or the comparison is void."""
    import openapi_client

    where = os.path.realpath(str(openapi_client.__file__))
    if not where.startswith(os.path.realpath(tree) + os.sep):
        raise RuntimeError(f"openapi_client comes from {where}, not from the tree {tree}")
    return where


def _stats(recorder: Any) -> dict[str, Any]:
    stats = recorder.stats()
    names = ("enqueued", "sent", "failed", "dropped", "retried", "pending", "spooled")
    return {name: getattr(stats, name, None) for name in names}


def _client(url: str, **settings: Any) -> Any:
    from run import TOKEN

    from openapi_client import ApiClient, Configuration

    return ApiClient(Configuration(host=url, access_token=TOKEN, **settings))


def _flush(recorder: Any) -> None:
    if not recorder.flush(timeout=FLUSH_TIMEOUT):
        raise RuntimeError(f"flush did not deliver in {FLUSH_TIMEOUT:g} s: {_stats(recorder)}")


def _timed_block(recorder: Any, count: int, took: array.array[int]) -> None:
    """``count`` records, each timed alone in ns; then a flush (not timed)."""
    from run import BODY, _quiet_gc

    clock = time.perf_counter_ns
    with _quiet_gc():
        for _ in range(count):
            start = clock()
            recorder.record_offer_display(BODY)
            took.append(clock() - start)
    _flush(recorder)


def _percentile(ordered: Sequence[int], p: float) -> float:
    """Nearest rank, in µs."""
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] / 1000


def child_record(figure: str, tree: str, url: str, calls: int, block: int) -> dict[str, Any]:
    """Figures a, b and c in this interpreter: warm up one block, then ``calls`` timed records."""
    from openapi_client.recorder import EventRecorder

    where = _check_tree(tree)
    took: array.array[int] = array.array("q")
    peer: subprocess.Popen[str] | None = None
    peer_report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-durability-") as folder:
        spool = os.path.join(folder, "events.db") if figure in ("b", "c") else None
        client = _client(url)
        recorder = EventRecorder(client, workers=WORKERS, spool=spool)
        try:
            _timed_block(recorder, block, array.array("q"))  # threads, connections, the file
            if figure == "c":
                assert spool is not None
                peer = _start_peer(spool)
                _timed_block(recorder, block, array.array("q"))  # warm up with the peer too
            for done in range(0, calls, block):
                _timed_block(recorder, min(block, calls - done), took)
            if peer is not None:
                peer_report = _stop_peer(peer)
                peer = None
            stats = _stats(recorder)
        finally:
            if peer is not None:
                _stop_peer(peer)
            recorder.close(timeout=60)
            client.close()
    expected = calls + block * (2 if figure == "c" else 1)
    if stats["sent"] is not None and (stats["sent"] != expected or stats["failed"] or stats["dropped"]):  # fmt: skip
        raise RuntimeError(f"events lost or failed: {stats} (expected {expected} sent)")
    ordered = sorted(took)
    return {
        "calls": len(ordered),
        "p50": _percentile(ordered, 50),
        "p99": _percentile(ordered, 99),
        "p99.9": _percentile(ordered, 99.9),
        "max": ordered[-1] / 1000,
        "over_10ms": sum(1 for ns in ordered if ns > 10_000_000),
        "stats": stats,
        "peer": peer_report,
        "openapi_client": where,
    }


def child_prefill(tree: str, url: str, spool: str, count: int) -> None:
    """Record ``count`` events into ``spool`` while the API never answers, say so, and wait to
    be killed (the parent's SIGKILL is the point: a crash with a backlog on disk)."""
    from run import BODY

    from openapi_client.recorder import EventRecorder

    _check_tree(tree)
    # Its deliveries wait on a socket nobody answers: nothing is sent, failed or retried
    # while it records (a read times out only after 10 minutes).
    client = _client(url, timeout=600.0)
    recorder = EventRecorder(client, workers=WORKERS, spool=spool, delivery_timeout=3600.0)
    began = time.perf_counter()
    for number in range(count):
        body = dict(BODY, leadUuid=f"{number:08x}-a64f-51d8-b882-ff508a8c5c81")
        recorder.record_offer_display(body)
    seconds = time.perf_counter() - began
    print(json.dumps({"recorded": count, "seconds": seconds, "stats": _stats(recorder)}))
    sys.stdout.flush()
    sys.stdin.read()  # until killed (or the parent goes away)
    os._exit(3)


def child_drain(tree: str, url: str, spool: str) -> dict[str, Any]:
    """A fresh recorder flushes what the killed one left; wall times in ``monotonic_ns`` (one
    clock for every process on Linux, so they compare with the server's)."""
    from openapi_client.recorder import EventRecorder

    _check_tree(tree)
    client = _client(url)
    began = time.monotonic_ns()
    recorder = EventRecorder(client, workers=WORKERS, spool=spool)
    flushed = recorder.flush(timeout=FLUSH_TIMEOUT)
    ended = time.monotonic_ns()
    stats = _stats(recorder)
    recorder.close(timeout=10)
    client.close()
    return {"began": began, "ended": ended, "flushed": flushed, "stats": stats}


# -- the busy peer: BEGIN IMMEDIATE held for PEER_HOLD every PEER_PERIOD -----------------------


def _watch_stdin(stop: threading.Event) -> None:
    def watch() -> None:
        try:
            sys.stdin.buffer.read()
        finally:
            stop.set()

    threading.Thread(target=watch, daemon=True).start()


def peer_main(path: str, hold: float, period: float, lifetime: float) -> None:
    """Hold the file's write lock ``hold`` s every ``period`` s until stdin closes."""
    stop = threading.Event()
    _watch_stdin(stop)
    db = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30.0, isolation_level=None)
    end = time.monotonic() + lifetime
    waits: list[float] = []
    start = time.monotonic()
    while not stop.is_set() and time.monotonic() < end:
        asked = time.monotonic()
        db.execute("BEGIN IMMEDIATE")
        waits.append(time.monotonic() - asked)
        if len(waits) == 1:
            print("holding", flush=True)
        stop.wait(hold)
        db.execute("COMMIT")
        start = max(start + period, time.monotonic())
        stop.wait(start - time.monotonic())
    db.close()
    waits.sort()
    report = {
        "holds": len(waits),
        "wait_p50_ms": waits[len(waits) // 2] * 1000 if waits else None,
        "wait_max_ms": waits[-1] * 1000 if waits else None,
    }
    print(json.dumps(report), flush=True)


def _start_peer(path: str) -> subprocess.Popen[str]:
    peer = subprocess.Popen(
        [sys.executable, str(HERE), "--peer", path, str(PEER_HOLD), str(PEER_PERIOD)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert peer.stdout is not None
    line = peer.stdout.readline()
    if line.strip() != "holding":
        peer.kill()
        peer.wait(timeout=10)
        raise RuntimeError(f"the busy peer did not start (said {line!r})")
    return peer


def _stop_peer(peer: subprocess.Popen[str]) -> dict[str, Any]:
    try:
        out, _ = peer.communicate(input="", timeout=30)
    except subprocess.TimeoutExpired:
        peer.kill()
        peer.wait(timeout=10)
        return {}
    lines = out.strip().splitlines()
    return dict(json.loads(lines[-1])) if lines else {}


# -- the counting server: server.py's handler, each answer's time noted ------------------------


class _NotingWriter:
    """A ``StreamWriter`` for server.py's ``_handle`` that notes when each answer is written."""

    def __init__(self, writer: asyncio.StreamWriter, times: array.array[int]) -> None:
        self._writer = writer
        self._times = times

    def write(self, data: bytes) -> None:
        self._times.append(time.monotonic_ns())
        self._writer.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


async def _serve_counting(times_path: str, lifetime: float) -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    times: array.array[int] = array.array("q")
    stop = threading.Event()
    _watch_stdin(stop)
    threading.Thread(
        target=lambda: (stop.wait(), loop.call_soon_threadsafe(done.set)), daemon=True
    ).start()
    loop.call_later(lifetime, done.set)
    listener = await asyncio.start_server(
        lambda r, w: canned_server._handle(r, _NotingWriter(w, times), 0.0),  # type: ignore[arg-type]
        canned_server.HOST, 0, limit=canned_server._MAX_HEAD, backlog=128,
    )  # fmt: skip
    async with listener:
        print(listener.sockets[0].getsockname()[1], flush=True)
        await done.wait()
    with open(times_path, "wb") as out:
        times.tofile(out)


class CountingServer:
    """The counting server in its own process; ``stop()`` returns each answer's time (ns)."""

    def __init__(self, folder: str, tree: str) -> None:
        self._times_path = os.path.join(folder, "answer-times")
        self.process = subprocess.Popen(
            [sys.executable, str(HERE), "--serve-counting", self._times_path],
            env=_env(tree), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.process.kill()
            self.process.wait(timeout=10)
            raise RuntimeError(f"counting server did not start (said {line!r})")
        self.url = f"http://{canned_server.HOST}:{int(line)}"

    def stop(self) -> list[int]:
        if self.process.poll() is None:
            try:
                self.process.communicate(input="", timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        times: array.array[int] = array.array("q")
        if os.path.exists(self._times_path):
            with open(self._times_path, "rb") as source:
                times.frombytes(source.read())
        return list(times)


# -- the parent: rounds, children, the table ---------------------------------------------------


class ChildFailed(Exception):
    pass


def _env(tree: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([tree, *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def _run_child(tree: str, args: list[str], timeout: float = CHILD_TIMEOUT) -> dict[str, Any]:
    command = [sys.executable, str(HERE), "--tree", tree, *args]
    try:
        done = subprocess.run(
            command, env=_env(tree), capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        raise ChildFailed(f"no answer in {timeout:g} s") from error
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        said = done.stderr.strip().splitlines()
        raise ChildFailed(said[-1] if said else f"exit status {done.returncode}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def measure_record(figure: str, tree: str, sizes: Sizes) -> dict[str, Any]:
    with canned_server.start_server(lifetime=CHILD_TIMEOUT) as api:
        return _run_child(tree, ["--record", figure, api.url, str(sizes.calls), str(sizes.block)])


def measure_drain(tree: str, sizes: Sizes) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-durability-") as folder:
        spool = os.path.join(folder, "events.db")
        prefill = _prefill(tree, spool, sizes.backlog)
        answers = CountingServer(folder, tree)
        try:
            drained = _run_child(tree, ["--drain", answers.url, spool])
        finally:
            times = answers.stop()
    return _drain_figures(sizes, prefill, drained, times)


def _prefill(tree: str, spool: str, count: int) -> dict[str, Any]:
    """A recorder of ``tree`` records ``count`` events, its API a socket nobody accepts on;
    then SIGKILL."""
    with socket.socket() as hole:
        hole.bind((canned_server.HOST, 0))
        hole.listen(64)
        url = f"http://{canned_server.HOST}:{hole.getsockname()[1]}"
        errors = os.path.join(os.path.dirname(spool), "prefill-stderr")
        with open(errors, "w+", encoding="utf-8") as stderr:  # a file: a pipe could fill up
            child = subprocess.Popen(
                [sys.executable, str(HERE), "--tree", tree, "--prefill", url, spool, str(count)],
                env=_env(tree), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                text=True,
            )  # fmt: skip
            assert child.stdin is not None
            assert child.stdout is not None
            try:
                line = _readline(child, timeout=600.0)
            finally:
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=30)
                child.stdin.close()
                child.stdout.close()
            stderr.seek(0)
            err = stderr.read()
    if not line.strip().startswith("{"):
        said = err.strip().splitlines()
        raise ChildFailed(f"prefill: {said[-1] if said else line!r}")
    result: dict[str, Any] = json.loads(line)
    spooled = result["stats"].get("spooled")
    if spooled is not None and spooled != count:
        raise ChildFailed(f"prefill left {spooled} events in the spool, not {count}")
    return result


def _readline(child: subprocess.Popen[str], timeout: float) -> str:
    """One line from the child's stdout, or '' after ``timeout`` s (the caller kills it)."""
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(child.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return got[0] if got else ""


def _drain_figures(sizes: Sizes, prefill: dict[str, Any], drained: dict[str, Any],
                   times: list[int]) -> dict[str, Any]:  # fmt: skip
    backlog = sizes.backlog
    answered = len(times)
    if not drained["flushed"] or answered < backlog:
        raise ChildFailed(
            f"drained {answered} of {backlog} in {(drained['ended'] - drained['began']) / 1e9:.0f} s"
            f" (flush returned {drained['flushed']}; stats {drained['stats']})"
        )
    times.sort()
    width = min(sizes.slice, backlog // 2)
    seconds = (drained["ended"] - drained["began"]) / 1e9
    tenth = backlog // 10
    return {
        "rate": backlog / seconds,
        "seconds": seconds,
        "first_slice": (times[width - 1] - times[0]) / 1e9,
        "last_slice": (times[backlog - 1] - times[backlog - width]) / 1e9,
        "first_answer": (times[0] - drained["began"]) / 1e9,
        "tenths_rate": [
            tenth / max(1e-9, (times[(k + 1) * tenth - 1] - times[k * tenth]) / 1e9)
            for k in range(10)
        ],
        "answered": answered,
        "prefill_seconds": prefill["seconds"],
        "stats": drained["stats"],
    }


def tree_label(tree: str) -> str:
    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", "-C", tree, *args], capture_output=True, text=True,
                                  timeout=10)  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "?"
    changed = git("status", "--porcelain", "--", "openapi_client")
    return commit + (" + uncommitted changes in openapi_client" if changed else "")


@dataclass
class Line:
    figure: str
    key: str
    unit: str
    before: list[float | None]
    after: list[float | None]

    def cells(self) -> list[str]:
        suffix = self.unit if self.unit in ("", "x", "/s") else f" {self.unit}"
        from run import _spread

        ratios = [a / b for a, b in zip(self.after, self.before, strict=True)
                  if a is not None and b]  # fmt: skip
        ratio = _spread(ratios, "x") if ratios else "—"
        return [self.figure, _cell(self.before, suffix), _cell(self.after, suffix), ratio]


def _cell(values: list[float | None], suffix: str) -> str:
    from run import _spread

    good = [v for v in values if v is not None]
    text = _spread(good, suffix) if good else "n/a"
    missing = len(values) - len(good)
    return text + (f" ({missing} failed)" if missing and good else "")


def _lines(results: dict[str, dict[str, list[dict[str, Any] | None]]], sizes: Sizes) -> list[Line]:
    def pick(figure: str, side: str, key: str) -> list[float | None]:
        return [None if r is None else r.get(key) for r in results[figure][side]]

    def line(figure: str, label: str, key: str, unit: str) -> Line:
        return Line(label, key, unit, pick(figure, "before", key), pick(figure, "after", key))

    calls = f"{sizes.calls:,} calls per round"
    rows: list[Line] = []
    if "a" in results:
        rows += [
            line("a", f"(a) record_offer_display(dict), memory only, p50 ({calls}, blocks of "
                 f"{sizes.block} + flush, {WORKERS} workers delivering)", "p50", "µs"),
            line("a", "  same, p99", "p99", "µs"),
        ]  # fmt: skip
    if "b" in results:
        rows += [
            line(
                "b", "(b) the same with a spool (SQLite file in the temp folder), p50", "p50", "µs"
            ),
            line("b", "  same, p99", "p99", "µs"),
            line("b", "  same, p99.9", "p99.9", "µs"),
            line("b", "  same, max", "max", "µs"),
        ]
    if "c" in results:
        hold = f"BEGIN IMMEDIATE {PEER_HOLD * 1000:g} ms every {PEER_PERIOD * 1000:g} ms"
        rows += [
            line("c", f"(c) with a spool while a peer process holds {hold} on it, p50", "p50", "µs"),
            line("c", "  same, p99", "p99", "µs"),
            line("c", "  same, p99.9", "p99.9", "µs"),
            line("c", "  same, max", "max", "µs"),
            line("c", "  same, records that took over 10 ms (of the round's calls)", "over_10ms", ""),
        ]  # fmt: skip
    if "d" in results:
        width = min(sizes.slice, sizes.backlog // 2)
        rows += [
            line("d", f"(d) drain a {sizes.backlog:,}-event backlog left by a killed recorder: "
                 "new recorder, flush(), loopback 201 at once; events/s", "rate", "/s"),
            line("d", f"  time for the first {width:,} answers", "first_slice", "s"),
            line("d", f"  time for the last {width:,} answers", "last_slice", "s"),
            line("d", "  last / first (1 = linear in the backlog)", "shape", "x"),
            line("d", "  from creating the recorder to the first answer", "first_answer", "s"),
        ]  # fmt: skip
    return rows


def table(rows: Sequence[Line]) -> str:
    header = ["figure", "before", "after", "after / before, per round"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--before", metavar="TREE", help="checkout whose openapi_client is 'before'"
    )
    parser.add_argument("--after", metavar="TREE", help="checkout whose openapi_client is 'after'")
    parser.add_argument("--smoke", action="store_true", help="tiny counts, well under 20 s")
    parser.add_argument("--rounds", type=int, help=f"rounds (default {Sizes.rounds})")
    parser.add_argument(
        "--calls", type=int, help=f"timed records per round (default {Sizes.calls:,})"
    )
    parser.add_argument("--backlog", type=int, help=f"events to drain (default {Sizes.backlog:,})")
    parser.add_argument("--only", metavar="FIGURES", help="comma list of a, b, c, d (default all)")
    parser.add_argument("--json", metavar="PATH", help="also write every round's results")
    # the children (internal)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    parser.add_argument("--record", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--prefill", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--drain", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--peer", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--serve-counting", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.peer:
        path, hold, period = args.peer
        peer_main(path, float(hold), float(period), lifetime=CHILD_TIMEOUT)
        return 0
    if args.serve_counting:
        asyncio.run(_serve_counting(args.serve_counting, lifetime=CHILD_TIMEOUT))
        return 0
    if args.record:
        figure, url, calls, block = args.record
        print(json.dumps(child_record(figure, args.tree, url, int(calls), int(block))))
        return 0
    if args.prefill:
        url, spool, count = args.prefill
        child_prefill(args.tree, url, spool, int(count))
        return 0
    if args.drain:
        url, spool = args.drain
        print(json.dumps(child_drain(args.tree, url, spool)))
        return 0

    if not args.before or not args.after:
        parser.error("--before TREE and --after TREE are required")
    trees = {"before": os.path.abspath(args.before), "after": os.path.abspath(args.after)}
    for tree in trees.values():
        if not os.path.isfile(os.path.join(tree, "openapi_client", "recorder", "__init__.py")):
            parser.error(f"{tree} has no openapi_client/recorder")
    sizes = Sizes.smoke() if args.smoke else Sizes()
    if args.rounds:
        sizes.rounds = args.rounds
    if args.calls:
        sizes.calls = args.calls
    if args.backlog:
        sizes.backlog = args.backlog
        sizes.slice = min(sizes.slice, args.backlog // 10)
    figures = args.only.split(",") if args.only else list(FIGURES)
    unknown = set(figures) - set(FIGURES)
    if unknown:
        parser.error(f"unknown figure(s): {', '.join(sorted(unknown))}")

    sys.path.insert(0, trees["before"])  # run.py's openapi_client: any working tree will do
    from run import _orders

    began = time.perf_counter()

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f} s] {text}", file=sys.stderr, flush=True)

    load_before = os.getloadavg()[0]
    results: dict[str, dict[str, list[dict[str, Any] | None]]] = {
        figure: {"before": [], "after": []} for figure in figures
    }
    errors: list[str] = []
    for number, order in enumerate(_orders(sizes.rounds, list(trees))):
        for figure in figures:
            for side in order:
                log(f"round {number + 1}/{sizes.rounds}, ({figure}) {FIGURES[figure]}, {side}")
                try:
                    if figure == "d":
                        result = measure_drain(trees[side], sizes)
                        result["shape"] = result["last_slice"] / result["first_slice"]
                    else:
                        result = measure_record(figure, trees[side], sizes)
                except ChildFailed as error:
                    message = f"({figure}) {side}, round {number + 1}: {error}"
                    log("  failed: " + str(error))
                    errors.append(message)
                    result = None
                results[figure][side].append(result)
    elapsed = time.perf_counter() - began

    mode = "smoke (numbers meaningless)" if args.smoke else "full"
    print(f"\nEventRecorder durability, {mode}: {sizes}")
    print(f"before = {trees['before']} ({tree_label(trees['before'])}); "
          f"after = {trees['after']} ({tree_label(trees['after'])})")  # fmt: skip
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, temp folder "
          f"{tempfile.gettempdir()}; load average before {load_before:.2f}, after "
          f"{os.getloadavg()[0]:.2f}; {elapsed:.0f} s\n")  # fmt: skip
    print(table(_lines(results, sizes)))
    if errors:
        print("\nfailures:")
        for message in errors:
            print(f"- {message}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"mode": mode, "sizes": asdict(sizes), "trees": trees, "elapsed_s": elapsed,
                       "results": results, "errors": errors}, out, indent=2)  # fmt: skip
            out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
