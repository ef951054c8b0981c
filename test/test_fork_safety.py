"""Fork safety: after ``os.fork()`` (gunicorn --preload, uWSGI, multiprocessing, Celery prefork)
a child never uses a connection its parent opened.

Parent and child share one ``ApiClient`` made before the fork, with a pooled keep-alive
connection to a ``RecordingServer`` (which echoes the ``sessionUuid`` it is sent and numbers the
connections requests come on). Both then call at the same time, each call with a fresh
``sessionUuid``: if they shared the pooled socket, their requests and answers would interleave
on it. The server's connection numbers show directly whether the child sent on a connection
the parent opened. The child reports through its exit code and a pipe, always leaves with
``os._exit`` and is killed if it overruns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import signal
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from samples import session_init_answer
from support import Canned, Recorded, RecordingServer, make_client

from openapi_client import RetryPolicy, UIEventsApi

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    # Python 3.12+ warns about fork() in a process with threads: the server's, here, on purpose.
    pytest.mark.filterwarnings("ignore:.*fork\\(\\).*:DeprecationWarning"),
]

CALLS = 50
TIMEOUT = (1.0, 1.0)
CHILD_SECONDS = 20.0
"""Far more than the child's calls need (milliseconds each); past it the child is killed."""
FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.02)


def calls_with_own_uuids(
    api: UIEventsApi, count: int, timeout: tuple[float, float] = TIMEOUT, caller: str = "?"
) -> list[str]:
    """``count`` session inits, each with a fresh ``sessionUuid`` that the answer must echo and
    an ``X-Caller`` header; the first problem found (the calls stop there), or an empty list."""
    for index in range(count):
        sent = str(uuid.uuid4())
        try:
            answer = api.create_session_init(
                {"sessionUuid": sent}, _request_timeout=timeout, _headers={"X-Caller": caller}
            )
        except Exception as error:
            return [f"pid {os.getpid()} call {index}: {type(error).__name__}: {error}"]
        if str(answer.session_uuid) != sent:
            return [
                f"pid {os.getpid()} call {index}: sent {sent}, answer for {answer.session_uuid}"
            ]
    return []


READY = b"+"
"""What the child writes first: after its first call, so that the server sees that call alone
on whatever connection the child took, and the parent starts calling while the child goes on."""


@dataclasses.dataclass(frozen=True)
class Child:
    pid: int
    report: int
    """Read end of the pipe the child writes to: ``READY``, then its problems as JSON; EOF
    once it has exited."""

    def wait_ready(self, timeout: float) -> None:
        """Return once the child has made its first call (a child stuck in it is killed)."""
        ready, _, _ = select.select([self.report], [], [], timeout)
        if not ready:
            self.kill()
        assert ready, f"the child's first call did not end within {timeout} s (deadlock?)"
        assert os.read(self.report, 1) == READY, "the child ended without a word"

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)


def fork_child(work: Callable[[Callable[[], None]], list[str]]) -> Child:
    """Run ``work(ready)`` in a forked child, which reports its problems as JSON and
    ``os._exit``s; ``READY`` is written when ``work`` calls ``ready``, or before the report."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: whatever happens, it never returns into pytest
        code = 3
        problems: list[str] = []
        signalled = False

        def ready() -> None:
            nonlocal signalled
            if not signalled:
                signalled = True
                os.write(write_end, READY)

        try:
            os.close(read_end)
            problems = work(ready)
            code = 1 if problems else 0
        except BaseException as error:
            problems = [f"child raised {error!r}"]
            code = 2
        finally:
            with contextlib.suppress(BaseException):
                ready()
                os.write(write_end, json.dumps(problems[:1]).encode()[:4000])
            os._exit(code)
    os.close(write_end)
    return Child(pid, read_end)


def child_calls(api: UIEventsApi) -> Callable[[Callable[[], None]], list[str]]:
    """The child's work: one call alone, then ``CALLS`` more while the parent calls too."""

    def work(ready: Callable[[], None]) -> list[str]:
        problems = calls_with_own_uuids(api, 1, caller="child")
        ready()
        return problems or calls_with_own_uuids(api, CALLS, caller="child")

    return work


