"""The SDK measured side by side with plain urllib3 in one run.

Every figure alternates SDK and baseline blocks round by round (the order flips each round),
so drift on a shared machine hits both sides alike; each figure reports the median over rounds
with the range. Run with the venv's python from the repository root:

    python benchmarks/run.py            # full run, about five minutes
    python benchmarks/run.py --smoke    # every figure with tiny counts, well under 30 s
    python benchmarks/run.py --json results.json --only wall,cpu

Exit status is 0 whatever the numbers (non-zero only on a crash), unless ``--check`` is given
outside ``--smoke``: then an unmet goal exits 1.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import pydantic
import pydantic_core
import urllib3
from server import ANSWER_BODY, start_server

from openapi_client import ApiClient, Configuration, OfferDisplay, UIEventsApi
from openapi_client.api.ui_events_api import CREATE_OFFER_DISPLAY
from openapi_client.rest import HttpRequest, RESTClientObject, RESTResponse, read_body
from openapi_client.validation import timeout_budget

TOKEN = "pk_bench_3f6c0a9d8e7b4c21a5f0e9d8c7b6a5f4"
PATH = "/uiEvent/offerDisplays"
BODY = {
    "leadUuid": "f914eb07-a64f-51d8-b882-ff508a8c5c81",
    "rateTableUuid": "0f2c3f6e-7f41-4d6b-9a55-3a4e2f0c9b10",
    "offerUuid": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
}
RAW_BODY = json.dumps(BODY, separators=(",", ":")).encode()
ANSWER_HEADERS = {"Content-Type": "application/json", "Content-Length": str(len(ANSWER_BODY))}
THREAD_DELAY = 0.002


@dataclass
class Sizes:
    """How much work each figure does; ``--smoke`` shrinks everything."""

    rounds: int = 15
    wall_calls: int = 1000
    cpu_calls: int = 10000
    import_rounds: int = 15
    thread_rounds: int = 15
    thread_calls: int = 120  # per thread, per block
    # the EventRecorder's figures (recorder.py)
    record_block: int = 500  # records timed one by one, then a flush
    record_blocks: int = 4  # blocks per variant per round
    slow_events: int = 200  # per block, server +20 ms per answer
    rate_events: int = 2000  # per block, loopback
    queued_events: int = 10000  # queued with every worker held
    queued_rounds: int = 5  # fresh interpreters: the memory figure barely varies

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(rounds=3, wall_calls=40, cpu_calls=400, import_rounds=2, thread_rounds=2,
                   thread_calls=8, record_block=20, record_blocks=1, slow_events=8,
                   rate_events=40, queued_events=200, queued_rounds=1)  # fmt: skip


@dataclass
class Row:
    """One line of the result table, with the per-round samples behind it."""

    figure: str
    unit: str
    sdk: list[float]
    baseline: list[float] = field(default_factory=list)
    compare: list[float] = field(default_factory=list)
    """Per-round SDK/baseline ratio ("x") or SDK-baseline difference (unit); empty if none."""
    compare_kind: str = "ratio"
    goal: str = "(context)"
    met: bool | None = None

    def cells(self) -> list[str]:
        ratio = "—"
        if self.compare:
            suffix = "x" if self.compare_kind == "ratio" else self._suffix()
            sign = "+" if self.compare_kind == "delta" else ""
            ratio = _spread(self.compare, suffix, sign)
        base = _spread(self.baseline, self._suffix()) if self.baseline else "—"
        met = "—" if self.met is None else ("yes" if self.met else "NO")
        sdk = _spread(self.sdk, self._suffix()) if self.sdk else "n/a"
        return [self.figure, sdk, base, ratio, self.goal, met]

    def _suffix(self) -> str:
        return self.unit if self.unit in ("x", "/s") else f" {self.unit}"


def _fmt(value: float, sign: str = "") -> str:
    text = f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return (sign if value >= 0 else "") + text


def _spread(values: Sequence[float], suffix: str, sign: str = "") -> str:
    if len(values) == 1:
        return f"{_fmt(values[0], sign)}{suffix}"
    med, low, high = statistics.median(values), min(values), max(values)
    dash = " – " if low < 0 or high < 0 else "–"
    return f"{_fmt(med, sign)}{suffix} [{_fmt(low, sign)}{dash}{_fmt(high, sign)}]"


def _ratios(top: Sequence[float], bottom: Sequence[float]) -> list[float]:
    return [a / b for a, b in zip(top, bottom, strict=True)]


def _orders(count: int, names: Sequence[str]) -> Iterator[list[str]]:
    """Round by round, the variants in turn, the order reversed every other round."""
    for index in range(count):
        yield list(names) if index % 2 == 0 else list(reversed(names))


@contextmanager
def _quiet_gc() -> Iterator[None]:
    """Start each timed block from a collected heap, with setup garbage out of the way."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _interleaved(
    variants: dict[str, Callable[[], object]], rounds: int, calls: int, warm: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per variant, per round: wall and CPU µs per call over ``calls`` calls, the variants
    interleaved round by round, after ``warm`` unmeasured calls each (connections, caches)."""
    for fn in variants.values():
        _time_calls(fn, warm)
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for order in _orders(rounds, list(variants)):
        for name in order:
            w, c = _time_calls(variants[name], calls)
            wall[name].append(w)
            cpu[name].append(c)
    return wall, cpu


def _time_calls(fn: Callable[[], object], calls: int) -> tuple[float, float]:
    """(wall µs per call, CPU µs per call) over ``calls`` back-to-back calls."""
    with _quiet_gc():
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(calls):
            fn()
        wall1, cpu1 = time.perf_counter(), time.process_time()
    return (wall1 - wall0) / calls * 1e6, (cpu1 - cpu0) / calls * 1e6


def _sdk_client(url: str) -> tuple[ApiClient, UIEventsApi]:
    client = ApiClient(Configuration(host=url, access_token=TOKEN))
    return client, UIEventsApi(client)


def _raw_headers(client: ApiClient) -> dict[str, str]:
    """The same headers the SDK sends, so both sides put the same bytes on the wire."""
    return {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": client.user_agent,
        "Authorization": f"Bearer {TOKEN}",
    }


# -- figure 1: per-call wall time over loopback ----------------------------------------------


def figure_wall(sizes: Sizes, log: Callable[[str], None]) -> list[Row]:
    log("per-call wall time over loopback (SDK, PoolManager.request, HTTPConnectionPool.urlopen)")
    with start_server() as server:
        client, api = _sdk_client(server.url)
        headers = _raw_headers(client)
        url = server.url + PATH
        manager = urllib3.PoolManager()
        pool = urllib3.HTTPConnectionPool("127.0.0.1", server.port, maxsize=1)
        # A socket with a timeout costs a poll() before every send and recv in CPython; the
        # SDK always has one (5 s / 10 s by default), the plain baselines have none.
        timed = urllib3.HTTPConnectionPool(
            "127.0.0.1", server.port, maxsize=1, timeout=client.configuration.timeout
        )

        def sdk() -> object:
            return api.create_offer_display(BODY)

        def raw() -> object:
            return json.loads(manager.request("POST", url, body=RAW_BODY, headers=headers).data)

        def direct() -> object:
            answer = pool.urlopen("POST", PATH, body=RAW_BODY, headers=headers, retries=False)
            return json.loads(answer.data)

        def direct_timed() -> object:
            answer = timed.urlopen("POST", PATH, body=RAW_BODY, headers=headers, retries=False)
            return json.loads(answer.data)

        variants = {"sdk": sdk, "raw": raw, "pool": direct, "timed": direct_timed}
        _check_answers(sdk(), raw(), direct(), direct_timed())
        wall, cpu = _interleaved(
            variants, sizes.rounds, sizes.wall_calls, warm=max(20, sizes.wall_calls // 10)
        )
        client.close()
        manager.clear()
        pool.close()
        timed.close()
    ratio = _ratios(wall["sdk"], wall["raw"])
    pool_name = "HTTPConnectionPool.urlopen (headers built once)"
    return [
        Row("per-call wall, create_offer_display(dict) vs PoolManager.request+json.loads", "µs",
            wall["sdk"], wall["raw"], ratio, goal="<= 0.90x",
            met=statistics.median(ratio) <= 0.90),
        Row(f"  same, vs {pool_name}", "µs", wall["sdk"], wall["pool"],
            _ratios(wall["sdk"], wall["pool"])),
        Row(f"  same, vs {pool_name} with the SDK's timeouts", "µs", wall["sdk"],
            wall["timed"], _ratios(wall["sdk"], wall["timed"])),
        Row("  client CPU per call over loopback, vs PoolManager.request", "µs", cpu["sdk"],
            cpu["raw"], _ratios(cpu["sdk"], cpu["raw"])),
        Row("  client CPU per call over loopback, vs HTTPConnectionPool.urlopen", "µs",
            cpu["sdk"], cpu["pool"], _ratios(cpu["sdk"], cpu["pool"])),
        Row("  client CPU per call over loopback, vs urlopen with the SDK's timeouts", "µs",
            cpu["sdk"], cpu["timed"], _ratios(cpu["sdk"], cpu["timed"])),
    ]  # fmt: skip


def _check_answers(sdk: object, *raw: object) -> None:
    assert isinstance(sdk, OfferDisplay), sdk
    expected = json.loads(ANSWER_BODY)
    for answer in raw:
        assert answer == expected, answer


# -- figure 2: client CPU per call with the network removed ----------------------------------


def canned_response() -> urllib3.HTTPResponse:
    """The canned 201 as urllib3 would hand it over, unread (``preload_content=False``)."""
    return urllib3.HTTPResponse(
        body=io.BytesIO(ANSWER_BODY),
        headers=ANSWER_HEADERS,
        status=201,
        reason="Created",
        version=11,
        preload_content=False,
    )


class CannedTransport:
    """Stands in for the network through the client's transport seam (``ApiClient(transport=)``):
    every send hands back a prebuilt answer, read with the SDK's own ``read_body``.

    Answers are built ahead with ``load(n)`` so building them is not part of the measured call.
    """

    def __init__(self) -> None:
        self._answers: list[urllib3.HTTPResponse] = []

    def load(self, count: int) -> None:
        self._answers = [canned_response() for _ in range(count)]

    def send(self, request: HttpRequest, deadline: float) -> RESTResponse:
        answer = self._answers.pop()
        return RESTResponse(answer, read_body(answer, request.max_bytes, request), request)

    def close(self) -> None:
        self._answers = []


def canned_client() -> tuple[ApiClient, UIEventsApi, CannedTransport]:
    """A client whose network is replaced by a ``CannedTransport``; nothing touches a socket."""
    transport = CannedTransport()
    client = ApiClient(
        Configuration(host="http://127.0.0.1:9", access_token=TOKEN), transport=transport
    )
    return client, UIEventsApi(client), transport


def figure_cpu(sizes: Sizes, log: Callable[[str], None]) -> list[Row]:
    log("client CPU per call with the network removed, and what it is made of")
    client, api, transport = canned_client()
    calls = sizes.cpu_calls
    transport.load(1)
    assert isinstance(api.create_offer_display(BODY), OfferDisplay)
    answers: list[urllib3.HTTPResponse] = []

    def raw_equivalent() -> object:
        # What the urllib3 baseline does around the network: serialise, read, parse.
        json.dumps(BODY, separators=(",", ":")).encode()
        return json.loads(answers.pop().read())

    variants: dict[str, Callable[[], object]] = {
        "call": lambda: api.create_offer_display(BODY),
        "raw": raw_equivalent,
        "build": canned_response,
        "encode": lambda: CREATE_OFFER_DISPLAY.encode(BODY),
        "decode": lambda: CREATE_OFFER_DISPLAY.decode(ANSWER_BODY),
        "read": lambda: read_body(answers.pop(), 1 << 20),
    }
    results: dict[str, list[float]] = {name: [] for name in variants}
    wall: list[float] = []
    for order in _orders(sizes.rounds + 1, list(variants)):
        for name in order:
            if name == "call":
                transport.load(calls)
            elif name in ("read", "raw"):
                answers[:] = [canned_response() for _ in range(calls)]
            w, c = _time_calls(variants[name], calls)
            results[name].append(c)
            if name == "call":
                wall.append(w)
    for samples in (*results.values(), wall):
        del samples[0]  # the first round is warm-up
    client.close()
    # Parts come from separate blocks, so subtract medians rather than round by round.
    med = {name: statistics.median(samples) for name, samples in results.items()}
    rest = [med["call"] - med["encode"] - med["decode"] - med["read"]]
    return [
        Row("client CPU per call, network removed (process_time)", "µs", results["call"],
            goal="<= 15 µs", met=statistics.median(results["call"]) <= 15.0),
        Row("  same, wall (perf_counter)", "µs", wall),
        Row("  part: Endpoint.encode(dict) (validate + to_json)", "µs", results["encode"]),
        Row("  part: Endpoint.decode(bytes) (model_validate_json)", "µs", results["decode"]),
        Row("  part: rest.read_body(canned answer), freeing it included", "µs", results["read"]),
        Row("  part: the rest of the pipeline (medians: call − the three parts)", "µs", rest),
        Row("  urllib3-style equivalent: json.dumps + answer.read() + json.loads", "µs",
            results["raw"]),
        Row("  not counted: building one canned HTTPResponse", "µs", results["build"]),
    ]  # fmt: skip


# -- the ladder (opt-in): the SDK's layers added one at a time over loopback ------------------


def figure_ladder(sizes: Sizes, log: Callable[[str], None]) -> list[Row]:
    """Client CPU per call over loopback as SDK layers are added one by one."""
    log("ladder: SDK layers added one at a time over loopback (client CPU per call)")
    endpoint = CREATE_OFFER_DISPLAY
    with start_server() as server:
        client, api = _sdk_client(server.url)
        config = client.configuration
        rest = RESTClientObject(config.pool_settings)
        timeout, url, headers = config.timeout, server.url + PATH, _raw_headers(client)
        budget = timeout_budget(timeout)
        pool = urllib3.HTTPConnectionPool("127.0.0.1", server.port, maxsize=1, timeout=timeout)
        send_options: dict[str, Any] = {
            "retries": False, "redirect": False, "preload_content": False,
            "assert_same_host": False,
        }  # fmt: skip

        def request(body: bytes) -> HttpRequest:
            return HttpRequest("POST", url, headers, body, timeout, budget, 1 << 20)

        def step0() -> object:
            answer = pool.urlopen("POST", PATH, body=RAW_BODY, headers=headers, retries=False)
            return json.loads(answer.data)

        def step1() -> object:
            answer = pool.urlopen("POST", PATH, body=RAW_BODY, headers=headers, **send_options)
            return json.loads(read_body(answer, 1 << 20))

        def step2() -> object:
            return json.loads(rest.send(request(RAW_BODY), time.monotonic() + budget).read())

        def step3() -> object:
            answer = rest.send(request(RAW_BODY), time.monotonic() + budget)
            return endpoint.decode(answer.read())

        def step4() -> object:
            answer = rest.send(request(endpoint.encode(BODY)), time.monotonic() + budget)
            return endpoint.decode(answer.read())

        def step5() -> object:
            return api.create_offer_display(BODY)

        steps: dict[str, Callable[[], object]] = {
            "0 urlopen(preload) + json.loads, SDK timeouts": step0,
            "1 urlopen(preload_content=False) + rest.read_body + json.loads": step1,
            "2 RESTClientObject.send (deadline-keeping connections) instead of urlopen": step2,
            "3 Endpoint.decode (pydantic) instead of json.loads": step3,
            "4 Endpoint.encode(dict) instead of pre-serialised bytes": step4,
            "5 the whole call: create_offer_display(dict)": step5,
        }
        for fn in steps.values():
            _time_calls(fn, max(20, sizes.wall_calls // 10))
        cpu: dict[str, list[float]] = {name: [] for name in steps}
        for order in _orders(sizes.rounds, list(steps)):
            for name in order:
                cpu[name].append(_time_calls(steps[name], sizes.wall_calls)[1])
        client.close()
        rest.close()
        pool.close()
    rows = []
    names = list(steps)
    for index, name in enumerate(names):
        if index == 0:
            rows.append(Row(f"ladder {name}", "µs", cpu[name]))
            continue
        before = cpu[names[index - 1]]
        delta = [a - b for a, b in zip(cpu[name], before, strict=True)]
        rows.append(Row(f"ladder {name}", "µs", cpu[name], before, delta, compare_kind="delta"))
    return rows


# -- figures 3 and 4: import time and RSS in fresh interpreters ------------------------------

_CHILD = """\
import time
_t0 = time.perf_counter()
{statement}
_t1 = time.perf_counter()
try:
    with open("/proc/self/statm") as _f:
        _rss = int(_f.read().split()[1]) * {page}
