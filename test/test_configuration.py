"""Configuration: defaults, host selection, auth, reports, logging, and every pool, TLS and proxy
setting reaching the transport (checked on the pool manager and over real loopback connections)."""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import subprocess
import sys
import textwrap
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
import urllib3
from samples import SESSION
from support import TOKEN, Canned, Recorded, RecordingServer, make_client

from openapi_client import (
    ApiClient,
    ApiConnectionError,
    ApiValueError,
    Configuration,
    RetryPolicy,
    UIEventsApi,
)
from openapi_client.configuration import HostSetting
from openapi_client.validation import timeout_budget


def pool_manager(client: ApiClient) -> urllib3.PoolManager:
    return client._current_state().transport.pool_manager


# -- defaults and hosts ----------------------------------------------------------------------


def test_defaults_are_production_host_finite_timeout_and_verified_tls() -> None:
    config = Configuration()

    assert config.host == "https://api.engine.tech"
    assert config.timeout.connect_timeout == 5
    assert config.timeout.read_timeout == 10
    assert timeout_budget(config.timeout) == 15
    assert config.verify_ssl is True
    assert config.access_token is None
    assert config.proxy is None
    assert config.retries == RetryPolicy()
    assert config.retries.max_retries == 2
    assert config.debug is False
    assert config.connection_pool_maxsize >= 1


def test_environment_variable_sets_default_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE_API_HOST", "https://sandbox.engine.test/")

    assert Configuration().host == "https://sandbox.engine.test"
    assert Configuration(host="https://explicit.test").host == "https://explicit.test"


def test_environment_host_is_used_by_calls(
    monkeypatch: pytest.MonkeyPatch, recording_server: RecordingServer
) -> None:
    monkeypatch.setenv("ENGINE_API_HOST", recording_server.url)

    with ApiClient(Configuration(access_token=TOKEN)) as client:
        UIEventsApi(client).create_session_init()

    assert len(recording_server.requests) == 1


def test_invalid_host_is_refused() -> None:
    with pytest.raises(ApiValueError, match="host"):
        Configuration(host="ftp://engine.test")
    with pytest.raises(ApiValueError, match="host"):
        Configuration(host="api.engine.tech")


def test_set_default_is_used_by_clients_made_without_configuration(
    recording_server: RecordingServer,
) -> None:
    config = Configuration(host=recording_server.url, access_token=TOKEN)
    Configuration.set_default(config)

    assert Configuration.get_default() is config
    with ApiClient() as client:
        assert client.configuration is config
        UIEventsApi(client).create_session_init()
    assert len(recording_server.requests) == 1


def test_get_default_creates_one_configuration_and_copy_is_independent() -> None:
    Configuration.set_default(None)

    default = Configuration.get_default()
    copy = Configuration.get_default_copy()
    copy.host = "https://copy.test"

    assert Configuration.get_default() is default
    assert copy is not default
    assert default.host == "https://api.engine.tech"


def test_api_client_set_default_is_used_by_api_classes(recording_server: RecordingServer) -> None:
    with make_client(recording_server) as client:
        ApiClient.set_default(client)
        assert UIEventsApi().api_client is client
        assert ApiClient.get_default() is client


def test_host_settings_list_the_production_server() -> None:
    config = Configuration()

    settings = config.get_host_settings()

    assert [s["url"] for s in settings] == ["https://api.engine.tech"]
    assert config.get_host_from_settings(0) == "https://api.engine.tech"
    assert config.get_host_from_settings(None) == "https://api.engine.tech"
    with pytest.raises(ApiValueError, match="Invalid host index"):
        config.get_host_from_settings(1)


def test_host_from_settings_fills_variables_and_checks_enums() -> None:
    servers: list[HostSetting] = [
        {
            "url": "https://{region}.engine.test",
            "description": "regional",
            "variables": {
                "region": {"description": "", "default_value": "us", "enum_values": ["us", "eu"]}
            },
        }
    ]
    config = Configuration()

    assert config.get_host_from_settings(0, servers=servers) == "https://us.engine.test"
    assert config.get_host_from_settings(0, {"region": "eu"}, servers) == "https://eu.engine.test"
    with pytest.raises(ApiValueError, match="region"):
        config.get_host_from_settings(0, {"region": "mars"}, servers)


