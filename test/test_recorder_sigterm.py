"""SIGTERM ends a process without losing what its ``EventRecorder`` holds (issue 14 item 23).

Real processes against a fake Engine on 127.0.0.1 that answers after ~20 ms (so events are
still being delivered when the signal comes): a plain script whose memory-only recorder is
made at module level (SIGTERM sent by itself, by its parent, or restored and re-raised by a
handler installed after the recorder's, as uvicorn does), a FastAPI app under the real
``uvicorn``, and a Flask app under the real ``gunicorn``, each with a module-level recorder and
no code of its own that closes it. Each event is either delivered (the server has its
offerUuid, exactly once) or counted as lost in ONE warning line that gives the number; never
silently gone. The process still ends as SIGTERM ends it (``-15``; gunicorn's master exits 0).
``handle_sigterm=False`` leaves the default handler alone.

Children import ``openapi_client`` from the tree under test (``PYTHONPATH``). Nothing sleeps to
synchronise: the tests wait on the children's stdout and exit, on a listening port, and on
the server's records, each wait bounded.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import urllib3
from recorder_support import TOKEN, WAIT
from samples import LEAD, RATE_TABLE

import openapi_client
from openapi_client.testing import FakeEngineServer

PROJECT = Path(openapi_client.__file__).resolve().parents[1]
"""The tree under test: child processes import ``openapi_client`` from here too."""
ANSWER_DELAY = 0.02
"""Seconds the fake Engine takes to answer each event: deliveries are under way at SIGTERM."""
RUN_SECONDS = 60.0
"""Far more than any child needs; past it the child is killed and the test fails."""

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals and processes")


# -- helpers -------------------------------------------------------------------------------------


def child_env(engine: FakeEngineServer) -> dict[str, str]:
    """A child's environment: ``openapi_client`` from the tree under test, and where the fake
    Engine is (the apps read ``TEST_ENGINE_URL`` and ``TEST_ENGINE_TOKEN``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("BEARER_TOKEN", "ENGINE_API_HOST")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
    env["TEST_ENGINE_URL"] = engine.url
    env["TEST_ENGINE_TOKEN"] = TOKEN
    return env


@pytest.fixture
def slow_engine() -> Iterator[FakeEngineServer]:
    """The fake Engine, taking ``ANSWER_DELAY`` to answer each of the next 1000 requests."""
    with FakeEngineServer(token=TOKEN) as engine:
        engine.delay_next(ANSWER_DELAY, times=1000)
        yield engine


class Child:
    """A process in its own session (``killpg`` ends it and whatever it started), stdout read
    line by line, stderr kept in a file."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self._stderr_path = cwd / "stderr.txt"
        with self._stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                args,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )

    def expect(self, line: str) -> None:
        """Wait (bounded) for the child to print ``line``."""
        stdout = self.proc.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], RUN_SECONDS)
        said = stdout.readline().decode().strip() if ready else "(nothing)"
        assert said == line, f"the child said {said!r}, not {line!r}; stderr {self.stderr()!r}"

    def finish(self) -> int:
        """Its exit code (``-N`` when signal N ended it); a child still running after
        ``RUN_SECONDS`` is killed and the test fails."""
        try:
            return self.proc.wait(RUN_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running after {RUN_SECONDS} s: {self.stderr()}") from None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(RUN_SECONDS)

    def stderr(self) -> str:
        return self._stderr_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        else:  # its workers (gunicorn) may outlive it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def children() -> Iterator[Callable[[list[str], dict[str, str], Path], Child]]:
    """Start ``Child`` processes; any still running after the test is killed."""
    started: list[Child] = []

    def start(args: list[str], env: dict[str, str], cwd: Path) -> Child:
        child = Child(args, env, cwd)
        started.append(child)
        return child

    yield start
    for child in started:
        child.close()


def loss_lines(text: str) -> list[tuple[int, str]]:
    """Lines that report events lost (not delivered, not kept), with the number they give."""
    found = []
    for line in text.splitlines():
        if "lost" in line or "not delivered" in line:
            number = re.search(r"(\d+) event\(s\)", line)
            if number is not None:
                found.append((int(number.group(1)), line))
    return found


def assert_delivered_or_counted(
    engine: FakeEngineServer, offer_uuids: list[str], stderr: str, *, processes: int = 1
) -> None:
    """Every event reached the server at most once, and those that did not are counted in ONE
    warning line per process (at most ``processes`` lines) whose numbers add up to them. A
    request the dying process sent may still be on its way: the server is given until
    ``WAIT`` to finish it."""
    assert "Traceback" not in stderr, stderr
    losses = loss_lines(stderr)
    assert len(losses) <= processes, f"the loss is not said in one line: {losses}"
    reported = sum(number for number, _ in losses)
    wanted = set(offer_uuids)
    total = len(wanted)
    assert total == len(offer_uuids)

    def delivered() -> int:
        received = collections.Counter(d.offer_uuid for d in engine.offer_displays)
        twice = [u for u in wanted if received[u] > 1]
        assert not twice, f"{len(twice)} event(s) delivered more than once"
        return sum(1 for u in wanted if received[u])

    deadline = time.monotonic() + WAIT
    while delivered() + reported < total and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    got = delivered()
    assert got + reported >= total, (
        f"{total - got - reported} of {total} event(s) silently lost: "
        f"{got} delivered, {reported} counted lost ({losses}); stderr {stderr!r}"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_listener(child: Child, port: int) -> None:
    """Until something accepts connections on ``port`` (bounded; fails if the child ends)."""
    deadline = time.monotonic() + RUN_SECONDS
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert child.proc.poll() is None, f"the server ended: {child.stderr()}"
            assert time.monotonic() < deadline, f"nobody listens on {port}: {child.stderr()}"
            threading.Event().wait(0.05)


def show_offers(port: int, count: int) -> list[str]:
    """POST ``/shown/{offerUuid}`` ``count`` times (each records one event in the app)."""
    shown = []
    with urllib3.PoolManager() as http:
        for _ in range(count):
            offer = str(uuid.uuid4())
            response = http.request("POST", f"http://127.0.0.1:{port}/shown/{offer}", timeout=10)
            assert response.status == 200, (response.status, response.data)
            shown.append(offer)
    return shown


# -- a plain script ------------------------------------------------------------------------------

SCRIPT = f"""
import os, signal, sys, threading, uuid
from openapi_client import ApiClient, Configuration, EventRecorder

url, token, ids_path, sender = sys.argv[1:5]
# Module level, main thread, default SIGTERM handler: memory only.
recorder = EventRecorder(ApiClient(Configuration(host=url, access_token=token)))

captured = threading.Event()
if sender == "restoring-handler":  # uvicorn's way: own handler now, the previous one restored
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: captured.set())