except OSError:
    _rss = -1
import resource
_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(_t1 - _t0, _rss, _max)
"""

_FIRST_USE = (
    "from openapi_client import ApiClient, Configuration, UIEventsApi\n"
    "import openapi_client as _m\n"
    "_m.OfferDisplay, _m.OfferDisplayCreateData, _m.SessionInit, _m.SessionInitCreateData\n"
    "_m.ApiError, _m.ApiException"
)
_DEPS = "import pydantic, urllib3, dateutil, typing_extensions"
_ONE_MODEL = (
    "\nclass _M(pydantic.BaseModel):\n"
    "    a: str = pydantic.Field(alias='A')\n"
    "    b: pydantic.StrictInt = 0\n"
)


@dataclass(frozen=True)
class ImportVariant:
    """One import comparison: what the SDK side runs, what the baseline runs, and its label."""

    label: str
    sdk: str
    base: str
    base_name: str
    goal: bool = True
    """False for context lines."""


IMPORT_VARIANTS = [
    ImportVariant("plain: `import openapi_client`", "import openapi_client", _DEPS, "deps"),
    ImportVariant("first use: `from openapi_client import ApiClient, Configuration, "
                  "UIEventsApi` + models", _FIRST_USE, _DEPS + "\npydantic.BaseModel",
                  "deps + pydantic.BaseModel"),
    ImportVariant("  first use", _FIRST_USE, _DEPS + _ONE_MODEL,
                  "deps + one small pydantic model (pydantic's first-model cost)", goal=False),
]  # fmt: skip


def _child_env(cache: str) -> dict[str, str]:
    """Bytecode cached as in a normal install (``PYTHONDONTWRITEBYTECODE`` would make the SDK,
    unlike its pip-installed dependencies, compile from source in every child), kept in a
    temporary folder rather than the work tree."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def _child(statement: str, env: dict[str, str]) -> tuple[float, float, float]:
    """(import ms, RSS MiB after it, max RSS MiB) measured inside a fresh interpreter."""
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    code = _CHILD.format(statement=statement, page=page)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, check=True, timeout=120, env=env,
    ).stdout.split()  # fmt: skip
    seconds, rss, max_rss = float(out[0]), int(out[1]), int(out[2])
    rss = rss if rss >= 0 else max_rss
    return seconds * 1000, rss / 2**20, max_rss / 2**20