def test_server_index_selects_host_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE_API_HOST", "https://sandbox.engine.test")

    assert Configuration(server_index=0).host == "https://api.engine.tech"


# -- auth and reports ------------------------------------------------------------------------


def test_auth_settings_carry_the_bearer_token() -> None:
    assert Configuration().auth_settings() == {}
    assert Configuration(access_token="pk_1").auth_settings() == {
        "publishableBearerToken": {
            "type": "bearer",
            "in": "header",
            "key": "Authorization",
            "value": "Bearer pk_1",
        }
    }


def test_debug_report_and_repr_never_show_the_token() -> None:
    config = Configuration(
        host="https://api.engine.tech",
        access_token="pk_secret_value",
        proxy="http://user:proxy-password@127.0.0.1:3128",
    )

    report = config.to_debug_report()
    text = repr(config)

    assert "pk_secret_value" not in report
    assert "pk_secret_value" not in text
    assert "proxy-password" not in text
    assert "Access token: set" in report
    assert "Python SDK Debug Report" in report
    assert "https://api.engine.tech" in report
    assert "user:***@127.0.0.1:3128" in text


# -- logging ---------------------------------------------------------------------------------


def test_debug_logs_request_and_answer_with_token_redacted(
    recording_server: RecordingServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with make_client(recording_server, debug=True) as client:
        UIEventsApi(client).create_session_init({"sessionUuid": SESSION})

    messages = [r.getMessage() for r in caplog.records]
    package = [r for r in caplog.records if r.name.startswith("openapi_client")]
    assert any("HTTP request" in m and "/uiEvent/sessionInits" in m for m in messages)
    assert any("HTTP response: 201" in m for m in messages)
    assert all(r.levelno == logging.DEBUG for r in package)
    assert TOKEN not in caplog.text
    assert "[REDACTED]" in caplog.text
    assert SESSION in caplog.text
    captured = capsys.readouterr()
    assert captured.out == ""
    assert TOKEN not in captured.err


def test_debug_off_logs_nothing_at_debug(
    recording_server: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    with make_client(recording_server, debug=False) as client:
        UIEventsApi(client).create_session_init()

    assert not [r for r in caplog.records if r.levelno <= logging.DEBUG]


def test_debug_can_be_switched_on_after_the_client_was_made(
    client: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    api = UIEventsApi(client)
    api.create_session_init()
    assert "HTTP request" not in caplog.text

    client.configuration.debug = True
    api.create_session_init()

    assert "HTTP request" in caplog.text
    assert TOKEN not in caplog.text


def test_token_logged_by_the_package_logger_is_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = Configuration(debug=True)  # debug logging lasts while the configuration lives

    logging.getLogger("openapi_client").debug("header was %s", f"Bearer {TOKEN}")
    del config

    assert TOKEN not in caplog.text
    assert "Bearer [REDACTED]" in caplog.text


def test_logger_file_gets_redacted_records(
    recording_server: RecordingServer, tmp_path: Path
) -> None:
    log_file = tmp_path / "sdk.log"
    config = Configuration(
        host=recording_server.url,
        access_token=TOKEN,
        debug=True,
        logger_file=str(log_file),
        retries=0,
    )
    with ApiClient(config) as client:
        UIEventsApi(client).create_session_init()
    config.logger_file = None  # closes the file handler

    text = log_file.read_text()
    assert "HTTP request" in text
    assert "HTTP response: 201" in text
    assert "openapi_client" in text
    assert TOKEN not in text


def test_debug_without_logging_setup_writes_to_stderr_not_stdout(
    recording_server: RecordingServer,
) -> None:
    script = textwrap.dedent(
        f"""
        import openapi_client as sdk
        config = sdk.Configuration(host={recording_server.url!r}, access_token={TOKEN!r},
                                   debug=True, retries=0)
        with sdk.ApiClient(config) as client:
            sdk.UIEventsApi(client).create_session_init()
        """
    )

    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    assert result.stdout == ""
    assert "HTTP request" in result.stderr
    assert TOKEN not in result.stderr
    assert len(recording_server.requests) == 1


# -- pool settings ---------------------------------------------------------------------------


def test_pool_settings_reach_the_pool_manager(tmp_path: Path) -> None:
    options: list[tuple[int, int, int | bytes]] = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text("not checked until a TLS connection is made")
    config = Configuration(
        host="https://api.engine.tech",
        verify_ssl=False,
        ssl_ca_cert=str(tmp_path / "ca.pem"),
        ca_cert_data="-----BEGIN CERTIFICATE-----",
        cert_file=str(tmp_path / "client.pem"),
        key_file=str(tmp_path / "client.key"),
        assert_hostname="engine.test",
        tls_server_name="sni.engine.test",
        socket_options=options,
        connection_pool_maxsize=3,
    )
    with ApiClient(config) as client:
        manager = pool_manager(client)

        assert type(manager) is urllib3.PoolManager
        kw = manager.connection_pool_kw
        assert kw["cert_reqs"] == ssl.CERT_NONE
        assert kw["ca_certs"] == str(tmp_path / "ca.pem")
        assert kw["ca_cert_data"] == "-----BEGIN CERTIFICATE-----"
        assert kw["cert_file"] == str(tmp_path / "client.pem")
        assert kw["key_file"] == str(tmp_path / "client.key")
        assert kw["assert_hostname"] == "engine.test"
        assert kw["server_hostname"] == "sni.engine.test"
        assert kw["socket_options"] == options
        assert config.socket_options == tuple(options)
        assert kw["maxsize"] == 3


def test_verify_ssl_on_by_default_requires_certificates() -> None:
    with ApiClient(Configuration()) as client:
        assert pool_manager(client).connection_pool_kw["cert_reqs"] == ssl.CERT_REQUIRED


def test_pool_setting_changed_after_client_was_made_rebuilds_the_pool() -> None:
    config = Configuration(connection_pool_maxsize=2)
    with ApiClient(config) as client:
        first = pool_manager(client)

        config.connection_pool_maxsize = 7
        second = pool_manager(client)

        assert second is not first
        assert second.connection_pool_kw["maxsize"] == 7
        config.access_token = "pk_other"  # not a pool setting: the pool is kept
        assert pool_manager(client) is second


def test_proxy_settings_make_a_proxy_manager() -> None:
    config = Configuration(
        proxy="http://127.0.0.1:3128", proxy_headers={"Proxy-Authorization": "Basic dTpw"}
    )
    with ApiClient(config) as client:
        manager = pool_manager(client)

        assert isinstance(manager, urllib3.ProxyManager)
        assert manager.proxy is not None
        assert (manager.proxy.host, manager.proxy.port) == ("127.0.0.1", 3128)
        assert manager.proxy_headers["Proxy-Authorization"] == "Basic dTpw"


def test_proxy_header_with_newline_is_refused() -> None:
    with pytest.raises(ApiValueError):
        Configuration(proxy_headers={"Proxy-Authorization": "Basic x\r\nX: y"})


# -- a proxy really used ---------------------------------------------------------------------

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te"}


def _forward(request: Recorded) -> Canned:
    """Act as a forwarding proxy: the request line must carry an absolute http:// URI."""
    target = urllib.parse.urlsplit(request.path)
    if target.scheme != "http" or not target.hostname:
        return Canned(400, b"absolute URI required")
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    path = target.path + (f"?{target.query}" if target.query else "")
    upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
    try:
        upstream.request(request.method, path, body=request.body, headers=headers)
        answer = upstream.getresponse()
        body = answer.read()
        kept = {"Content-Type": answer.getheader("Content-Type") or "application/octet-stream"}
        return Canned(answer.status, body, kept)
    finally:
        upstream.close()


@pytest.fixture
def forwarding_proxy() -> Iterator[RecordingServer]:
    with RecordingServer() as proxy:
        proxy.respond_with(_forward)
        yield proxy


def test_calls_go_through_the_configured_proxy_with_proxy_headers(
    recording_server: RecordingServer, forwarding_proxy: RecordingServer
) -> None:
    with make_client(
        recording_server,
        retries=0,
        proxy=forwarding_proxy.url,
        proxy_headers={"Proxy-Authorization": "Basic dXNlcjpwdw=="},
    ) as client:
        result = UIEventsApi(client).create_session_init({"sessionUuid": SESSION})

    assert result.session_uuid == SESSION
    (via_proxy,) = forwarding_proxy.requests
    assert via_proxy.path == f"{recording_server.url}/uiEvent/sessionInits"
    assert via_proxy.headers["Proxy-Authorization"] == "Basic dXNlcjpwdw=="
    assert via_proxy.headers["Authorization"] == f"Bearer {TOKEN}"
    (arrived,) = recording_server.requests
    assert arrived.path == "/uiEvent/sessionInits"
    assert arrived.body == via_proxy.body


def test_proxy_that_refuses_connections_raises_connection_error(
    recording_server: RecordingServer,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    client = make_client(recording_server, retries=0, proxy=f"http://127.0.0.1:{dead_port}")
    with client, pytest.raises(ApiConnectionError) as caught:
        UIEventsApi(client).create_session_init()

    assert caught.value.kind in ("proxy", "connect")
    assert recording_server.requests == []


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _tls_server(ca: trustme.CA, name: str, client_ca: trustme.CA | None = None) -> RecordingServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(name).configure_cert(context)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        client_ca.configure_trust(context)
    return RecordingServer(ssl_context=context)


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[RecordingServer]:
    with _tls_server(ca, "127.0.0.1") as server:
        yield server


def test_unknown_certificate_authority_fails_with_tls_error(tls_server: RecordingServer) -> None:
    with make_client(tls_server) as client, pytest.raises(ApiConnectionError) as caught:
        UIEventsApi(client).create_session_init()

    assert caught.value.kind == "tls"
    assert caught.value.retries == 0  # a TLS failure is not retried
    assert "certificate verify failed" in (caught.value.reason or "")
    assert tls_server.requests == []


def test_ssl_ca_cert_trusts_the_server(tls_server: RecordingServer, ca_file: str) -> None:
    with make_client(tls_server, ssl_ca_cert=ca_file) as client:
        UIEventsApi(client).create_session_init()

    assert len(tls_server.requests) == 1
    assert tls_server.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_ca_cert_data_trusts_the_server(tls_server: RecordingServer, ca: trustme.CA) -> None:
    with make_client(tls_server, ca_cert_data=ca.cert_pem.bytes().decode()) as client:
        UIEventsApi(client).create_session_init()

    assert len(tls_server.requests) == 1


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_ssl_off_accepts_any_certificate(tls_server: RecordingServer) -> None:
    with make_client(tls_server, verify_ssl=False) as client:
        UIEventsApi(client).create_session_init()

    assert len(tls_server.requests) == 1


def test_ca_cert_set_after_tls_failure_is_honoured(
    tls_server: RecordingServer, ca_file: str
) -> None:
    with make_client(tls_server, retries=0) as client:
        api = UIEventsApi(client)
        with pytest.raises(ApiConnectionError):
            api.create_session_init()

        client.configuration.ssl_ca_cert = ca_file
        api.create_session_init()

    assert len(tls_server.requests) == 1


@pytest.mark.parametrize(
    "setting", [{"assert_hostname": "engine.test"}, {"tls_server_name": "engine.test"}]
)
def test_hostname_settings_match_a_certificate_for_another_name(
    ca: trustme.CA, ca_file: str, setting: dict[str, str]
) -> None:
    with _tls_server(ca, "engine.test") as server:
        client = make_client(server, ssl_ca_cert=ca_file)
        with client, pytest.raises(ApiConnectionError) as caught:
            UIEventsApi(client).create_session_init()
        assert caught.value.kind == "tls"

        with make_client(server, ssl_ca_cert=ca_file, **setting) as client:
            UIEventsApi(client).create_session_init()

        assert len(server.requests) == 1


def test_client_certificate_is_presented(ca: trustme.CA, ca_file: str, tmp_path: Path) -> None:
    client_ca = trustme.CA()
    leaf = client_ca.issue_cert("client.engine.test")
    cert_path, key_path = tmp_path / "client.pem", tmp_path / "client.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert_path))
    leaf.private_key_pem.write_to_path(str(key_path))

    with _tls_server(ca, "127.0.0.1", client_ca=client_ca) as server:
        client = make_client(server, ssl_ca_cert=ca_file, retries=0)
        with client, pytest.raises(ApiConnectionError):
            UIEventsApi(client).create_session_init()
        with make_client(
            server, ssl_ca_cert=ca_file, cert_file=str(cert_path), key_file=str(key_path)
        ) as client:
            UIEventsApi(client).create_session_init()

        assert len(server.requests) == 1
