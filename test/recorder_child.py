"""A process that uses an ``EventRecorder``, for ``test_recorder_processes.py``.

Run as ``python recorder_child.py MODE --host URL --token TOKEN [options]``. It records
``--count`` offer displays, each with a fresh ``offerUuid`` (uuid4) and the ``--lead`` UUID (so
the server can tell processes apart), appending each ``offerUuid`` to ``--ids`` (one per line,
written with ``os.write``: it survives a ``kill -9``) once ``record_offer_display`` has returned.
Every request carries an ``X-Sender`` header naming the process (``parent``/``child`` + pid).

It talks to the test on stdout, one line per step, flushed at once:
``ready`` (recorder made; with ``--wait-go`` it then waits for a line on stdin, with
``--barrier FILE`` for a shared ``flock`` on FILE, which the test holds exclusively until every
process is ready: they all go on at the same instant),
``recorded N``, ``stats {json}``, ``threads {json}``, ``returning`` (main is about to return),
``child PID`` (a fork), ``done``.

In modes ``exit``, ``hang`` and ``flush``, ``--rounds R`` records R rounds of ``--count`` events,
each after the first waiting for a line on stdin (``recorded N`` after each round).

Modes:

* ``exit``: record, then return from main without flush or close (atexit delivers).
* ``hang``: record, then block until killed.
* ``flush``: record, ``flush(--flush-timeout)``, ``close()``; exit 0 only if flush said True.
* ``fork``: record (the parent), say ``recorded``, wait for a line on stdin, ``os.fork()``;
  the child records ``--child-count`` events with ``--child-lead`` (ids to ``--child-ids``),
  flushes, closes and ``os._exit``s; the parent flushes, closes and waits for the child.
* ``idle-fork``: make a recorder, record nothing, report its threads, fork; the child records
  ``--child-count`` events, flushes, reports threads and stats; the parent reports its threads.
* ``fork-parent-exits``: record and flush (the spool is open), fork; the parent closes and
  exits at once; the child waits for a line on stdin before each of two rounds of
  ``--child-count`` events (``recorded-1``, ``recorded-2``), then blocks until killed.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import threading
import uuid
import warnings
from typing import Any, NoReturn

from samples import RATE_TABLE

from openapi_client import ApiClient, Configuration, EventRecorder, RetryPolicy

# Forking while the recorder's workers run is what these children exist to do; Python 3.12+
# warns about any fork of a threaded process, which would fill the stderr the tests read.
warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)

THREAD_PREFIX = "openapi_client-recorder-"


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def wait_for_go() -> None:
    if not sys.stdin.readline():
        raise SystemExit("stdin closed before go")


def recorder_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX))


def make_recorder(args: argparse.Namespace) -> tuple[ApiClient, EventRecorder]:
    config = Configuration(
        host=args.host,
        access_token=args.token,
        retries=RetryPolicy(initial_backoff=0.01, max_backoff=0.05),
    )
    client = ApiClient(config)
    client.set_default_header("X-Sender", f"parent-{os.getpid()}")
    recorder = EventRecorder(
        client,
        workers=args.workers,
        max_queue=args.max_queue,
        spool=args.spool,
        exit_timeout=args.exit_timeout,
    )
    return client, recorder


def record(recorder: EventRecorder, count: int, lead: str, ids_path: str | None) -> None:
    fd = os.open(ids_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND) if ids_path else None
    try:
        for _ in range(count):
            offer = str(uuid.uuid4())
            recorder.record_offer_display(
                {"leadUuid": lead, "rateTableUuid": RATE_TABLE, "offerUuid": offer}
            )
            if fd is not None:
                os.write(fd, (offer + "\n").encode())
    finally:
        if fd is not None:
            os.close(fd)


def stats(recorder: EventRecorder) -> dict[str, Any]:
    return dict(vars(recorder.stats()))


def run_forked_child(
    args: argparse.Namespace, client: ApiClient, recorder: EventRecorder, *, threads: bool
) -> NoReturn:
    """In the child of a fork: record the child's events (then, with ``threads``, report the
    recorder's threads), flush, close, report stats and exit: 0 if flush said True, 1 if not,
    3 on an error (reported as ``child-error``)."""
    code = 3
    try:
        client.set_default_header("X-Sender", f"child-{os.getpid()}")
        record(recorder, args.child_count, args.child_lead, args.child_ids)
        if threads:
            say("child-threads " + json.dumps(recorder_threads()))
        flushed = recorder.flush(args.flush_timeout)
        recorder.close()
        say("child-stats " + json.dumps(stats(recorder)))
        code = 0 if flushed else 1
    except BaseException as error:
        say(f"child-error {error!r}")
    finally:
        os._exit(code)


def run_fork(args: argparse.Namespace, client: ApiClient, recorder: EventRecorder) -> int:
    record(recorder, args.count, args.lead, args.ids)
    say(f"recorded {args.count}")
    wait_for_go()
    pid = os.fork()
    if pid == 0:
        run_forked_child(args, client, recorder, threads=False)
    say(f"child {pid}")
    flushed = recorder.flush(args.flush_timeout)
    recorder.close()
    say("stats " + json.dumps(stats(recorder)))
    _, status = os.waitpid(pid, 0)
    child_code = os.waitstatus_to_exitcode(status)
    say(f"child-exit {child_code}")
    return 0 if flushed and child_code == 0 else 1


def run_idle_fork(args: argparse.Namespace, client: ApiClient, recorder: EventRecorder) -> int:
    say("threads " + json.dumps(recorder_threads()))
    pid = os.fork()
    if pid == 0:
        run_forked_child(args, client, recorder, threads=True)
    say(f"child {pid}")
    say("threads-after-fork " + json.dumps(recorder_threads()))
    _, status = os.waitpid(pid, 0)
    say(f"child-exit {os.waitstatus_to_exitcode(status)}")
    say("threads-at-end " + json.dumps(recorder_threads()))
    return 0


def run_fork_parent_exits(
    args: argparse.Namespace, client: ApiClient, recorder: EventRecorder
) -> int:
    record(recorder, args.count, args.lead, args.ids)
    flushed = recorder.flush(args.flush_timeout)
    say(f"flushed {flushed}")
    pid = os.fork()
    if pid == 0:
        try:
            client.set_default_header("X-Sender", f"child-{os.getpid()}")
            for round_number in (1, 2):
                wait_for_go()
                record(recorder, args.child_count, args.child_lead, args.child_ids)
                say(f"recorded-{round_number} {args.child_count}")
            threading.Event().wait()
        except BaseException as error:
            say(f"child-error {error!r}")
        finally:
            os._exit(3)
    say(f"child {pid}")
    recorder.close()
    say("returning")
    return 0 if flushed else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "mode", choices=["exit", "hang", "flush", "fork", "idle-fork", "fork-parent-exits"]
    )
    parser.add_argument("--host", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--spool")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--ids")
    parser.add_argument("--lead", default=str(uuid.uuid4()))
    parser.add_argument("--child-count", type=int, default=0)
    parser.add_argument("--child-ids")
    parser.add_argument("--child-lead", default=str(uuid.uuid4()))
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--max-queue", type=int, default=10_000)
    parser.add_argument("--exit-timeout", type=float, default=2.0)
    parser.add_argument("--flush-timeout", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--wait-go", action="store_true")
    parser.add_argument("--barrier")
    args = parser.parse_args()

    client, recorder = make_recorder(args)
    say("ready")
    if args.wait_go:
        wait_for_go()
    if args.barrier:
        with open(args.barrier, "rb") as barrier:
            fcntl.flock(barrier, fcntl.LOCK_SH)
    if args.mode == "fork":
        return run_fork(args, client, recorder)
    if args.mode == "idle-fork":
        return run_idle_fork(args, client, recorder)
    if args.mode == "fork-parent-exits":
        return run_fork_parent_exits(args, client, recorder)
    for round_number in range(args.rounds):
        if round_number:
            wait_for_go()
        record(recorder, args.count, args.lead, args.ids)
        say(f"recorded {args.count}")
    if args.mode == "hang":
        threading.Event().wait()
        return 3
    if args.mode == "flush":
        flushed = recorder.flush(args.flush_timeout)
        recorder.close()
        say("stats " + json.dumps(stats(recorder)))
        say("returning")
        return 0 if flushed else 1
    say("returning")  # mode "exit": no flush, no close
    return 0


if __name__ == "__main__":
    sys.exit(main())
