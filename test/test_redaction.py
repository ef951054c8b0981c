"""Every credential a call sent is scrubbed from everything its answer carries, in every form a
server echoes it, and nothing else in the answer is mangled.

A secret is the configured ``access_token``, a per-call ``_request_auth`` value, and the value of
any ``Authorization``, ``Proxy-Authorization`` or ``Cookie`` header (any letter case, from
``_headers``, ``set_default_header`` or the configuration). Secrets of 8 characters or more are
replaced by ``[REDACTED]`` wherever they appear, raw or escaped (JSON ``\\u00f6`` and ``\\/``,
percent-encoding, ``+`` for space); shorter ones only where they stand as a credential.

Servers here are raw sockets (``echo_server``) that echo the request back in JSON bodies,
headers, the reason phrase or a broken status line. Test secrets are built from random hex
pieces joined by awkward characters, so finding any piece anywhere means part of a secret
leaked.
"""

from __future__ import annotations

import copy
import json
import logging
import pickle
import random
import re
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus

import pytest
from echo_server import EchoServer, RawRequest, http_answer
from pydantic import BaseModel
from samples import OFFER_BODY, offer_display_answer, session_init_answer
from support import Canned, Recorded, RecordingServer, race

from openapi_client import ApiClient, ApiResponse, Configuration, UIEventsApi
from openapi_client.exceptions import (
    ApiConnectionError,
    ApiException,
    ApiResponseValidationError,
    BadRequestException,
    NotFoundException,
    ServiceException,
    UnauthorizedException,
)

REDACTED = "[REDACTED]"
LATIN1_LETTERS = "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿ"


def _hex() -> str:
    return uuid.uuid4().hex[:12]


def awkward_secret() -> str:
    """A fresh secret with a non-ASCII letter, a slash and a space: every escape applies."""
    return f"tök/{_hex()} {_hex()}"


def pieces(secret: str) -> list[str]:
    """The random parts of a secret: none of them may appear anywhere."""
    return re.findall(r"[0-9a-f]{12}", secret)


# -- what the SDK surfaces ------------------------------------------------------------------------


def _leaves(value: Any) -> Iterator[str]:
    """Every string inside ``value`` (and its repr), walking containers and models."""
    if isinstance(value, str):
        yield value
        return
    if isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
        yield value.decode("latin-1")
        return
    yield repr(value)
    if isinstance(value, BaseModel):
        yield from _leaves(value.model_dump())
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(key)
            yield from _leaves(item)
    elif isinstance(value, list | tuple | set):
        for item in value:
            yield from _leaves(item)


@dataclass
class Surfaces:
    """Every text a caller, a log or a bug report could see, with where it came from."""

    texts: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, value: Any) -> None:
        for text in _leaves(value):
            self.texts.append((where, text))

    def add_exception(self, where: str, error: BaseException, *, pickled: bool = True) -> None:
        seen: set[int] = set()
        current: BaseException | None = error
        depth = 0
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            at = f"{where} (cause {depth})" if depth else where
            self.add(f"{at}: str(e)", str(current))
            self.add(f"{at}: repr(e)", repr(current))
            self.add(f"{at}: e.args", current.args)
            for attribute in ("reason", "body", "headers", "data", "errors"):
                if hasattr(current, attribute):
                    self.add(f"{at}: e.{attribute}", getattr(current, attribute))
            hidden = current.__suppress_context__
            current = current.__cause__ or (None if hidden else current.__context__)
            depth += 1
        self.add(f"{where}: traceback", "".join(traceback.format_exception(error)))
        if pickled:
            data = pickle.dumps(error)
            self.add(f"{where}: pickle.dumps(e)", data)
            self.add_exception(f"{where}: unpickled", pickle.loads(data), pickled=False)

    def add_logs(self, caplog: pytest.LogCaptureFixture, log_file: Path | None = None) -> None:
        for record in caplog.records:
            where = f"log record of {record.name}"
            self.add(where, record.getMessage())
            self.add(where, record.args)
            if record.exc_text:
                self.add(where, record.exc_text)
        self.add("caplog.text", caplog.text)
        if log_file is not None and log_file.exists():
            self.add("logger_file", log_file.read_text("utf-8", "replace"))

    def leaks(self, secret: str) -> list[str]:
        """Where a random piece of ``secret`` shows (in any form, since pieces are plain hex)."""
        found: dict[str, str] = {}
        for where, text in self.texts:
            for piece in pieces(secret):
                if piece in text and where not in found:
                    at = text.index(piece)
                    found[where] = f"{where}: …{text[max(0, at - 50) : at + 30]!r}…"
        return list(found.values())


