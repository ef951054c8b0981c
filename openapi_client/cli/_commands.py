"""The commands: each turns its parsed flags into SDK calls and prints the outcome."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from openapi_client.cli._common import (
    DEMO_OFFER,
    EXAMPLE_UUID,
    EXIT_FAILED,
    EXIT_OK,
    HOST_ENV_VAR,
    TOKEN_ENV_VAR,
    UsageError,
    fail,
    warn,
)

if TYPE_CHECKING:
    from openapi_client.api.ui_events_api import UIEventsApi
    from openapi_client.configuration import Configuration
    from openapi_client.models._base import Model
    from openapi_client.testing import RecordedRequest


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


def session_init(args: argparse.Namespace) -> int:
    body = {"sessionUuid": args.session_uuid} if args.session_uuid else None
    with _api(args) as api:
        _print_model(api.create_session_init(body))
    return EXIT_OK


def offer_display(args: argparse.Namespace) -> int:
    with _api(args) as api:
        _print_model(api.create_offer_display(_offer_body(args)))
    return EXIT_OK


def _offer_body(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "leadUuid": args.lead_uuid,
        "rateTableUuid": args.rate_table_uuid,
        "offerUuid": args.offer_uuid,
    }


def pixel_url(args: argparse.Namespace) -> int:
    with _api(args, need_token=False) as api:
        make = api.offer_display_pixel_img_tag if args.img else api.offer_display_pixel_url
        print(make(args.lead_uuid, args.rate_table_uuid, args.offer_uuid))
    return EXIT_OK


def demo(args: argparse.Namespace) -> int:
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


def serve(args: argparse.Namespace) -> int:
    from openapi_client.testing import FakeEngineServer
    from openapi_client.validation import is_loopback

    loopback = is_loopback(args.host)
    if not loopback:  # said before binding, so it shows even when binding fails
        warn(
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


def spool(args: argparse.Namespace) -> int:
    """Print what a spool holds; with ``--deliver``, send it and print what is left."""
    from openapi_client.exceptions import OpenApiException
    from openapi_client.recorder import read_spool_summary

    if not os.path.isfile(args.path):
        raise UsageError(f"no spool at {args.path!r}")
    if args.deliver:
        return _deliver_spool(args)
    try:
        summary = read_spool_summary(args.path)
    except OpenApiException:  # a file that is not a spool, or not one this user may trust
        raise
    except Exception as error:  # sqlite3.Error: locked, unreadable, damaged
        return fail(EXIT_FAILED, f"cannot read {args.path!r}: {error}")
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
        recorder = EventRecorder(api.api_client, spool=args.path, handle_sigterm=False)
        if (before := recorder.stats()).spooled < 0:
            recorder.close(0.1)
            why = before.spool_error or "locked, unreadable or damaged"
            return fail(EXIT_FAILED, f"could not read {args.path!r}: {why}")
        done = recorder.flush(args.wait)
        recorder.close(0.1)
        stats = recorder.stats()
    print(f"delivered {stats.sent}, failed {stats.failed}, left in the spool {stats.spooled}")
    if stats.spooled < 0 or (not done and stats.spool_error):
        why = stats.spool_error or "locked, unreadable or damaged"
        return fail(EXIT_FAILED, f"could not use {args.path!r}: {why}")
    if not done:
        why = stats.last_failure or f"not all delivered within --wait {args.wait:g} s"
        print(f"not all delivered: {why}", file=sys.stderr)
    return EXIT_OK if done and not stats.failed else EXIT_FAILED


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m {secs}s" if hours else f"{minutes}m {secs}s"
