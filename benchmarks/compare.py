"""Before and after, in one process: this checkout's SDK against an earlier git revision of it.

The earlier revision is loaded from git under another module name (``openapi_client_before``),
so both run side by side, round by round in alternating order, with plain urllib3 as the
common yardstick. Run from the repository root:

    python benchmarks/compare.py b5c5ea5              # the revision to compare against
    python benchmarks/compare.py b5c5ea5 --rounds 21 --calls 2000

Figures: client CPU per call with the network removed (each side fed canned answers through
whatever seam it has), wall and CPU per call over loopback, and (when both sides have one) the
``EventRecorder``'s ``record_offer_display`` in the caller's thread, memory only and spooled.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import urllib3
from recorder import _record_block
from run import ANSWER_HEADERS, BODY, PATH, RAW_BODY, TOKEN, _interleaved, _orders, _time_calls
from server import ANSWER_BODY, start_server

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_revision(revision: str, into: pathlib.Path) -> Any:
    """Import ``openapi_client`` as it was at ``revision``, named ``openapi_client_before``."""
    files = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", revision, "openapi_client"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for name in files:
        if not name.endswith(".py"):
            continue
        text = subprocess.run(
            ["git", "show", f"{revision}:{name}"], cwd=ROOT, capture_output=True, text=True,
            check=True,
        ).stdout  # fmt: skip
        target = into / name.replace("openapi_client", "openapi_client_before", 1)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.replace("openapi_client", "openapi_client_before"))
    sys.path.insert(0, str(into))
    return importlib.import_module("openapi_client_before")


def _canned() -> urllib3.HTTPResponse:
    return urllib3.HTTPResponse(
        body=io.BytesIO(ANSWER_BODY), headers=ANSWER_HEADERS, status=201, reason="Created",
        version=11, preload_content=False,
    )  # fmt: skip


class _Canned:
    """Canned answers for either side: the transport seam (``send(request, deadline)``), or an
    earlier core's ``send(method, url, headers, body, timeout)`` that left the body to the
    client."""

    def __init__(self, package: Any) -> None:
        self.answers: list[urllib3.HTTPResponse] = []
        self.rest = importlib.import_module(package.__name__ + ".rest")

    def send(self, *args: Any) -> Any:
        answer = self.answers.pop()
        if len(args) == 2:  # the seam: the transport reads the body
            request = args[0]
            data = self.rest.read_body(answer, request.max_bytes)
            try:
                return self.rest.RESTResponse(answer, data, request)
            except TypeError:  # the seam's first shape
                return self.rest.RESTResponse(answer, data)
        return answer

    def close(self) -> None:
        self.answers = []

    clear = close


def canned_api(package: Any) -> tuple[Any, _Canned]:
    config = package.Configuration(host="http://127.0.0.1:9", access_token=TOKEN)
    canned = _Canned(package)
    try:
        client = package.ApiClient(config, transport=canned)
    except TypeError:  # no seam yet: put the canned transport where the core keeps its own
        client = package.ApiClient(config)
        client._current_state().rest = canned
    return package.UIEventsApi(client), canned


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}–{max(values):.2f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("revision", help="the git revision to compare against (e.g. main~3)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=1000, help="calls per block over loopback")
    args = parser.parse_args(argv)
    import openapi_client as after

    with tempfile.TemporaryDirectory() as folder:
        before = load_revision(args.revision, pathlib.Path(folder))
        sides = {"before": before, "after": after}
        print(f"before: {args.revision}; after: the working tree; rounds {args.rounds}")

        # -- CPU per call with the network removed ------------------------------------------
        apis = {name: canned_api(package) for name, package in sides.items()}
        cpu: dict[str, list[float]] = {name: [] for name in sides}
        calls = args.calls * 10
        for order in _orders(args.rounds + 1, list(sides)):
            for name in order:
                api, canned = apis[name]
                canned.answers = [_canned() for _ in range(calls)]
                cpu[name].append(
                    _time_calls(lambda api=api: api.create_offer_display(BODY), calls)[1]
                )
        for samples in cpu.values():
            del samples[0]
        print("\nclient CPU per call, network removed (µs, median [range]):")
        for name, samples in cpu.items():
            print(f"  {name:7} {_median(samples)}")
        ratio = [a / b for a, b in zip(cpu["after"], cpu["before"], strict=True)]
        print(f"  after/before {_median(ratio)}x")

        # -- over loopback -------------------------------------------------------------------
        with start_server() as server:
            manager = urllib3.PoolManager()
            headers = {"Content-Type": "application/json", "Accept": "application/json",
                       "Authorization": f"Bearer {TOKEN}"}  # fmt: skip
            variants: dict[str, Callable[[], object]] = {}
            for name, package in sides.items():
                config = package.Configuration(host=server.url, access_token=TOKEN)
                api = package.UIEventsApi(package.ApiClient(config))
                variants[name] = lambda api=api: api.create_offer_display(BODY)
            variants["urllib3"] = lambda: json.loads(
                manager.request("POST", server.url + PATH, body=RAW_BODY, headers=headers).data
            )
            wall, loop_cpu = _interleaved(variants, args.rounds, args.calls, warm=100)
        print("\nover loopback, per call (µs, median [range]); ratio to urllib3 round by round:")
        for name in variants:
            to_raw = [a / b for a, b in zip(wall[name], wall["urllib3"], strict=True)]
            print(f"  {name:7} wall {_median(wall[name])}  cpu {_median(loop_cpu[name])}"
                  f"  wall/urllib3 {_median(to_raw)}x")  # fmt: skip

        # -- recording ------------------------------------------------------------------------
        if all(hasattr(package, "EventRecorder") for package in sides.values()):
            with start_server() as server:
                _compare_recording(sides, server.url, args.rounds, pathlib.Path(folder))
    return 0


def _compare_recording(sides: dict[str, Any], url: str, rounds: int, folder: pathlib.Path) -> None:
    """``record_offer_display(dict)`` in the caller's thread, memory only and with a spool:
    p50 of each block of records (the workers deliver over loopback meanwhile)."""
    count = 2000
    print(f"\nEventRecorder.record_offer_display(dict), p50 per block of {count} (µs):")
    for spooled in (False, True):
        p50: dict[str, list[float]] = {name: [] for name in sides}
        recorders = {}
        for name, package in sides.items():
            config = package.Configuration(host=url, access_token=TOKEN)
            spool = str(folder / f"{name}.db") if spooled else None
            recorders[name] = package.EventRecorder(package.ApiClient(config), spool=spool)
        for index, order in enumerate(_orders(rounds + 1, list(sides))):
            for name in order:
                took, _ = _record_block(recorders[name], count)  # records, then flushes
                if index:  # the first round warms up
                    p50[name].append(statistics.median(took) * 1e6)
        for recorder in recorders.values():
            recorder.close()
        label = "with a spool" if spooled else "memory only"
        for name, samples in p50.items():
            print(f"  {label:12} {name:7} {_median(samples)}")
        ratio = [a / b for a, b in zip(p50["after"], p50["before"], strict=True)]
        print(f"  {label:12} after/before {_median(ratio)}x")


if __name__ == "__main__":
    sys.exit(main())