def assert_no_leaks(surfaces: Surfaces, secret: str) -> None:
    """Fail naming every place where a piece of ``secret`` shows, with a snippet of each."""
    leaks = surfaces.leaks(secret)
    places = [leak.split(": …", 1)[0] for leak in leaks]
    assert leaks == [], f"leaked in {places}:\n" + "\n".join(leaks)


def _sdk_logged(caplog: pytest.LogCaptureFixture) -> bool:
    """The SDK's own logger wrote at least one DEBUG record."""
    return any(
        r.name.startswith("openapi_client") and r.levelno == logging.DEBUG for r in caplog.records
    )


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> Path:
    """Every logger at DEBUG through the root logger; returns a path for ``logger_file``."""
    caplog.set_level(logging.DEBUG)
    return tmp_path / "sdk.log"


# -- how a server echoes a request -----------------------------------------------------------------


def _heard(request: RawRequest) -> str:
    return "; ".join(f"{name}: {value}" for name, value in request.headers)


def _echo_items(request: RawRequest) -> list[dict[str, Any]]:
    """Error items that repeat the request back: target, headers, decoded query, a link."""
    heard = _heard(request)
    decoded_query = "; ".join(f"{k}={v}" for k, v in parse_qsl(request.query))
    link = f"https://errors.example/?seen={quote_plus(heard)}&raw={quote(heard, safe='')}"
    return [
        {
            "message": f"refused {request.method} {request.target}",
            "attribute": "Authorization",
            "type": "invalid_token",
            "details": {name.lower(): value for name, value in request.headers},
        },
        {"message": f"request headers: {heard}", "attribute": "headers", "type": "echo"},
        {"message": f"query: {decoded_query}", "attribute": "query", "type": "echo"},
        {"message": f"see {link}", "attribute": "link", "type": "echo"},
    ]


ECHO_STYLES: dict[str, Callable[[Any], str]] = {
    "raw": lambda item: json.dumps(item, ensure_ascii=False),
    "\\u-escaped": lambda item: json.dumps(item),
    "\\/-escaped": lambda item: json.dumps(item, ensure_ascii=False).replace("/", "\\/"),
    "\\u and \\/": lambda item: json.dumps(item).replace("/", "\\/"),
}


def echo_json(request: RawRequest) -> bytes:
    """A JSON error array echoing the request, each item written in every escaping style."""
    items = [style(item) for style in ECHO_STYLES.values() for item in _echo_items(request)]
    return ("[" + ", ".join(items) + "]").encode()


def echo_headers(request: RawRequest) -> list[tuple[str, str]]:
    """Answer headers repeating every request header, the target, and escaped forms."""
    heard = _heard(request)
    headers = [(f"X-Echo-{name}", value) for name, value in request.headers]
    headers += [
        ("X-Echo-Target", request.target),
        ("X-Echo-Json", json.dumps(heard)),
        ("WWW-Authenticate", f'Bearer error="invalid_token", seen="{heard}"'),
        ("Link", f"<https://errors.example/?seen={quote_plus(heard)}>; rel=help"),
    ]
    return headers


@dataclass(frozen=True)
class EchoPath:
    """One way an answer can carry the request back, and what the SDK must raise for it."""

    name: str
    respond: Callable[[RawRequest], bytes]
    raises: type[ApiException] | None
    json_errors: bool = False


def _broken_status_line(request: RawRequest) -> bytes:
    return f"ECHO {_heard(request)} {request.target}\r\n\r\n".encode("latin-1")


def _invalid_created(request: RawRequest) -> bytes:
    body = {"id": _heard(request), "echo": _echo_items(request), "target": request.target}
    return http_answer(201, json.dumps(body).encode(), echo_headers(request), reason="Created")


def _valid_created(request: RawRequest) -> bytes:
    body = {**offer_display_answer(), "echo": _echo_items(request)}
    return http_answer(201, json.dumps(body).encode(), echo_headers(request), reason="Created")


