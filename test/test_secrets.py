"""The bearer token never leaks: not into logs, output, reprs, exceptions or debug reports.

One test drives every path with ``debug`` on and every logger at DEBUG, with servers that echo
the token back in bodies and headers, and then searches everything it captured for the token.
Plain ``http://`` to a host beyond this machine is refused before anything is sent.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from faultserver import FaultServers, answer, hang, refused_url
from samples import OFFER_BODY, offer_display_answer, session_init_answer

from openapi_client import ApiClient, Configuration, RetryPolicy, UIEventsApi
from openapi_client.api_client import refuse_insecure
from openapi_client.exceptions import (
    ApiConnectionError,
    ApiResponseValidationError,
    ApiTimeoutError,
    ApiTypeError,
    ApiValueError,
    OpenApiException,
    ServiceException,
    UnauthorizedException,
)

FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.02)


@pytest.fixture
def token() -> str:
    return f"tok_{uuid.uuid4().hex}"


class _Everything(logging.Handler):
    """Keeps every record, formatted with its traceback, from every logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.lines.append(repr(record.args))


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[_Everything]:
    handler = _Everything()
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    for name in ("openapi_client", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


class Evidence:
    """Every text the SDK produced that a user, a log or a bug report could see."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, value: object) -> None:
        self.texts.append((where, value if isinstance(value, str) else repr(value)))

    def add_exception(self, where: str, error: BaseException) -> None:
        seen: set[int] = set()
        current: BaseException | None = error
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            self.add(f"{where}: str", str(current))
            self.add(f"{where}: repr", repr(current))
            for attribute in ("body", "headers", "reason", "data", "errors"):
                if hasattr(current, attribute):
                    self.add(f"{where}: .{attribute}", getattr(current, attribute))
            # the chain Python prints: ``raise ... from None`` hides the context
            hidden = current.__suppress_context__
            current = current.__cause__ or (None if hidden else current.__context__)
        self.add(f"{where}: traceback", "".join(traceback.format_exception(error)))

    def raised(self, where: str, expected: type[BaseException], call: Any) -> BaseException:
        with pytest.raises(expected) as caught:
            call()
        self.add_exception(where, caught.value)
        return caught.value

    def leaks(self, secret: str) -> list[str]:
        return [where for where, text in self.texts if secret in text]


def test_token_appears_nowhere_on_any_path(
    token: str,
    servers: FaultServers,
    all_logs: _Everything,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Any,
) -> None:
    log_file = tmp_path / "sdk.log"
    echo_headers = {
        "WWW-Authenticate": f'Bearer realm="engine", error="invalid_token", token="{token}"',
        "X-Echo-Authorization": f"Bearer {token}",
        "X-Echo-Token": token,
    }
    echo_body = [{"message": f"token {token} is not valid", "attribute": "Authorization"}]
    evidence = Evidence()

    ok = servers(then=answer(201, offer_display_answer()))
    session_ok = servers(then=answer(201, session_init_answer()))
    unauthorized = servers(then=answer(401, echo_body, echo_headers))
    failing = servers(then=answer(500, echo_body, echo_headers))
    retried = servers(
        answer(503, echo_body, {**echo_headers, "Retry-After": "0"}),
        then=answer(201, offer_display_answer()),
    )
    invalid = servers(then=answer(201, {"id": token, "echo": token}, echo_headers))
    silent = servers(then=hang())

    def api_for(host: str) -> UIEventsApi:
        config = Configuration(host=host, access_token=token, retries=FAST, debug=True)
        config.logger_file = str(log_file)
        client = ApiClient(config)
        evidence.add("Configuration repr", repr(config))
        evidence.add("Configuration str", str(config))
        evidence.add("debug report", config.to_debug_report())
        evidence.add("ApiClient repr", repr(client))
        return UIEventsApi(client)

    apis = []

    def track(api: UIEventsApi) -> UIEventsApi:
        apis.append(api)
        return api

    # success, with and without the per-call auth override
    api = track(api_for(ok.url))
    response = api.create_offer_display_with_http_info(OFFER_BODY)
    evidence.add("ApiResponse repr", repr(response))
    evidence.add("ApiResponse headers", dict(response.headers))
    evidence.add("ApiResponse data", response.data.to_str())
    auth = {"in": "header", "key": "Authorization", "value": f"Bearer {token}"}
    overridden = api.create_offer_display(OFFER_BODY, _request_auth=auth)
    evidence.add("model repr", repr(overridden))
    evidence.add("model repr", repr(track(api_for(session_ok.url)).create_session_init()))
    after_retry = track(api_for(retried.url)).create_offer_display_with_http_info(OFFER_BODY)
    assert after_retry.retries == 1
    evidence.add("ApiResponse after a retry", repr(after_retry))

    # every kind of failure
    for where, host, expected in [
        ("401 echoing the token", unauthorized.url, UnauthorizedException),
        ("500 echoing the token", failing.url, ServiceException),
        ("invalid 201 echoing the token", invalid.url, ApiResponseValidationError),
    ]:
        api = track(api_for(host))
        evidence.raised(where, expected, partial(api.create_offer_display, OFFER_BODY))
        evidence.raised(where, expected, api.create_session_init)
    with refused_url() as url:
        refused_api = track(api_for(url))
        call = partial(refused_api.create_offer_display, OFFER_BODY)
        evidence.raised("refused", ApiConnectionError, call)
    slow_api = track(api_for(silent.url))
    call = partial(slow_api.create_session_init, _request_timeout=(1.0, 0.2))
    evidence.raised("timeout", ApiTimeoutError, call)

    # input errors, found before anything is sent
    api = track(api_for(ok.url))
    config = api.api_client.configuration
    sent_before = ok.attempts
    bad_body = {**OFFER_BODY, "leadUuid": "x"}
    input_errors: list[tuple[str, type[Exception], Any]] = [
        ("bad body", ApiValueError, lambda: api.create_offer_display(bad_body)),
        ("wrong body type", ApiTypeError, lambda: api.create_offer_display("body")),
        ("header with CR/LF", ApiValueError,
         lambda: api.create_session_init(_headers={"X-Token": f"{token}\r\nX: y"})),
        ("auth with CR/LF", ApiValueError,
         lambda: api.create_session_init(_request_auth={**auth, "value": f"{token}\n"})),
        ("bad content type", ApiValueError,
         lambda: api.create_session_init(_content_type="text/plain")),
        ("token with LF", ApiValueError, lambda: setattr(config, "access_token", token + "\n")),
        ("default header with CR/LF", ApiValueError,
         lambda: api.api_client.set_default_header("X-Token", f"{token}\r\n")),
    ]  # fmt: skip
    for where, expected, call in input_errors:
        evidence.raised(where, expected, call)
    assert ok.attempts == sent_before
    remote = Configuration(host="http://engine.example", access_token=token, proxy=ok.url)
    remote_api = track(UIEventsApi(ApiClient(remote)))  # a loopback proxy: nothing leaves
    evidence.raised(
        "token over plain http to a remote host", ApiValueError, remote_api.create_session_init
    )

    for api in apis:
        api.api_client.close()
        api.api_client.configuration.logger_file = None  # closes the file handler
        api.api_client.configuration.debug = False
    captured = capfd.readouterr()
    evidence.add("stdout", captured.out)
    evidence.add("stderr", captured.err)
    evidence.add("caplog", caplog.text)
    for line in all_logs.lines:
        evidence.add("log record", line)
    evidence.add("log file", log_file.read_text())

    assert any("HTTP request" in line for line in all_logs.lines), "debug logging was not on"
    assert any("HTTP response: 401" in line for line in all_logs.lines)
    assert unauthorized.requests[0].headers["authorization"] == f"Bearer {token}"  # it was sent
    leaks = evidence.leaks(token)
    assert leaks == [], sorted(set(leaks))


def test_redacted_echo_keeps_the_rest_of_the_error(token: str, servers: FaultServers) -> None:
    server = servers(then=answer(401, [{"message": f"token {token} is not valid"}]))
    config = Configuration(host=server.url, access_token=token)
    with ApiClient(config) as client, pytest.raises(UnauthorizedException) as caught:
        UIEventsApi(client).create_session_init()
    assert "is not valid" in str(caught.value)
    assert caught.value.errors[0].message == "token [REDACTED] is not valid"


@pytest.mark.skipif(
    importlib.util.find_spec("openapi_client.cli") is None, reason="no command line yet"
)
def test_command_line_never_prints_the_token(token: str, servers: FaultServers) -> None:
    echo = [{"message": f"token {token} is not valid"}]
    hosts = {
        "ok": servers(then=answer(201, session_init_answer())).url,
        "401": servers(then=answer(401, echo, {"X-Echo": token})).url,
        "500": servers(then=answer(500, echo, {"X-Echo": token})).url,
    }
    env = {k: v for k, v in os.environ.items() if k not in ("BEARER_TOKEN", "ENGINE_API_HOST")}
    for name, host in hosts.items():
        result = subprocess.run(
            [sys.executable, "-m", "openapi_client", "session-init", "--host", host,
             "--token", token, "--timeout", "2"],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == (0 if name == "ok" else 1), (name, result.stderr)
        assert token not in result.stdout, name
        assert token not in result.stderr, name


# -- clear text to remote hosts -----------------------------------------------------------------


def test_token_over_plain_http_to_a_remote_host_is_refused_before_sending(
    token: str, servers: FaultServers
) -> None:
    # Every byte would go to a loopback proxy, so even a broken check sends nothing off the
    # machine; the proxy must see no request at all.
    proxy = servers(then=answer(201, session_init_answer()))
    config = Configuration(host="http://engine.example", access_token=token, proxy=proxy.url)
    started = time.monotonic()
    with ApiClient(config) as client, pytest.raises(ApiValueError) as caught:
        UIEventsApi(client).create_session_init()
    assert time.monotonic() - started < 1.0
    assert "https://" in str(caught.value)
    assert token not in str(caught.value)
    assert proxy.connections == 0


def test_per_call_auth_over_plain_http_to_a_remote_host_is_refused(
    token: str, servers: FaultServers
) -> None:
    proxy = servers(then=answer(201, session_init_answer()))
    config = Configuration(host="http://engine.example", proxy=proxy.url)
    auth = {"in": "header", "key": "Authorization", "value": f"Bearer {token}"}
    with ApiClient(config) as client, pytest.raises(ApiValueError):
        UIEventsApi(client).create_session_init(_request_auth=auth)
    assert proxy.connections == 0


def test_plain_http_to_a_remote_host_is_allowed_after_opting_in(
    token: str, servers: FaultServers
) -> None:
    config = Configuration(host="http://engine.example", access_token=token)
    with pytest.raises(ApiValueError):
        refuse_insecure(
            config.allow_insecure_http, "http://engine.example/uiEvent/sessionInits", (token,)
        )
    config.allow_insecure_http = True
    refuse_insecure(
        config.allow_insecure_http, "http://engine.example/uiEvent/sessionInits", (token,)
    )
    # End to end, through a loopback proxy so that nothing leaves the machine.
    proxy = servers(then=answer(201, session_init_answer()))
    config.proxy = proxy.url
    with ApiClient(config) as client:
        UIEventsApi(client).create_session_init()
    assert proxy.attempts == 1
    assert proxy.requests[0].path == "http://engine.example/uiEvent/sessionInits"


@pytest.mark.parametrize(
    "host", ["http://127.0.0.1:1", "http://localhost:1", "http://[::1]:1", "http://api.localhost"]
)
def test_plain_http_to_loopback_is_allowed(token: str, host: str) -> None:
    config = Configuration(host=host, access_token=token)
    refuse_insecure(config.allow_insecure_http, host + "/uiEvent/sessionInits", (token,))


def test_plain_http_without_credentials_is_not_refused() -> None:
    config = Configuration(host="http://engine.example")
    refuse_insecure(config.allow_insecure_http, "http://engine.example/uiEvent/sessionInits", ())


def test_configuration_and_client_reprs_hide_the_token(token: str) -> None:
    config = Configuration(
        host="https://engine.example", access_token=token, proxy="http://user:pw-secret@127.0.0.1:3"
    )
    client = ApiClient(config)
    for text in (repr(config), str(config), config.to_debug_report(), repr(client)):
        assert token not in text
        assert "pw-secret" not in text
    assert "Access token: set" in config.to_debug_report()


def test_errors_raised_for_bad_tokens_do_not_quote_them(token: str) -> None:
    for bad in (f" {token}", f"{token}\r\n", f"{token}\0"):
        with pytest.raises(OpenApiException) as caught:
            Configuration(access_token=bad)
        assert token not in str(caught.value)