def figure_import(sizes: Sizes, log: Callable[[str], None]) -> list[Row]:
    log("import time and RSS in fresh interpreters")
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as cache:
        return _import_rows(sizes, _child_env(cache))


def _import_rows(sizes: Sizes, env: dict[str, str]) -> list[Row]:
    rows_time: list[Row] = []
    rows_rss: list[Row] = []
    for variant in IMPORT_VARIANTS:
        statements = {"sdk": variant.sdk, "base": variant.base}
        for statement in statements.values():
            _child(statement, env)  # fill the bytecode cache
        ms: dict[str, list[float]] = {"sdk": [], "base": []}
        rss: dict[str, list[float]] = {"sdk": [], "base": []}
        for order in _orders(sizes.import_rounds, ["sdk", "base"]):
            for name in order:
                t, r, _ = _child(statements[name], env)
                ms[name].append(t)
                rss[name].append(r)
        ratio = _ratios(ms["sdk"], ms["base"])
        delta = [a - b for a, b in zip(rss["sdk"], rss["base"], strict=True)]
        label = variant.label.strip().split(":")[0]
        indent = "  " if not variant.goal else ""
        rows_time.append(
            Row(f"{indent}import time, {variant.label.strip()} vs {variant.base_name}", "ms",
                ms["sdk"], ms["base"], ratio,
                goal="<= 1.10x" if variant.goal else "(context)",
                met=statistics.median(ratio) <= 1.10 if variant.goal else None)
        )  # fmt: skip
        rows_rss.append(
            Row(f"{indent}RSS after import, {label} vs {variant.base_name}", "MiB", rss["sdk"],
                rss["base"], delta, compare_kind="delta",
                goal="<= +3 MiB" if variant.goal else "(context)",
                met=statistics.median(delta) <= 3.0 if variant.goal else None)
        )  # fmt: skip
    return rows_time + rows_rss