with open(ids_path, "w") as ids:
    for _ in range(100):
        offer = str(uuid.uuid4())
        recorder.record_offer_display(
            {{"leadUuid": "{LEAD}", "rateTableUuid": "{RATE_TABLE}", "offerUuid": offer}}
        )
        ids.write(offer + "\\n")
print("recorded", flush=True)
if sender == "itself":
    os.kill(os.getpid(), signal.SIGTERM)
captured.wait(30)  # SIGTERM ends the process during this wait
if captured.is_set():  # ... unless a later handler took it: restore the previous, re-raise
    signal.signal(signal.SIGTERM, previous)
    signal.raise_signal(signal.SIGTERM)
    threading.Event().wait(30)
print("still running after SIGTERM", flush=True)
sys.exit(3)
"""


@pytest.mark.parametrize("sender", ["itself", "parent", "restoring-handler"])
def test_sigterm_to_a_script_delivers_or_counts_every_event(
    slow_engine: FakeEngineServer,
    children: Callable[[list[str], dict[str, str], Path], Child],
    tmp_path: Path,
    sender: str,
) -> None:
    """Issue 14 item 23: a script with a memory-only recorder made at module level records
    100 events against an API that answers in ~20 ms, then gets SIGTERM (from itself, from its
    parent, or from its parent while a later handler holds SIGTERM that restores the previous
    one and re-raises it, as uvicorn does). Every event is delivered exactly once or counted in
    ONE warning line with the number, and the process still dies of SIGTERM (-15)."""
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    ids = tmp_path / "ids.txt"
    child = children(
        [sys.executable, str(script), slow_engine.url, TOKEN, str(ids), sender],
        child_env(slow_engine),
        tmp_path,
    )
    child.expect("recorded")
    if sender != "itself":
        child.proc.send_signal(signal.SIGTERM)
    code = child.finish()
    stderr = child.stderr()
    assert code == -signal.SIGTERM, (code, stderr)
    offer_uuids = ids.read_text().split()
    assert len(offer_uuids) == 100
    assert_delivered_or_counted(slow_engine, offer_uuids, stderr)


# -- uvicorn -------------------------------------------------------------------------------------

RECORDER_MADE_AT_IMPORT = """
import os

from openapi_client import ApiClient, Configuration, EventRecorder

# Made at import (uvicorn's main thread; each gunicorn worker); nothing closes it.
recorder = EventRecorder(
    ApiClient(
        Configuration(
            host=os.environ["TEST_ENGINE_URL"], access_token=os.environ["TEST_ENGINE_TOKEN"]
        )
    )
)
"""

ASGI_APP = RECORDER_MADE_AT_IMPORT + f"""
from fastapi import FastAPI

app = FastAPI()


@app.post("/shown/{{offer}}")
async def shown(offer: str) -> dict[str, str]:
    recorder.record_offer_display(
        {{"leadUuid": "{LEAD}", "rateTableUuid": "{RATE_TABLE}", "offerUuid": offer}}
    )
    return {{"recorded": offer}}
