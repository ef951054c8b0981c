"""Command line: try the SDK on a fake server, run that server, or record events on a real one.

Installed as ``engine-ui-events``; ``python -m openapi_client`` runs the same program. Run it
with ``--help`` for the commands, their options, the environment variables and exit codes.
``main(argv)`` runs it inside a Python process and returns the exit code (it never raises
``SystemExit``, not even for ``--help``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from openapi_client._version import __version__

if TYPE_CHECKING:
    from openapi_client.api.ui_events_api import UIEventsApi
    from openapi_client.configuration import Configuration
    from openapi_client.models._base import Model
    from openapi_client.testing import RecordedRequest

PROG = "engine-ui-events"
"""The program's name, unless it was started under another (``python -m openapi_client``)."""
TOKEN_ENV_VAR = "BEARER_TOKEN"
HOST_ENV_VAR = "ENGINE_API_HOST"
EXAMPLE_UUID = "f914eb07-a64f-51d8-b882-ff508a8c5c81"
DEMO_OFFER = {
    "leadUuid": "f914eb07-a64f-51d8-b882-ff508a8c5c81",
    "rateTableUuid": "952a1184-d369-5958-9a0f-bec903e11c48",
    "offerUuid": "3426f971-1aa5-5cb0-91a9-cf2edcfa5dfa",
}
COMMANDS = ("demo", "serve", "session-init", "offer-display", "pixel-url", "spool")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_EPILOG = f"""\
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


class UsageError(Exception):
    """A mistake in how the command was called (exit 2)."""


class _Exit(Exception):
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
        raise _Exit(status, message or "")


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    ``prog`` names the program in help and errors; by default it is the name it was started
    under (``engine-ui-events``), or ``engine-ui-events`` when ``argv`` is given.
    """
    parser = _parser(prog or _program_name(argv))
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError(
                f"missing COMMAND, one of: {', '.join(COMMANDS)} (see '{parser.prog} --help')"
            )
        command: Callable[[argparse.Namespace], int] = args.run
        return _run(command, args)
    except _Exit as done:
        if done.message:
            print(done.message.rstrip(), file=sys.stderr)
        return done.code
    except UsageError as error:
        return _fail(EXIT_USAGE, str(error))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _run(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one command, turning the SDK's exceptions into an exit code and one line."""
    from openapi_client.exceptions import ApiException, OpenApiException, UnauthorizedException

    try:
        return command(args)
    except UnauthorizedException as error:
        return _fail(EXIT_FAILED, f"{_one_line(error)}; check {TOKEN_ENV_VAR} or --token")
    except ApiException as error:
        return _fail(EXIT_FAILED, _one_line(error))
    except OpenApiException as error:  # input errors the flags' own checks let through
        message = _one_line(error)
        if "allow_insecure_http" in message:
            message += " (on the command line: --allow-insecure-http)"
        return _fail(EXIT_USAGE, message)


def _program_name(argv: Sequence[str] | None) -> str:
    if argv is not None or not sys.argv or not sys.argv[0]:
        return PROG
    name = os.path.basename(sys.argv[0])
    return PROG if name in ("__main__.py", "-c", "-m") else name


# -- the parser --------------------------------------------------------------------------------


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="Engine by MoneyLion UI Events: record sessions and offer displays.",
        epilog=_EPILOG,
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
    demo.set_defaults(run=_demo)

    serve = command("serve", "run the fake Engine server until interrupted", "--port 8080")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; another address exposes the fake "
        "to other machines)",
    )
    serve.add_argument("--port", type=_port, default=0, help="port (default: a free one)")
    serve.add_argument("--token", help="accept only this bearer token (default: any)")
    serve.set_defaults(run=_serve)

    session = command(
        "session-init", "record that a user began a session", f"--session-uuid {EXAMPLE_UUID}"
    )
    _add_connection_options(session)
    session.add_argument(
        "--session-uuid", metavar="UUID", help="the session's UUID (default: the server makes one)"
    )
    session.set_defaults(run=_session_init, uuid_flags=("session_uuid",))

    display = command(
        "offer-display",
        "record that an offer was shown",
        "--lead-uuid L --rate-table-uuid R --offer-uuid O",
    )
    _add_connection_options(display)
    _add_offer_options(display)
    display.set_defaults(run=_offer_display, uuid_flags=_OFFER_FLAGS)

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
    pixel.set_defaults(run=_pixel_url, uuid_flags=_OFFER_FLAGS)

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
    spool.set_defaults(run=_spool)
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


