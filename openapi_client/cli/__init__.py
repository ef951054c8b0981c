"""Command line: try the SDK on a fake server, run that server, record events on a real one,
or look into a background recorder's spool.

Installed as ``engine-ui-events``; ``python -m openapi_client`` runs the same program. Run it
with ``--help`` for the commands, their options, the environment variables and exit codes.
``main(argv)`` runs it inside a Python process and returns the exit code (it never raises
``SystemExit``, not even for ``--help``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from openapi_client.cli._common import (
    COMMANDS,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    PROG,
    TOKEN_ENV_VAR,
    UsageError,
    fail,
    one_line,
)
from openapi_client.cli._parser import Exit, build_parser

__all__ = ["main"]


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    ``prog`` names the program in help and errors; by default it is the name it was started
    under (``engine-ui-events``), or ``engine-ui-events`` when ``argv`` is given.
    """
    parser = build_parser(prog or _program_name(argv))
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError(
                f"missing COMMAND, one of: {', '.join(COMMANDS)} (see '{parser.prog} --help')"
            )
        command: Callable[[argparse.Namespace], int] = args.run
        return _run(command, args)
    except Exit as done:
        if done.message:
            print(done.message.rstrip(), file=sys.stderr)
        return done.code
    except UsageError as error:
        return fail(EXIT_USAGE, str(error))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _run(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one command, turning the SDK's exceptions into an exit code and one line."""
    from openapi_client.exceptions import ApiException, OpenApiException, UnauthorizedException

    try:
        return command(args)
    except UnauthorizedException as error:
        return fail(EXIT_FAILED, f"{one_line(error)}; check {TOKEN_ENV_VAR} or --token")
    except ApiException as error:
        return fail(EXIT_FAILED, one_line(error))
    except OpenApiException as error:  # input errors the flags' own checks let through
        message = one_line(error)
        if "allow_insecure_http" in message:
            message += " (on the command line: --allow-insecure-http)"
        return fail(EXIT_USAGE, message)


def _program_name(argv: Sequence[str] | None) -> str:
    if argv is not None or not sys.argv or not sys.argv[0]:
        return PROG
    name = os.path.basename(sys.argv[0])
    return PROG if name in ("__main__.py", "-c", "-m") else name