ECHO_PATHS = [
    EchoPath(
        "401 JSON body",
        lambda r: http_answer(401, echo_json(r), reason="Unauthorized"),
        UnauthorizedException,
        json_errors=True,
    ),
    EchoPath(
        "500 JSON body",
        lambda r: http_answer(500, echo_json(r), reason="Internal Server Error"),
        ServiceException,
        json_errors=True,
    ),
    EchoPath(
        "400 echoing headers",
        lambda r: http_answer(
            400, b'[{"message": "bad request"}]', echo_headers(r), reason="Bad Request"
        ),
        BadRequestException,
    ),
    EchoPath(
        "401 reason phrase",
        lambda r: http_answer(401, b"[]", reason=f"Unauthorized {_heard(r)} {r.target}"),
        UnauthorizedException,
    ),
    EchoPath("broken status line", _broken_status_line, ApiConnectionError),
    EchoPath("invalid 201", _invalid_created, ApiResponseValidationError),
    EchoPath("valid 201", _valid_created, None),
]


# -- where a call's secret comes from --------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One way a call carries a credential: settings, per-call options, default headers."""

    name: str
    settings: Callable[[str, str], dict[str, Any]] = lambda secret, url: {}
    options: Callable[[str], dict[str, Any]] = lambda secret: {}
    default_headers: Callable[[str], dict[str, str]] = lambda secret: {}


SOURCES = [
    Source("configured access_token", settings=lambda s, url: {"access_token": s}),
    Source(
        "_request_auth header X-Api-Key",
        options=lambda s: {"_request_auth": {"in": "header", "key": "X-Api-Key", "value": s}},
    ),
    Source(
        "_request_auth query",
        options=lambda s: {"_request_auth": {"in": "query", "key": "api_key", "value": s}},
    ),
    Source(
        "_request_auth cookie",
        options=lambda s: {"_request_auth": {"in": "cookie", "key": "session", "value": s}},
    ),
    Source(
        "_headers authorization",
        options=lambda s: {"_headers": {"authorization": f"Bearer {s}"}},
    ),
    Source("_headers COOKIE", options=lambda s: {"_headers": {"COOKIE": f"sid={s}"}}),
    Source(
        "_headers proxy-authorization",
        options=lambda s: {"_headers": {"proxy-authorization": f"Basic {s}"}},
    ),
    Source("set_default_header Cookie", default_headers=lambda s: {"Cookie": f"sid={s}"}),
    Source(
        "set_default_header authorization",
        default_headers=lambda s: {"authorization": f"Bearer {s}"},
    ),
    Source(
        "proxy_headers Proxy-Authorization",
        settings=lambda s, url: {
            "host": "http://127.0.0.1:1",  # the echo server is the proxy in front of it
            "proxy": url,
            "proxy_headers": {"Proxy-Authorization": f"Basic {s}"},
            "access_token": "pk_unrelated_token",  # a call needs a credential of its own
        },
    ),
]


def _call(server_url: str, source: Source, secret: str, log_file: Path) -> Callable[[], Any]:
    settings: dict[str, Any] = {"host": server_url, "retries": 0, "debug": True}
    settings["logger_file"] = str(log_file)
    settings.update(source.settings(secret, server_url))
    client = ApiClient(Configuration(**settings))
    for name, value in source.default_headers(secret).items():
        client.set_default_header(name, value)
    api = UIEventsApi(client)
    options = source.options(secret)

    def call() -> Any:
        try:
            return api.create_offer_display_with_http_info(OFFER_BODY, **options)
        finally:
            client.close()

    return call