# -- figure 5: threads sharing one client ----------------------------------------------------


def _throughput(fn: Callable[[], object], threads: int, calls: int) -> float:
    """Calls per second with ``threads`` threads each making ``calls`` calls at once."""
    start = threading.Barrier(threads + 1)
    failures: list[BaseException] = []

    def work() -> None:
        start.wait()
        try:
            for _ in range(calls):
                fn()
        except BaseException as error:
            failures.append(error)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    with _quiet_gc():
        start.wait()
        began = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - began
    if failures:
        raise failures[0]
    return threads * calls / elapsed


def figure_threads(sizes: Sizes, log: Callable[[str], None]) -> list[Row]:
    log(f"4 threads vs 1 sharing one client, server adding {THREAD_DELAY * 1000:g} ms per answer")
    with start_server(delay=THREAD_DELAY) as server:
        client, api = _sdk_client(server.url)
        headers = _raw_headers(client)
        url = server.url + PATH
        manager = urllib3.PoolManager(maxsize=4)

        def sdk() -> object:
            return api.create_offer_display(BODY)

        def raw() -> object:
            return json.loads(manager.request("POST", url, body=RAW_BODY, headers=headers).data)

        blocks = {"sdk1": (sdk, 1), "sdk4": (sdk, 4), "raw1": (raw, 1), "raw4": (raw, 4)}
        for fn, threads in blocks.values():
            _throughput(fn, threads, max(3, sizes.thread_calls // 10))
        rate: dict[str, list[float]] = {name: [] for name in blocks}
        for order in _orders(sizes.thread_rounds, list(blocks)):
            for name in order:
                fn, threads = blocks[name]
                rate[name].append(_throughput(fn, threads, sizes.thread_calls))
        client.close()
        manager.clear()
    sdk_gain = _ratios(rate["sdk4"], rate["sdk1"])
    raw_gain = _ratios(rate["raw4"], rate["raw1"])
    return [
        Row("throughput 4 threads / 1 thread (server +2 ms), SDK vs raw urllib3", "x",
            sdk_gain, raw_gain, _ratios(sdk_gain, raw_gain), goal=">= 2.9x (SDK)",
            met=statistics.median(sdk_gain) >= 2.9),
        Row("  calls/s with 1 thread, SDK vs raw urllib3", "/s", rate["sdk1"], rate["raw1"],
            _ratios(rate["sdk1"], rate["raw1"])),
        Row("  calls/s with 4 threads, SDK vs raw urllib3", "/s", rate["sdk4"], rate["raw4"],
            _ratios(rate["sdk4"], rate["raw4"])),
    ]  # fmt: skip


# -- the EventRecorder's figures live in recorder.py ------------------------------------------


def figure_recorder(sizes: Sizes, log: Callable[[str], None]) -> list[Row]:
    """``EventRecorder`` vs a ``ThreadPoolExecutor`` (recorder.py, which imports this module:
    hence imported here, when the figure runs)."""
    import recorder

    return recorder.figures(sizes, log)


# -- driver ----------------------------------------------------------------------------------

FIGURES: dict[str, Callable[[Sizes, Callable[[str], None]], list[Row]]] = {
    "wall": figure_wall,
    "cpu": figure_cpu,
    "import": figure_import,
    "threads": figure_threads,
    "ladder": figure_ladder,
    "recorder": figure_recorder,
}
DEFAULT_FIGURES = ["wall", "cpu", "import", "threads", "recorder"]


def _environment() -> dict[str, Any]:
    try:
        load = os.getloadavg()
    except OSError:
        load = (-1.0, -1.0, -1.0)
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "urllib3": urllib3.__version__,  # type: ignore[attr-defined]
        "pydantic": pydantic.VERSION,
        "pydantic_core": pydantic_core.__version__,
        "loadavg": load,
        "commit": _git("rev-parse", "--short", "HEAD"),
        "core_changed": bool(_git("status", "--porcelain", "--", ":/openapi_client")),
    }


def _git(*args: str) -> str:
    """Read-only git facts, so a result can be matched to the code it measured ('' if none)."""
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10,
            cwd=os.path.dirname(os.path.abspath(__file__)),
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def table(rows: Sequence[Row]) -> str:
    header = ["figure", "SDK", "baseline", "ratio median [min–max]", "goal", "met?"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmarks of issue 5 (SDK vs urllib3).")
    parser.add_argument("--smoke", action="store_true", help="tiny counts; checks the script runs")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--only", metavar="NAMES", help=f"comma list of: {', '.join(FIGURES)}")
    parser.add_argument("--rounds", type=int, help="rounds per figure (default 15)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is unmet")
    parser.add_argument(
        "--ladder", action="store_true", help="also time the SDK's layers one by one (internals)"
    )
    args = parser.parse_args(argv)
    sizes = Sizes.smoke() if args.smoke else Sizes()
    if args.rounds:
        sizes.rounds = sizes.import_rounds = sizes.thread_rounds = args.rounds
    names = args.only.split(",") if args.only else list(DEFAULT_FIGURES)
    if args.ladder and "ladder" not in names:
        names.append("ladder")
    unknown = set(names) - set(FIGURES)
    if unknown:
        parser.error(f"unknown figure(s): {', '.join(sorted(unknown))}")

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - began:5.1f} s] {text}", file=sys.stderr, flush=True)

    began = time.perf_counter()
    before = _environment()
    rows: list[Row] = []
    for name in names:
        rows += FIGURES[name](sizes, log)
    after = _environment()
    elapsed = time.perf_counter() - began
    mode = "smoke (numbers meaningless)" if args.smoke else "full"
    print(f"\nopenapi_client benchmarks, {mode}: {sizes}")
    print(f"python {before['python']}, urllib3 {before['urllib3']}, pydantic {before['pydantic']}"
          f", {before['cpus']} CPUs; load average before {before['loadavg'][0]:.2f}, "
          f"after {after['loadavg'][0]:.2f}; {elapsed:.0f} s; commit {before['commit'] or '?'}"
          f"{' + uncommitted core changes' if before['core_changed'] else ''}\n")  # fmt: skip
    print(table(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"mode": mode, "sizes": asdict(sizes), "environment_before": before,
                       "environment_after": after, "elapsed_s": elapsed,
                       "rows": [asdict(row) for row in rows]}, out, indent=2)  # fmt: skip
            out.write("\n")
    unmet = [row.figure for row in rows if row.met is False]
    if args.check and not args.smoke and unmet:
        print(f"\ngoals not met: {len(unmet)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.modules.setdefault("run", sys.modules[__name__])  # recorder.py's `from run import` gets us
    sys.exit(main())
