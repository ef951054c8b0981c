"""Command line: try the SDK on a fake server, run that server, or record events on a real one.

    python -m openapi_client demo
    python -m openapi_client serve --port 8080
    python -m openapi_client session-init [--session-uuid U]
    python -m openapi_client offer-display --lead-uuid L --rate-table-uuid R --offer-uuid O
    python -m openapi_client pixel-url --lead-uuid L --rate-table-uuid R --offer-uuid O [--img]

Exit codes: 0 success, 1 the API or the network failed, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openapi_client.api.ui_events_api import UIEventsApi
    from openapi_client.models._base import Model

TOKEN_ENV_VAR = "BEARER_TOKEN"
DEMO_OFFER = {
    "leadUuid": "f914eb07-a64f-51d8-b882-ff508a8c5c81",
    "rateTableUuid": "952a1184-d369-5958-9a0f-bec903e11c48",
    "offerUuid": "3426f971-1aa5-5cb0-91a9-cf2edcfa5dfa",
}


class UsageError(Exception):
    """A mistake in how the command was called (exit 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.run
    from openapi_client.exceptions import ApiException, OpenApiException

    try:
        return command(args)
    except UsageError as error:
        return _fail(2, str(error))
    except ApiException as error:
        return _fail(1, _one_line(error))
    except OpenApiException as error:  # input errors: ApiValueError, ApiTypeError
        return _fail(2, str(error))
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m openapi_client",
        description="Engine by MoneyLion UI Events: record sessions and offer displays.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="record a session and an offer display on a local fake server"
    )
    demo.set_defaults(run=_demo)

    serve = sub.add_parser("serve", help="run the fake Engine server until interrupted")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    serve.add_argument("--token", help="accept only this bearer token (default: any)")
    serve.set_defaults(run=_serve)

    session = sub.add_parser("session-init", help="record that a user began a session")
    _add_connection_options(session)
    session.add_argument(
        "--session-uuid", help="the session's UUID (default: the server makes one)"
    )
    session.set_defaults(run=_session_init)

    display = sub.add_parser("offer-display", help="record that an offer was shown")
    _add_connection_options(display)
    _add_offer_options(display)
    display.set_defaults(run=_offer_display)

    pixel = sub.add_parser("pixel-url", help="print the pixel URL that records an offer display")
    pixel.add_argument(
        "--host", help=f"API base URL (default: ${{ENGINE_API_HOST}} or {_default_host()})"
    )
    _add_offer_options(pixel)
    pixel.add_argument("--img", action="store_true", help="print an HTML <img> tag instead")
    pixel.set_defaults(run=_pixel_url)
    return parser


def _default_host() -> str:
    from openapi_client.configuration import DEFAULT_HOST

    return DEFAULT_HOST


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", help=f"API base URL (default: ${{ENGINE_API_HOST}} or {_default_host()})"
    )
    parser.add_argument(
        "--token", help=f"bearer token (default: ${TOKEN_ENV_VAR}; prefer the variable)"
    )
    parser.add_argument(
        "--timeout", type=float, help="seconds for connect and for read (default 5/10)"
    )


def _add_offer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lead-uuid", required=True)
    parser.add_argument("--rate-table-uuid", required=True)
    parser.add_argument("--offer-uuid", required=True)


def _api(args: argparse.Namespace, need_token: bool = True) -> UIEventsApi:
    from openapi_client.api.ui_events_api import UIEventsApi
    from openapi_client.api_client import ApiClient
    from openapi_client.configuration import Configuration

    token = getattr(args, "token", None) or os.environ.get(TOKEN_ENV_VAR)
    if need_token and not token:
        raise UsageError(
            f"no bearer token: set the environment variable {TOKEN_ENV_VAR} "
            "(or pass --token, which other users of this machine can see)"
        )
    config = Configuration(host=args.host, access_token=token)
    if getattr(args, "timeout", None) is not None:
        config.timeout = args.timeout
    return UIEventsApi(ApiClient(config))


def _print_model(model: Model) -> None:
    print(model.to_json())


def _session_init(args: argparse.Namespace) -> int:
    api = _api(args)
    body = {"sessionUuid": args.session_uuid} if args.session_uuid else None
    with api.api_client:
        _print_model(api.create_session_init(body))
    return 0


def _offer_display(args: argparse.Namespace) -> int:
    api = _api(args)
    with api.api_client:
        _print_model(api.create_offer_display(_offer_body(args)))
    return 0


def _offer_body(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "leadUuid": args.lead_uuid,
        "rateTableUuid": args.rate_table_uuid,
        "offerUuid": args.offer_uuid,
    }


def _pixel_url(args: argparse.Namespace) -> int:
    api = _api(args, need_token=False)
    make = api.offer_display_pixel_img_tag if args.img else api.offer_display_pixel_url
    print(make(args.lead_uuid, args.rate_table_uuid, args.offer_uuid))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from openapi_client.api.ui_events_api import UIEventsApi
    from openapi_client.api_client import ApiClient
    from openapi_client.configuration import Configuration
    from openapi_client.testing import FakeEngineServer

    with FakeEngineServer() as server:
        print(f"Started a fake Engine server at {server.url} (it stops when the demo ends).")
        config = Configuration(host=server.url, access_token="demo-token")
        with ApiClient(config) as client:
            api = UIEventsApi(client)
            session = api.create_session_init()
            print("Recorded a session (the server made its sessionUuid):")
            print("  " + session.to_json())
            display = api.create_offer_display(DEMO_OFFER)
            print("Recorded an offer display:")
            print("  " + display.to_json())
            print("The same display as a pixel, for a browser to load:")
            print("  " + api.offer_display_pixel_url(**_snake(DEMO_OFFER)))
        print(
            f"The server holds {len(server.session_inits)} session(s) and "
            f"{len(server.offer_displays)} offer display(s)."
        )
    return 0


def _snake(body: dict[str, str]) -> dict[str, str]:
    return {"lead_uuid": body["leadUuid"], "rate_table_uuid": body["rateTableUuid"],
            "offer_uuid": body["offerUuid"]}  # fmt: skip


def _serve(args: argparse.Namespace) -> int:
    from openapi_client.testing import FakeEngineServer

    loopback = args.host in ("127.0.0.1", "localhost", "::1")
    try:
        server = FakeEngineServer(
            host=args.host, port=args.port, token=args.token, allow_non_loopback=not loopback
        )
        server.start()
    except OSError as error:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {error.strerror}") from None
    print(f"Fake Engine server listening on {server.url} (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _fail(code: int, message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