def _assert_not_mangled(path: EchoPath, outcome: Any) -> None:
    """The parts of the answer that are not secrets arrive as the server sent them."""
    if path.json_errors:
        errors = outcome.errors
        assert len(errors) == len(ECHO_STYLES) * 4, errors
        expected = ["Authorization", "headers", "query", "link"] * len(ECHO_STYLES)
        assert [e.attribute for e in errors] == expected
        assert [e.type for e in errors] == ["invalid_token", "echo", "echo", "echo"] * len(
            ECHO_STYLES
        )
        prefixes = ("refused POST ", "request headers: ", "query: ", "see https://errors.example/")
        for error, prefix in zip(errors, prefixes * len(ECHO_STYLES), strict=True):
            assert error.message is not None
            assert error.message.startswith(prefix), error.message
        assert "/uiEvent/offerDisplays" in errors[0].message
        assert errors[0].details is not None
        assert errors[0].details["content-type"] == "application/json"
    elif path.name == "400 echoing headers":
        assert [e.message for e in outcome.errors] == ["bad request"]
    elif path.raises is None:
        assert outcome.data.lead_uuid == OFFER_BODY["leadUuid"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
@pytest.mark.parametrize("path", ECHO_PATHS, ids=lambda p: p.name)
def test_echoed_secret_is_scrubbed_from_every_surface(
    path: EchoPath, source: Source, debug_logs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A secret echoed raw, \\u-, \\/- or percent-escaped shows nowhere: error, answer, logs."""
    secret = awkward_secret()
    surfaces = Surfaces()
    with EchoServer(path.respond) as server:
        call = _call(server.url, source, secret, debug_logs)
        if path.raises is None:
            response = call()
            surfaces.add("ApiResponse repr", repr(response))
            surfaces.add("ApiResponse.headers", dict(response.headers))
            surfaces.add("ApiResponse.data", response.data)
            surfaces.add("ApiResponse.data.to_json()", response.data.to_json())
            outcome: Any = response
        else:
            with pytest.raises(path.raises) as caught:
                call()
            surfaces.add_exception(path.name, caught.value)
            outcome = caught.value
        (request,) = server.requests
    sent = request.raw_head.decode("latin-1")
    assert any(piece in sent for piece in pieces(secret)), sent  # the call did carry it
    surfaces.add_logs(caplog, debug_logs)
    assert _sdk_logged(caplog), "debug logging was off"

    assert_no_leaks(surfaces, secret)
    _assert_not_mangled(path, outcome)


# -- short secrets: only where they stand as a credential ------------------------------------------


def _answering(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> EchoServer:
    data = json.dumps(body).encode()
    return EchoServer(lambda request: http_answer(status, data, headers, reason="Status"))


def test_short_token_is_not_replaced_inside_ordinary_words() -> None:
    """Token ``t``: a 404 saying "No route for /uiEvent/offerDisplays" keeps every ``t``."""
    message = "No route for /uiEvent/offerDisplays"
    with _answering(404, [{"message": message}]) as server:
        config = Configuration(host=server.url, access_token="t", retries=0)
        with ApiClient(config) as client, pytest.raises(NotFoundException) as caught:
            UIEventsApi(client).create_offer_display(OFFER_BODY)
    error = caught.value
    assert message in str(error)
    assert error.errors[0].message == message
    assert error.body is not None
    assert message in error.body


def test_short_token_leaves_the_error_array_intact() -> None:
    """Token ``e``: keys and values of the error array come through unchanged."""
    item = {
        "message": "leadUuid is required",
        "attribute": "leadUuid",
        "type": "required",
        "details": {"reason": "the field is missing", "where": "the request body"},
    }
    with _answering(400, [item], [("X-Request-Id", "req-12345")]) as server:
        config = Configuration(host=server.url, access_token="e", retries=0)
        with ApiClient(config) as client, pytest.raises(BadRequestException) as caught:
            UIEventsApi(client).create_offer_display(OFFER_BODY)
    error = caught.value
    assert [e.model_dump(exclude_none=True) for e in error.errors] == [item]
    assert "leadUuid: leadUuid is required" in str(error)
    assert error.body == json.dumps([item])
    assert error.headers is not None
    assert {k.lower(): v for k, v in error.headers.items()}["x-request-id"] == "req-12345"


def test_short_token_is_redacted_where_it_stands_as_a_credential() -> None:
    """Token ``t`` echoed as ``Bearer t``, ``api_key=t``, ``"t"`` or a whole header: redacted."""
    item = {
        "message": "Bearer t is not a valid token",
        "attribute": "api_key=t",
        "details": {"token": "t", "hint": "rotate the token"},
    }
    headers = [("WWW-Authenticate", "Bearer t"), ("X-Echo-Token", "t")]
    with _answering(401, [item], headers) as server:
        config = Configuration(host=server.url, access_token="t", retries=0)
        with ApiClient(config) as client, pytest.raises(UnauthorizedException) as caught:
            UIEventsApi(client).create_offer_display(OFFER_BODY)
    error = caught.value
    (parsed,) = error.errors
    assert parsed.message == "Bearer [REDACTED] is not a valid token"
    assert parsed.attribute == "api_key=[REDACTED]"
    assert parsed.details == {"token": REDACTED, "hint": "rotate the token"}
    assert "Bearer t " not in str(error)
    assert error.headers is not None
    echoed = {k.lower(): v for k, v in error.headers.items()}
    assert echoed["x-echo-token"] == REDACTED
    assert echoed["www-authenticate"] == "Bearer [REDACTED]"


def test_short_per_call_key_is_redacted_where_it_stands_as_a_credential() -> None:
    """A 1-character ``_request_auth`` query value echoed as ``api_key=k&`` is redacted."""
    item = {
        "message": "api_key=k&page=1 was refused: check the key",
        "attribute": "api_key",
        "type": "k",
    }
    with _answering(403, [item], [("X-Echo-Key", "k")]) as server:
        auth = {"in": "query", "key": "api_key", "value": "k"}
        with (
            ApiClient(Configuration(host=server.url, retries=0)) as client,
            pytest.raises(ApiException) as caught,
        ):
            UIEventsApi(client).create_offer_display(OFFER_BODY, _request_auth=auth)
    (parsed,) = caught.value.errors
    assert parsed.message == "api_key=[REDACTED]&page=1 was refused: check the key"
    assert parsed.attribute == "api_key"
    assert parsed.type == REDACTED
    assert caught.value.headers is not None
    assert {k.lower(): v for k, v in caught.value.headers.items()}["x-echo-key"] == REDACTED


# -- awkward characters and the log cut ------------------------------------------------------------


def _separator_secret() -> str:
    return f'{_hex()},{_hex()};{_hex()}"{_hex()} {_hex()}'


@pytest.mark.parametrize("content_type", ["text/plain", "application/json"])
@pytest.mark.parametrize("per_call", [False, True], ids=["configured", "_request_auth"])
def test_tokens_with_separators_are_scrubbed_whole(
    per_call: bool,
    content_type: str,
    debug_logs: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A token holding ``,`` ``;`` ``"`` and a space leaves no part of itself in logs or errors.

    The configured token echoed in a text/plain body already holds today (pinned here).
    """
    secret = _separator_secret()

    def respond(request: RawRequest) -> bytes:
        (value,) = request.header_values("authorization")
        text = f"Authorization: {value} was refused"
        body = text if content_type == "text/plain" else json.dumps([{"message": text}])
        return http_answer(
            401,
            body.encode("latin-1"),
            [("WWW-Authenticate", f"Bearer error=invalid_token, got={value}")],
            reason="Unauthorized",
            content_type=content_type,
        )

    surfaces = Surfaces()
    with EchoServer(respond) as server:
        settings: dict[str, Any] = {"host": server.url, "retries": 0, "debug": True}
        settings["logger_file"] = str(debug_logs)
        options: dict[str, Any] = {}
        if per_call:
            value = f"Bearer {secret}"
            options["_request_auth"] = {"in": "header", "key": "Authorization", "value": value}
        else:
            settings["access_token"] = secret
        with ApiClient(Configuration(**settings)) as client:
            with pytest.raises(UnauthorizedException) as caught:
                UIEventsApi(client).create_session_init(**options)
            surfaces.add_exception("401", caught.value)
    surfaces.add_logs(caplog, debug_logs)
    assert_no_leaks(surfaces, secret)


def _straddling_secret() -> str:
    """12 two-byte letters then hex: its UTF-8 form is 12 bytes longer than its length."""
    return "".join(random.choice(LATIN1_LETTERS) for _ in range(12)) + "-" + _hex() + _hex()


@pytest.mark.parametrize("escaped", [False, True], ids=["raw", "\\u-escaped"])
def test_logged_body_cut_leaves_no_token_prefix(
    escaped: bool, debug_logs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An echoed token straddling character 2,048 of a logged body leaves no prefix of it."""
    secret = _straddling_secret()
    form = json.dumps(secret)[1:-1] if escaped else secret
    opening = '[{"message": "'
    start = 2040  # the form begins 8 characters before the cut
    text = opening + "x" * (start - len(opening)) + form + '"}]'
    assert text.index(form) == start
    body = text.encode()
    surfaces = Surfaces()
    with EchoServer(lambda request: http_answer(401, body, reason="Unauthorized")) as server:
        config = Configuration(
            host=server.url, access_token=secret, retries=0, debug=True, logger_file=str(debug_logs)
        )
        with ApiClient(config) as client, pytest.raises(UnauthorizedException):
            UIEventsApi(client).create_session_init()
    surfaces.add_logs(caplog, debug_logs)
    assert _sdk_logged(caplog), "debug logging was off"
    prefixes = {secret[:8], json.dumps(secret)[1:9]}
    shown = [(where, p) for where, text in surfaces.texts for p in prefixes if p in text]
    assert shown == []


# -- rotation ------------------------------------------------------------------------------------


ROTATION_SECONDS = 8.0
"""How long callers run against a rotating token (less once a leak is seen)."""
_ROTATED = re.compile(r"rot-\d+-[0-9a-f]{32}")


def test_rotating_token_never_shows_in_errors() -> None:
    """While one thread keeps replacing ``access_token``, no call's error shows any token."""
    rotated = 0
    stop = threading.Event()
    leaked: list[str] = []
    unexpected: list[BaseException] = []
    lock = threading.Lock()

    def respond(request: RawRequest) -> bytes:
        (value,) = request.header_values("authorization")
        body = json.dumps([{"message": f"Authorization {value} is not valid"}]).encode()
        return http_answer(401, body, [("X-Echo", value)], reason="Unauthorized")

    with EchoServer(respond) as server:
        config = Configuration(host=server.url, access_token=f"rot-{0:06d}-{uuid.uuid4().hex}")
        config.retries = 0
        client = ApiClient(config)
        api = UIEventsApi(client)

        def rotate() -> None:
            nonlocal rotated
            while not stop.is_set():
                rotated += 1
                config.access_token = f"rot-{rotated:06d}-{uuid.uuid4().hex}"

        def caller() -> None:
            while not stop.is_set():
                try:
                    api.create_session_init()
                except UnauthorizedException as error:
                    texts = [str(error), repr(error), error.body or "", repr(error.headers)]
                    texts += [e.message or "" for e in error.errors]
                    shown = [token for text in texts for token in _ROTATED.findall(text)]
                    if shown:
                        with lock:
                            leaked.extend(shown)
                        stop.set()
                except BaseException as error:
                    with lock:
                        unexpected.append(error)
                    stop.set()

        threads = [threading.Thread(target=rotate)]
        threads += [threading.Thread(target=caller) for _ in range(4)]
        try:
            race(threads, stop, ROTATION_SECONDS)
        finally:
            client.close()
        calls = len(server.requests)

    assert unexpected == []
    assert calls > 0
    assert rotated > 1, "the token was never rotated"
    assert leaked == [], f"after {calls} calls, {rotated} tokens: shown {sorted(set(leaked))[:3]}"


# -- a response kept for later ---------------------------------------------------------------------


def test_pickled_or_copied_api_response_carries_no_secret(
    recording_server: RecordingServer,
) -> None:
    """Pickled or copied before ``headers`` was ever read (while it still holds the request's
    secrets to scrub them lazily), an ``ApiResponse`` carries the token nowhere."""
    token = f"tok_{uuid.uuid4().hex}"

    def echo_token(request: Recorded) -> Canned:
        headers = {"X-Echo": request.headers["Authorization"]}
        return Canned(201, session_init_answer(request.json()), headers)

    recording_server.respond_with(echo_token)
    config = Configuration(host=recording_server.url, access_token=token, retries=0)
    with ApiClient(config) as client:
        response = UIEventsApi(client).create_session_init_with_http_info()

    copies = [copy.copy(response), copy.deepcopy(response)]
    for duplicate in copies:
        held = [getattr(duplicate, name) for name in ApiResponse.__slots__]
        assert token not in repr(held)
    for pickled in [pickle.dumps(response), *(pickle.dumps(c) for c in copies)]:
        assert token.encode() not in pickled
    restored = pickle.loads(pickle.dumps(response))
    assert restored.headers is not None
    assert restored.headers["x-echo"] == f"Bearer {REDACTED}"  # still case-insensitive
    assert restored.status_code == 201
    assert restored.data == response.data
    assert restored.raw_data == response.raw_data
    assert response.headers is not None
    assert response.headers["X-Echo"] == f"Bearer {REDACTED}"
