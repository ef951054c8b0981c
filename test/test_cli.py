"""The command line, run as a subprocess: exit codes, JSON on stdout, one-line errors on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from openapi_client.testing import FakeEngineServer

LEAD = "f914eb07-a64f-51d8-b882-ff508a8c5c81"
RATE_TABLE = "952a1184-d369-5958-9a0f-bec903e11c48"
OFFER = "3426f971-1aa5-5cb0-91a9-cf2edcfa5dfa"
OFFER_ARGS = ["--lead-uuid", LEAD, "--rate-table-uuid", RATE_TABLE, "--offer-uuid", OFFER]


@pytest.fixture
def token() -> str:
    return f"cli-secret-{uuid.uuid4().hex}"


@pytest.fixture
def server(token: str) -> Iterator[FakeEngineServer]:
    with FakeEngineServer(token=token) as fake:
        yield fake


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("BEARER_TOKEN", "ENGINE_API_HOST")}
    return subprocess.run(
        [sys.executable, "-m", "openapi_client", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=timeout,
        check=False,
    )


def assert_no_secret(result: subprocess.CompletedProcess[str], secret: str) -> None:
    assert secret not in result.stdout
    assert secret not in result.stderr


def test_demo_records_a_session_and_an_offer_display_with_nothing_configured() -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    assert "Recorded a session" in result.stdout
    assert "Recorded an offer display" in result.stdout
    assert "1 session(s) and 1 offer display(s)" in result.stdout
    assert result.stderr == ""


def test_session_init_prints_the_answer_as_camel_case_json(
    server: FakeEngineServer, token: str
) -> None:
    result = run_cli("session-init", "--host", server.url, env={"BEARER_TOKEN": token})
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) >= {"id", "uuid", "sessionUuid", "createdAt", "createdBy"}
    assert answer["sessionUuid"] == server.session_inits[0].session_uuid
    assert_no_secret(result, token)


def test_session_init_sends_the_given_session_uuid(server: FakeEngineServer, token: str) -> None:
    session = str(uuid.uuid4())
    result = run_cli(
        "session-init", "--host", server.url, "--token", token, "--session-uuid", session
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sessionUuid"] == session
    assert_no_secret(result, token)


def test_offer_display_reads_host_and_token_from_the_environment(
    server: FakeEngineServer, token: str
) -> None:
    result = run_cli(
        "offer-display", *OFFER_ARGS, env={"BEARER_TOKEN": token, "ENGINE_API_HOST": server.url}
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert (answer["leadUuid"], answer["rateTableUuid"], answer["offerUuid"]) == (
        LEAD,
        RATE_TABLE,
        OFFER,
    )
    assert len(server.offer_displays) == 1


def test_wrong_token_exits_1_with_the_status_and_the_api_message(
    server: FakeEngineServer, token: str
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    result = run_cli("session-init", "--host", server.url, env={"BEARER_TOKEN": wrong})
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "401" in lines[0]
    assert "invalid" in lines[0].lower() or "missing" in lines[0].lower()
    assert "Traceback" not in result.stderr
    assert_no_secret(result, wrong)
    assert_no_secret(result, token)


def test_server_error_exits_1_after_the_retries(server: FakeEngineServer, token: str) -> None:
    server.fail_next(400, body=[{"attribute": "leadUuid", "message": "is not allowed"}])
    result = run_cli("offer-display", "--host", server.url, "--token", token, *OFFER_ARGS)
    assert result.returncode == 1
    assert "400" in result.stderr
    assert "leadUuid: is not allowed" in result.stderr
    assert_no_secret(result, token)


def test_refused_connection_exits_1_without_a_traceback(token: str) -> None:
    with FakeEngineServer() as fake:
        url = fake.url  # a port that is free again once the server stops
    result = run_cli("session-init", "--host", url, "--timeout", "2", env={"BEARER_TOKEN": token})
    assert result.returncode == 1
    assert "Cannot connect" in result.stderr
    assert "Traceback" not in result.stderr
    assert_no_secret(result, token)


def test_missing_token_exits_2_and_says_how_to_give_one() -> None:
    result = run_cli("session-init", "--host", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "BEARER_TOKEN" in result.stderr
    assert "--token" in result.stderr


def test_bad_uuid_exits_2_naming_the_field(server: FakeEngineServer, token: str) -> None:
    result = run_cli(
        "offer-display",
        "--host",
        server.url,
        "--token",
        token,
        "--lead-uuid",
        "nope",
        "--rate-table-uuid",
        RATE_TABLE,
        "--offer-uuid",
        OFFER,
    )
    assert result.returncode == 2
    assert "leadUuid" in result.stderr
    assert server.requests == []
    assert_no_secret(result, token)


def test_usage_error_exits_2() -> None:
    result = run_cli("offer-display", "--lead-uuid", LEAD)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_pixel_url_needs_no_token_and_uses_the_host() -> None:
    result = run_cli("pixel-url", "--host", "https://example.test", *OFFER_ARGS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"https://example.test/uiEvent/offerDisplays/{LEAD}/{RATE_TABLE}/{OFFER}/pixel.gif"
    )


def test_pixel_img_tag_is_html_escaped() -> None:
    result = run_cli("pixel-url", "--host", "https://example.test/a&b", "--img", *OFFER_ARGS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('<img src="https://example.test/a&amp;b/uiEvent/')


def test_pixel_url_refuses_a_non_uuid_with_exit_2() -> None:
    result = run_cli(
        "pixel-url", "--lead-uuid", "<script>", "--rate-table-uuid", RATE_TABLE,
        "--offer-uuid", OFFER,
    )  # fmt: skip
    assert result.returncode == 2
    assert "leadUuid" in result.stderr


def test_serve_prints_its_url_and_answers_until_interrupted(token: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "openapi_client", "serve", "--token", token],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in line
        url = line.split("listening on ", 1)[1].split()[0]
        result = run_cli("session-init", "--host", url, env={"BEARER_TOKEN": token})
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["sessionUuid"]
    finally:
        process.send_signal(2)  # SIGINT, as Ctrl-C
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert token not in out + err
    assert "Traceback" not in err


def test_console_script_entry_point_is_declared() -> None:
    from importlib.metadata import entry_points

    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("engine-ui-events") == "openapi_client.cli:main"
