"""Every setting is checked when it is set, in the constructor and on assignment alike.

A wrong value raises ``ApiTypeError`` or ``ApiValueError`` whose message names the setting, and
an assignment that is refused leaves the old value in place. The table below has a row for
every keyword of ``Configuration.__init__``, read from its signature: a new setting without a
row fails ``test_every_setting_has_wrong_values_to_try``.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import urllib3
from support import RecordingServer

from openapi_client import ApiClient, Configuration, UIEventsApi
from openapi_client.exceptions import ApiTypeError, ApiValueError

SETTINGS = [name for name in inspect.signature(Configuration.__init__).parameters if name != "self"]

WRONG: dict[str, list[Any]] = {
    "host": [
        5,
        "ftp://api.engine.tech",
        "https://api.engine.tech?x=1",
        "https://api.engine.tech/?x=1",
        "https://api.engine.tech#frag",
    ],
    "access_token": [5, "tok☃", "tok\r\nX-Injected: 1", "tok\n", " padded-token"],
    "server_index": ["0", True, -1, 7],
    "server_variables": [5, ["region"], {"region": 5}],
    "verify_ssl": ["no"],
    "ssl_ca_cert": [5],
    "ca_cert_data": [5],
    "cert_file": [5],
    "key_file": [5],
    "assert_hostname": [5],
    "tls_server_name": [5],
    "proxy": [5, "ftp://proxy.example:3128"],
    "proxy_headers": [5, {"Proxy-Authorization": "Basic a\r\nb"}],
    "connection_pool_maxsize": [0, "10", True],
    "retries": ["3", -1, 2.5],
    "timeout": ["5", -1, None, urllib3.Timeout(), urllib3.Timeout(total=1e300)],
    "max_response_bytes": [0, "1024"],
    "allow_insecure_http": ["yes"],
    "socket_options": ["x", [1]],
    "debug": ["yes"],
    "logger_file": [5, "/nonexistent-directory-7c1d/sdk.log"],
    "logger_format": [5, "%(bogus"],
}
"""At least one wrong value per setting (beyond what its type hint allows, or out of range).

Already refused by the old code, so pinned here: host 5 and ftp://, access_token 5, CR/LF and
padding, proxy ftp://, proxy_headers 5, and every row of connection_pool_maxsize, retries,
timeout and max_response_bytes.
"""

ROWS = [(name, value) for name in SETTINGS for value in WRONG.get(name, [])]


def _refusal(action: Callable[[], Any]) -> BaseException | None:
    """What ``action`` raised (anything at all), or None if it was accepted."""
    try:
        action()
    except Exception as error:
        return error
    return None


def _assert_refused_naming(name: str, value: Any, error: BaseException | None) -> None:
    assert error is not None, f"{name}={value!r} was accepted"
    assert isinstance(error, ApiTypeError | ApiValueError), (
        f"{name}={value!r} raised {type(error).__name__}: {error}"
    )
    assert name in str(error), f"{name}={value!r}: the message does not name it: {error}"


def test_every_setting_has_wrong_values_to_try() -> None:
    """The table covers every keyword of ``Configuration.__init__`` (and nothing else)."""
    assert sorted(WRONG) == sorted(SETTINGS)


@pytest.mark.parametrize(("name", "value"), ROWS, ids=[f"{n}={v!r}" for n, v in ROWS])
def test_wrong_value_is_refused_by_the_constructor(name: str, value: Any) -> None:
    """``Configuration(name=wrong)`` raises ApiTypeError/ApiValueError naming ``name``."""
    _assert_refused_naming(name, value, _refusal(lambda: Configuration(**{name: value})))


@pytest.mark.parametrize(("name", "value"), ROWS, ids=[f"{n}={v!r}" for n, v in ROWS])
def test_wrong_value_is_refused_on_assignment(name: str, value: Any) -> None:
    """``config.name = wrong`` raises ApiTypeError/ApiValueError naming ``name``; nothing changes."""
    config = Configuration()
    before = repr(getattr(config, name))
    _assert_refused_naming(name, value, _refusal(lambda: setattr(config, name, value)))
    assert repr(getattr(config, name)) == before


# -- the token -------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["tok☃", "tök-€uro", "tok\r\nX-Injected: 1", "tok\nx"])
def test_token_http_cannot_carry_is_refused_when_set(token: str) -> None:
    """Outside Latin-1, or with CR/LF: ``ApiValueError`` naming access_token, both ways."""
    with pytest.raises(ApiValueError) as caught:
        Configuration(access_token=token)
    assert "access_token" in str(caught.value)
    config = Configuration(access_token="good-token")
    with pytest.raises(ApiValueError) as caught:
        config.access_token = token
    assert "access_token" in str(caught.value)
    assert config.access_token == "good-token"


# -- the host --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "https://api.engine.tech?x=1",
        "https://api.engine.tech/v1?x=1",
        "https://api.engine.tech#frag",
    ],
)
def test_host_with_a_query_or_fragment_is_refused_when_set(host: str) -> None:
    """A base URL with ``?…`` or ``#…`` would make wrong request URLs: refused, naming host."""
    with pytest.raises(ApiValueError) as caught:
        Configuration(host=host)
    assert "host" in str(caught.value)
    config = Configuration(host="https://api.engine.tech")
    with pytest.raises(ApiValueError):
        config.host = host
    assert config.host == "https://api.engine.tech"


def test_password_in_the_host_shows_nowhere() -> None:
    """``https://user:pass@…``: the password is not in reprs or the debug report (or is refused)."""
    password = "s3cretpass"
    host = f"https://user:{password}@127.0.0.1:1"
    makers: list[Callable[[], Configuration]] = [
        lambda: Configuration(host=host),
        lambda: _assigned_host(host),
    ]
    for make in makers:
        refused = _refusal(make)
        if refused is not None:  # refusing such a host keeps the promise too
            assert isinstance(refused, ApiTypeError | ApiValueError), repr(refused)
            assert "host" in str(refused)
            assert password not in str(refused)
            continue
        config = make()
        texts = {
            "repr(Configuration)": repr(config),
            "str(Configuration)": str(config),
            "to_debug_report()": config.to_debug_report(),
            "repr(ApiClient)": repr(ApiClient(config)),
        }
        assert [where for where, text in texts.items() if password in text] == []


def _assigned_host(host: str) -> Configuration:
    config = Configuration()
    config.host = host
    return config


# -- copies ----------------------------------------------------------------------------------------


def test_deepcopy_keeps_the_settings_and_logs_each_line_once(
    tmp_path: Path, recording_server: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    """``copy.deepcopy`` of a Configuration with a log file works; no line is logged twice."""
    log = tmp_path / "sdk.log"
    config = Configuration(
        host=recording_server.url,
        access_token="deepcopy-token-1234",
        timeout=(3, 4),
        retries=1,
        logger_file=str(log),
        debug=True,
    )
    copied = copy.deepcopy(config)
    try:
        assert copied is not config
        for name in SETTINGS:
            assert repr(getattr(copied, name)) == repr(getattr(config, name)), name
        caplog.clear()
        log.write_text("")
        for settings in (config, copied):
            with ApiClient(settings) as client:
                UIEventsApi(client).create_session_init()
        records = [r for r in caplog.records if r.name.startswith("openapi_client")]
        written = log.read_text().splitlines()
    finally:
        copied.logger_file = None
        config.logger_file = None
        copied.debug = config.debug = False
    assert len(recording_server.requests) == 2
    assert len(records) >= 2, "nothing was logged through the SDK's logger"
    expected = sum(r.getMessage().count("\n") + 1 for r in records)
    assert len(written) == expected, "\n".join(written)