# -- checks on what the user typed, reported by flag -----------------------------------------


def _check_uuid_flags(args: argparse.Namespace) -> None:
    """Every UUID flag with a value that is not a UUID, in one message, by the flag's name."""
    from openapi_client.models._base import UUID_RE

    bad = [
        f"--{name.replace('_', '-')} {value!r}"
        for name in getattr(args, "uuid_flags", ())
        if (value := getattr(args, name)) is not None and not UUID_RE.fullmatch(value)
    ]
    if bad:
        raise UsageError(f"not a UUID: {', '.join(bad)} (a UUID looks like {EXAMPLE_UUID})")


def _configuration(args: argparse.Namespace, need_token: bool) -> Configuration:
    """The SDK configuration the flags and environment ask for; problems named by flag."""
    from openapi_client.configuration import Configuration
    from openapi_client.exceptions import OpenApiException

    _check_uuid_flags(args)
    token = getattr(args, "token", None) or os.environ.get(TOKEN_ENV_VAR) or None
    if need_token and not token:
        raise UsageError(
            f"no bearer token: set the environment variable {TOKEN_ENV_VAR} "
            "(or pass --token, which other users of this machine can see)"
        )
    config = Configuration()
    from_flag = args.host is not None
    host = args.host if from_flag else os.environ.get(HOST_ENV_VAR) or None
    if host is not None:
        try:
            config.host = host
        except OpenApiException:
            where = "--host" if from_flag else f"${HOST_ENV_VAR}"
            raise UsageError(f"{where} must be an http:// or https:// URL, not {host!r}") from None
    try:
        config.access_token = token
    except OpenApiException:
        where = "--token" if getattr(args, "token", None) else f"${TOKEN_ENV_VAR}"
        raise UsageError(
            f"{where} must not contain spaces at its ends, CR, LF or NUL"
        ) from None  # the token itself is never shown
    if getattr(args, "timeout", None) is not None:
        config.timeout = args.timeout
    config.allow_insecure_http = getattr(args, "allow_insecure_http", False)
    config.debug = args.debug
    return config


@contextlib.contextmanager
def _api(args: argparse.Namespace, need_token: bool = True) -> Iterator[UIEventsApi]:
    """The API the flags describe; its connections closed and debug logging undone after."""
    from openapi_client.api.ui_events_api import UIEventsApi
    from openapi_client.api_client import ApiClient

    config = _configuration(args, need_token)
    try:
        with ApiClient(config) as client:
            yield UIEventsApi(client)
    finally:
        config.debug = False  # gives back the logger levels and handlers debug changed


# -- the commands ------------------------------------------------------------------------------


def _print_model(model: Model) -> None:
    print(model.to_json())


def _session_init(args: argparse.Namespace) -> int:
    body = {"sessionUuid": args.session_uuid} if args.session_uuid else None
    with _api(args) as api:
        _print_model(api.create_session_init(body))
    return EXIT_OK


def _offer_display(args: argparse.Namespace) -> int:
    with _api(args) as api:
        _print_model(api.create_offer_display(_offer_body(args)))
    return EXIT_OK


def _offer_body(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "leadUuid": args.lead_uuid,
        "rateTableUuid": args.rate_table_uuid,
        "offerUuid": args.offer_uuid,
    }


def _pixel_url(args: argparse.Namespace) -> int:
    with _api(args, need_token=False) as api:
        make = api.offer_display_pixel_img_tag if args.img else api.offer_display_pixel_url
        print(make(args.lead_uuid, args.rate_table_uuid, args.offer_uuid))
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from openapi_client.api.ui_events_api import UIEventsApi
    from openapi_client.testing import FakeEngineServer

    with FakeEngineServer() as server:
        print(f"Started a fake Engine server at {server.url} (it stops when the demo ends).")
        client = server.client(access_token="demo-token", debug=args.debug)
        try:
            api = UIEventsApi(client)  # with --debug, the fake's own log shows up as well
            session = api.create_session_init()
            print("Recorded a session (the server made its sessionUuid):")
            print("  " + session.to_json())
            display = api.create_offer_display(DEMO_OFFER)
            print("Recorded an offer display:")
            print("  " + display.to_json())
            print("The same display as a pixel, for a browser to load (use one or the other):")
            print("  " + api.offer_display_pixel_url(**_snake(DEMO_OFFER)))
        finally:
            client.close()
            client.configuration.debug = False  # gives back the logger levels and handlers
        print(
            f"The server holds {len(server.session_inits)} session(s) and "
            f"{len(server.offer_displays)} offer display(s)."
        )
    return EXIT_OK


