"""Profile ``create_offer_display(dict)`` and print where the time goes.

By default the transport is the canned one of ``run.py`` (network removed), so
the profile shows the SDK's own per-call cost; ``--loopback`` profiles real calls to the
canned-answer server instead. Run from the repository root:

    python benchmarks/profile_call.py                  # top 25 by tottime, 20 000 calls
    python benchmarks/profile_call.py --sort cumulative --limit 40
    python benchmarks/profile_call.py --loopback --calls 3000
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
from typing import Any

from run import BODY, _sdk_client, canned_client
from server import start_server


def _warm_then_profile(profiler: cProfile.Profile, api: Any, calls: int) -> None:
    """200 unprofiled calls (connection open, caches filled), then ``calls`` profiled ones."""
    for _ in range(200):
        api.create_offer_display(BODY)
    gc.collect()
    profiler.enable()
    for _ in range(calls):
        api.create_offer_display(BODY)
    profiler.disable()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--sort", default="tottime", help="a pstats sort key (default tottime)")
    parser.add_argument("--limit", type=int, default=25, help="functions to print (default 25)")
    parser.add_argument("--loopback", action="store_true", help="real calls to a local server")
    parser.add_argument("--output", metavar="PATH", help="also save the raw profile (pstats)")
    args = parser.parse_args(argv)
    profiler = cProfile.Profile()

    if args.loopback:
        with start_server() as server:
            client, api = _sdk_client(server.url)
            _warm_then_profile(profiler, api, args.calls)
            client.close()
    else:
        client, api, transport = canned_client()
        transport.load(200 + args.calls)  # the warm-up's answers, then the profiled ones
        _warm_then_profile(profiler, api, args.calls)
        client.close()

    where = "loopback server" if args.loopback else "network removed (canned transport)"
    print(f"create_offer_display(dict) x {args.calls}, {where}; sorted by {args.sort}")
    print("(cProfile adds its own cost per function call: compare shares, not absolute µs)\n")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    if args.output:
        stats.dump_stats(args.output)
    stats.strip_dirs().sort_stats(args.sort).print_stats(args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