"""


@pytest.mark.slow
def test_sigterm_to_uvicorn_delivers_or_counts_every_event(
    slow_engine: FakeEngineServer,
    children: Callable[[list[str], dict[str, str], Path], Child],
    tmp_path: Path,
) -> None:
    """Issue 14 item 23: a FastAPI app with a module-level recorder (no lifespan close) under
    the real ``uvicorn`` (which installs its own SIGTERM handler, and on the way out restores
    the previous one and re-raises the signal) serves 200 requests, each recording one event,
    then uvicorn gets SIGTERM: every event is delivered exactly once or counted in ONE warning
    line, and uvicorn still dies of SIGTERM."""
    pytest.importorskip("uvicorn")
    pytest.importorskip("fastapi")
    (tmp_path / "shop_asgi.py").write_text(ASGI_APP)
    port = free_port()
    server = children(
        [
            *(sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)),
            *("--log-level", "warning", "shop_asgi:app"),
        ],
        child_env(slow_engine),
        tmp_path,
    )
    wait_for_listener(server, port)
    shown = show_offers(port, 200)
    server.proc.send_signal(signal.SIGTERM)
    code = server.finish()
    stderr = server.stderr()
    assert code == -signal.SIGTERM, (code, stderr)
    assert_delivered_or_counted(slow_engine, shown, stderr)


# -- gunicorn ------------------------------------------------------------------------------------

WSGI_APP = RECORDER_MADE_AT_IMPORT + f"""
import flask

app = flask.Flask(__name__)


@app.post("/shown/<offer>")
def shown(offer):
    recorder.record_offer_display(
        {{"leadUuid": "{LEAD}", "rateTableUuid": "{RATE_TABLE}", "offerUuid": offer}}
    )
    return {{"recorded": offer}}
"""


@pytest.mark.slow
def test_sigterm_to_gunicorn_delivers_or_counts_every_event(
    slow_engine: FakeEngineServer,
    children: Callable[[list[str], dict[str, str], Path], Child],
    tmp_path: Path,
) -> None:
    """Issue 14 item 23: a Flask app with a module-level recorder and no ``worker_exit`` hook
    under the real ``gunicorn`` (2 workers) serves 100 requests, each recording one event, then
    the master gets SIGTERM: its workers handle it and exit normally, and every event is
    delivered exactly once or counted (ONE warning line per worker at most); the master
    exits 0."""
    pytest.importorskip("gunicorn")
    pytest.importorskip("flask")
    (tmp_path / "shop_wsgi.py").write_text(WSGI_APP)
    port = free_port()
    server = children(
        [
            *(sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}"),
            *("--graceful-timeout", "20", "shop_wsgi:app"),
        ],
        child_env(slow_engine),
        tmp_path,
    )
    wait_for_listener(server, port)
    shown = show_offers(port, 100)
    server.proc.send_signal(signal.SIGTERM)
    code = server.finish()
    stderr = server.stderr()
    assert code == 0, (code, stderr)
    assert_delivered_or_counted(slow_engine, shown, stderr, processes=2)


# -- which handler is installed ------------------------------------------------------------------

HANDLERS = """
import signal, sys, threading
from openapi_client import ApiClient, Configuration, EventRecorder

client = ApiClient(Configuration(host="http://127.0.0.1:9", access_token="pk_test_unused"))
case = sys.argv[1]

def own_handler(signum, frame):
    pass

assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
if case == "handle_sigterm=False":
    EventRecorder(client, handle_sigterm=False)
elif case == "default options":
    EventRecorder(client)
elif case == "app's own handler":
    signal.signal(signal.SIGTERM, own_handler)
    EventRecorder(client)
elif case == "made in another thread":
    thread = threading.Thread(target=EventRecorder, args=(client,))
    thread.start()
    thread.join()
handler = signal.getsignal(signal.SIGTERM)
if handler is signal.SIG_DFL:
    print("default")
elif handler is own_handler:
    print("app's own")
else:
    print("recorder's")
"""


@pytest.mark.parametrize(
    ("case", "after"),
    [
        ("handle_sigterm=False", "default"),
        ("default options", "recorder's"),
        ("app's own handler", "app's own"),
        ("made in another thread", "default"),
    ],
)
def test_the_recorder_takes_over_only_the_default_sigterm_handler_and_only_if_asked(
    tmp_path: Path, case: str, after: str
) -> None:
    """Issue 14 item 23: a recorder made in the main thread over the default SIGTERM handler
    installs its own, unless ``handle_sigterm=False`` (then ``signal.getsignal(SIGTERM)`` is
    still ``SIG_DFL`` after construction); a handler the application installed stays, and a
    recorder made in another thread changes nothing (and raises nothing)."""
    script = tmp_path / "handlers.py"
    script.write_text(HANDLERS)
    env = {k: v for k, v in os.environ.items() if k not in ("BEARER_TOKEN", "ENGINE_API_HOST")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(script), case],
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == after, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