def _snake(body: dict[str, str]) -> dict[str, str]:
    return {"lead_uuid": body["leadUuid"], "rate_table_uuid": body["rateTableUuid"],
            "offer_uuid": body["offerUuid"]}  # fmt: skip


def _serve(args: argparse.Namespace) -> int:
    from openapi_client.testing import FakeEngineServer
    from openapi_client.validation import is_loopback

    loopback = is_loopback(args.host)
    if not loopback:  # said before binding, so it shows even when binding fails
        _warn(
            f"--host {args.host} listens beyond this machine: other machines can reach this "
            + (
                "fake server"
                if args.token
                else "fake server, and it accepts any token (see --token)"
            )
        )
    try:
        server = FakeEngineServer(
            host=args.host,
            port=args.port,
            token=args.token,
            allow_non_loopback=not loopback,
            on_request=_RequestLog(sys.stderr, details=args.debug),
        )
        server.start()
    except OSError as error:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {error.strerror}") from None
    except ValueError as error:  # a token with spaces
        raise UsageError(f"--token: {error}") from None
    print(f"Fake Engine server listening on {server.url} (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return EXIT_OK


class _RequestLog:
    """``serve``'s log: one line per request (time, method, path, status, what it recorded).

    With ``details`` (``--debug``), the request's headers (credentials redacted) and body too.
    """

    def __init__(self, stream: Any, details: bool) -> None:
        self._stream = stream
        self._details = details
        self._lock = threading.Lock()  # one write per request: lines never interleave

    def __call__(self, request: RecordedRequest) -> None:
        text = f"{time.strftime('%H:%M:%S')} {request.describe()}\n"
        if self._details:
            from openapi_client._logs import scrub

            body = request.body[:2048].decode("utf-8", "replace")
            text += f"  headers: {request.headers}\n  body: {scrub(body)}\n"
        with self._lock:
            self._stream.write(text)
            self._stream.flush()


# -- output ------------------------------------------------------------------------------------


def _spool(args: argparse.Namespace) -> int:
    """Print what a spool holds; with ``--deliver``, send it and print what is left."""
    from openapi_client.recorder._spool import Spool

    if not os.path.isfile(args.path):
        raise UsageError(f"no spool at {args.path!r}")
    if args.deliver:
        return _deliver_spool(args)
    try:
        spool = Spool(args.path, register=False)
        summary = spool.summary()
        spool.close()
    except Exception as error:  # sqlite3.Error, or a file that is not a spool
        return _fail(EXIT_FAILED, f"cannot read {args.path!r}: {error}")
    total = sum(summary.by_kind.values())
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(summary.by_kind.items()))
    print(f"{args.path}: {total} event(s)" + (f" ({kinds})" if kinds else ""))
    if summary.oldest_recorded_at is not None:
        print(f"oldest recorded {_age(time.time() - summary.oldest_recorded_at)} ago")
    print(f"being delivered by a live recorder: {summary.owned}; waiting: {summary.waiting}")
    return EXIT_OK


def _deliver_spool(args: argparse.Namespace) -> int:
    from openapi_client.recorder import EventRecorder

    with _api(args) as api:
        recorder = EventRecorder(api.api_client, spool=args.path)
        done = recorder.flush(args.wait)
        recorder.close(0.1)
        stats = recorder.stats()
    print(f"delivered {stats.sent}, failed {stats.failed}, left in the spool {stats.spooled}")
    return EXIT_OK if done and not stats.failed else EXIT_FAILED


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m {secs}s" if hours else f"{minutes}m {secs}s"


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _fail(code: int, message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