def wait_for(child: Child, timeout: float) -> tuple[int | None, list[str]]:
    """The child's exit code and problems; a child still running after ``timeout`` is killed
    (exit code None)."""
    deadline = time.monotonic() + timeout
    data = b""
    try:
        while True:
            left = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([child.report], [], [], left)
            if not ready:
                child.kill()
                return None, [f"child still running after {timeout} s: killed (deadlock?)"]
            chunk = os.read(child.report, 4096)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(child.report)
    _, status = os.waitpid(child.pid, 0)
    return os.waitstatus_to_exitcode(status), json.loads(data) if data else []


def callers(server: RecordingServer) -> dict[str, set[int]]:
    """Which connections carried each caller's requests (by their ``X-Caller`` header)."""
    used: dict[str, set[int]] = {}
    for request in server.requests:
        used.setdefault(request.headers.get("X-Caller", "?"), set()).add(request.connection)
    return used


def test_forked_child_never_sends_on_the_parents_pooled_connection() -> None:
    """After a fork, the child opens its own connections instead of the keep-alive one the
    parent pooled, and parent and child calling at once each get their own answers."""
    with RecordingServer() as server, make_client(server, retries=FAST) as client:
        api = UIEventsApi(client)
        assert calls_with_own_uuids(api, 1, caller="before-fork") == []  # pools connection 1

        child = fork_child(child_calls(api))
        child.wait_ready(CHILD_SECONDS)
        parent_problems = calls_with_own_uuids(api, CALLS, caller="parent")
        child_code, child_problems = wait_for(child, CHILD_SECONDS)
        used = callers(server)

    inherited = used.get("child", set()) & (used["before-fork"] | used.get("parent", set()))
    assert not inherited, (
        f"the child sent on the parent's connection(s) {sorted(inherited)}; "
        f"child: {child_problems[:1]}, parent: {parent_problems[:1]}"
    )
    assert not child_problems, child_problems[0]
    assert not parent_problems, parent_problems[0]
    assert child_code == 0


def test_fork_while_a_thread_is_mid_call_leaves_the_child_able_to_call() -> None:
    """Forking while another thread of the parent waits for its answer neither deadlocks the
    child on inherited locks nor hands it the parent's idle connection; the thread in flight
    still gets its own answer."""
    holding, release = threading.Event(), threading.Event()

    def answer(request: Recorded) -> Canned:
        if request.headers.get("X-Caller") == "held":
            holding.set()
            release.wait(CHILD_SECONDS)
        return Canned(201, session_init_answer(request.json()))

    with (
        RecordingServer() as server,
        make_client(server, retries=FAST) as client,
        ThreadPoolExecutor(1) as executor,
    ):
        server.respond_with(answer)
        api = UIEventsApi(client)
        slow = (1.0, CHILD_SECONDS)
        try:
            # Two keep-alive connections: a held call keeps 1 while a second call opens 2.
            first = executor.submit(calls_with_own_uuids, api, 1, slow, "held")
            assert holding.wait(5)
            assert calls_with_own_uuids(api, 1, caller="before-fork") == []
            holding.clear()
            release.set()
            assert first.result(timeout=10) == []
            release.clear()
            # A thread waits for its answer on one of them; the other is idle in the pool.
            in_flight = executor.submit(calls_with_own_uuids, api, 1, slow, "held")
            assert holding.wait(5)

            child = fork_child(child_calls(api))
            child.wait_ready(CHILD_SECONDS)
            parent_problems = calls_with_own_uuids(api, CALLS, caller="parent")
            child_code, child_problems = wait_for(child, CHILD_SECONDS)
        finally:
            release.set()
        in_flight_problems = in_flight.result(timeout=10)
        used = callers(server)

    before_fork = used["before-fork"] | used["held"]
    assert len(before_fork) == 2
    inherited = used.get("child", set()) & (before_fork | used.get("parent", set()))
    assert not inherited, (
        f"the child sent on the parent's connection(s) {sorted(inherited)}; "
        f"child: {child_problems[:1]}, parent: {parent_problems[:1]}"
    )
    assert not child_problems, child_problems[0]
    assert child_code == 0
    assert not parent_problems, parent_problems[0]
    assert not in_flight_problems, in_flight_problems[0]
