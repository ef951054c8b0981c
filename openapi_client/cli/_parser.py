"""The parser: commands, options with their checks, and help with examples."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

import openapi_client.cli._commands as commands
from openapi_client._version import __version__
from openapi_client.cli._common import (
    EXAMPLE_UUID,
    HOST_ENV_VAR,
    PROG,
    TOKEN_ENV_VAR,
    UsageError,
)

EPILOG = f"""\
examples:
  # try it: a local fake server, no token needed
  %(prog)s demo
  # run the fake server in one terminal ...
  %(prog)s serve --port 8080 --token pk_test_local
  # ... and record events on it from another
  export {HOST_ENV_VAR}=http://127.0.0.1:8080 {TOKEN_ENV_VAR}=pk_test_local
  %(prog)s session-init
  %(prog)s offer-display --lead-uuid UUID --rate-table-uuid UUID --offer-uuid UUID
  # the tracking pixel for a page template
  %(prog)s pixel-url --lead-uuid UUID --rate-table-uuid UUID --offer-uuid UUID --img
  # what a background recorder's spool holds, and delivering it now
  %(prog)s spool /var/lib/myapp/events.db
  %(prog)s spool /var/lib/myapp/events.db --deliver
  # the options of one command
  %(prog)s COMMAND --help

environment variables:
  {TOKEN_ENV_VAR}      the publishable bearer token (session-init, offer-display), unless
                    --token is given; prefer it to --token, which other users can see
  {HOST_ENV_VAR}   the API base URL, unless --host is given
                    (default https://api.engine.tech)

exit codes:
  0    success
  1    the API or the network failed (an error status after the retries, no response)
  2    bad usage or input (unknown option, not a UUID, no token); nothing was sent
  130  interrupted (Ctrl-C); serve stops with 0
"""


class Exit(Exception):
    """argparse is done: ``--help`` or ``--version`` printed, or a usage error to report."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _formatter(prog: str) -> argparse.HelpFormatter:
    """Help as written (examples keep their lines), option names in a wider column."""
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


class _Parser(argparse.ArgumentParser):
    """argparse that reports instead of exiting, so ``main`` can return the exit code."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise Exit(status, message or "")


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="Engine by MoneyLion UI Events: record sessions and offer displays.",
        epilog=EPILOG,
        formatter_class=_formatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=(
            f"{PROG} {__version__} (Python package openapi_client, "
            f"Python {'.'.join(map(str, sys.version_info[:3]))})"
        ),
    )
    _add_debug_option(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, summary: str, example: str) -> argparse.ArgumentParser:
        child = sub.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=f"example:\n  {prog} {name} {example}".rstrip(),
            formatter_class=_formatter,
        )
        _add_debug_option(child, default=argparse.SUPPRESS)
        return child

    demo = command("demo", "record a session and an offer display on a local fake server", "")
    demo.set_defaults(run=commands.demo)

    serve = command("serve", "run the fake Engine server until interrupted", "--port 8080")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; another address exposes the fake "
        "to other machines)",
    )
    serve.add_argument("--port", type=_port, default=0, help="port (default: a free one)")
    serve.add_argument("--token", help="accept only this bearer token (default: any)")
    serve.set_defaults(run=commands.serve)

    session = command(
        "session-init", "record that a user began a session", f"--session-uuid {EXAMPLE_UUID}"
    )
    _add_connection_options(session)
    session.add_argument(
        "--session-uuid", metavar="UUID", help="the session's UUID (default: the server makes one)"
    )
    session.set_defaults(run=commands.session_init, uuid_flags=("session_uuid",))

    display = command(
        "offer-display",
        "record that an offer was shown",
        "--lead-uuid L --rate-table-uuid R --offer-uuid O",
    )
    _add_connection_options(display)
    _add_offer_options(display)
    display.set_defaults(run=commands.offer_display, uuid_flags=_OFFER_FLAGS)

    pixel = command(
        "pixel-url",
        "print the pixel URL that records an offer display (sends nothing)",
        "--lead-uuid L --rate-table-uuid R --offer-uuid O --img",
    )
    pixel.add_argument(
        "--host", help=f"API base URL (default: ${HOST_ENV_VAR} or {_default_host()})"
    )
    _add_offer_options(pixel)
    pixel.add_argument("--img", action="store_true", help="print an HTML <img> tag instead")
    pixel.set_defaults(run=commands.pixel_url, uuid_flags=_OFFER_FLAGS)

    spool = command(
        "spool",
        "show what an EventRecorder spool holds, or deliver it now",
        "/var/lib/myapp/events.db --deliver",
    )
    spool.add_argument("path", metavar="PATH", help="the spool file (EventRecorder(spool=PATH))")
    spool.add_argument(
        "--deliver", action="store_true", help="send the events now (needs the token)"
    )
    spool.add_argument(
        "--wait",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="with --deliver: how long to keep delivering (default 60)",
    )
    _add_connection_options(spool)
    spool.set_defaults(run=commands.spool)
    return parser


_OFFER_FLAGS = ("lead_uuid", "rate_table_uuid", "offer_uuid")


def _add_debug_option(parser: argparse.ArgumentParser, default: Any) -> None:
    # On the main parser and on each command, so that it works before or after the command.
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="log each request and response to stderr (the token is redacted)",
    )


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", help=f"API base URL (default: ${HOST_ENV_VAR} or {_default_host()})"
    )
    parser.add_argument(
        "--token", help=f"bearer token (default: ${TOKEN_ENV_VAR}; prefer the variable)"
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="seconds to connect and, separately, to read (default 5 and 10)",
    )
    parser.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow sending the token over plain http:// to another machine "
        "(a fake served with serve --host 0.0.0.0, on a trusted network)",
    )


def _add_offer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lead-uuid", metavar="UUID", required=True, help="the lead")
    parser.add_argument("--rate-table-uuid", metavar="UUID", required=True, help="the rate table")
    parser.add_argument("--offer-uuid", metavar="UUID", required=True, help="the offer shown")


def _default_host() -> str:
    from openapi_client.configuration import DEFAULT_HOST

    return DEFAULT_HOST


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 65535, not {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value
