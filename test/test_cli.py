"""The command line, run as a subprocess: exit codes, JSON on stdout, one-line errors on stderr."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from samples import LEAD, OFFER, RATE_TABLE

from openapi_client.testing import FakeEngineServer

OFFER_ARGS = ["--lead-uuid", LEAD, "--rate-table-uuid", RATE_TABLE, "--offer-uuid", OFFER]


@pytest.fixture
def token() -> str:
    return f"cli-secret-{uuid.uuid4().hex}"


@pytest.fixture
def server(token: str) -> Iterator[FakeEngineServer]:
    with FakeEngineServer(token=token) as fake:
        yield fake


def clean_env(env: dict[str, str] | None = None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("BEARER_TOKEN", "ENGINE_API_HOST")}
    return {**base, **(env or {})}


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "openapi_client", *args], env, timeout)


def run(
    command: list[str], env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=clean_env(env),
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
    assert lines[0].endswith("; check BEARER_TOKEN or --token")
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
    assert "--lead-uuid 'nope'" in result.stderr
    assert server.requests == []
    assert_no_secret(result, token)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["offer-display", "--lead-uuid", LEAD], "required: --rate-table-uuid, --offer-uuid"),
        (["serve", "--port", "99999"], "argument --port: must be a number from 0 to 65535"),
        (["serve", "--port", "http"], "argument --port: must be a number from 0 to 65535"),
        (["session-init", "--timeout", "0"], "argument --timeout: must be a positive number"),
        (["session-init", "--timeout", "soon"], "argument --timeout: must be a positive number"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["--nope"], "unrecognized arguments: --nope"),
        ([], "missing COMMAND, one of: demo, serve, session-init, offer-display, pixel-url"),
    ],
)
def test_usage_error_exits_2_with_one_line_and_no_traceback(args: list[str], expected: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ")
    assert expected in line
    assert line.endswith("--help')")  # says where to look


def test_every_bad_uuid_flag_is_named_by_its_flag_in_one_line(
    server: FakeEngineServer, token: str
) -> None:
    result = run_cli(
        "offer-display", "--host", server.url, "--token", token, "--lead-uuid", "nope",
        "--rate-table-uuid", "12", "--offer-uuid", "3426f971",
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: not a UUID: --lead-uuid 'nope', --rate-table-uuid '12', --offer-uuid '3426f971'"
        " (a UUID looks like f914eb07-a64f-51d8-b882-ff508a8c5c81)"
    ]
    assert server.requests == []
    assert_no_secret(result, token)


@pytest.mark.parametrize(
    "args",
    [
        ["session-init", "--session-uuid", "nope"],
        ["pixel-url", "--lead-uuid", LEAD, "--rate-table-uuid", RATE_TABLE, "--offer-uuid", "nope"],
    ],
)
def test_every_command_words_a_bad_uuid_the_same_way(args: list[str]) -> None:
    result = run_cli(*args, env={"BEARER_TOKEN": "t", "ENGINE_API_HOST": "http://127.0.0.1:9"})
    assert result.returncode == 2
    flag = args[-2]
    assert result.stderr.splitlines() == [
        f"error: not a UUID: {flag} 'nope' (a UUID looks like f914eb07-a64f-51d8-b882-ff508a8c5c81)"
    ]


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ["--host", "ftp://x"],
            {},
            "error: --host must be an http:// or https:// URL, not 'ftp://x'",
        ),
        ([], {"ENGINE_API_HOST": "api.engine.tech"}, "error: $ENGINE_API_HOST must be an http://"),
    ],
)
def test_a_bad_host_is_named_by_where_it_came_from(
    args: list[str], env: dict[str, str], expected: str
) -> None:
    result = run_cli("session-init", *args, env={"BEARER_TOKEN": "t", **env})
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(expected)


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
    assert "--lead-uuid '<script>'" in result.stderr
    assert result.stdout == ""


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
        session = json.loads(result.stdout)["sessionUuid"]
        wrong = run_cli("session-init", "--host", url, env={"BEARER_TOKEN": "pk_wrong"})
        assert wrong.returncode == 1
        assert process.stderr is not None
        logged = [process.stderr.readline(), process.stderr.readline()]
    finally:
        process.send_signal(2)  # SIGINT, as Ctrl-C
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    # One line per request on stderr: time, method, path, status, what was recorded.
    assert logged[0].endswith(
        f" POST /uiEvent/sessionInits -> 201, recorded session init id=1 session_uuid={session}\n"
    )
    assert logged[1].endswith(" POST /uiEvent/sessionInits -> 401, recorded nothing\n")
    assert token not in out + err + "".join(logged)
    assert "Traceback" not in err


def test_console_script_entry_point_is_declared() -> None:
    from importlib.metadata import entry_points

    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("engine-ui-events") == "openapi_client.cli:main"


def console_script() -> str:
    """The installed ``engine-ui-events`` beside this interpreter."""
    script = shutil.which("engine-ui-events", path=os.path.dirname(sys.executable))
    assert script is not None, "the console script is not installed beside the interpreter"
    return script


def test_help_names_the_installed_program_and_lists_examples_variables_and_exit_codes() -> None:
    result = run([console_script(), "--help"])

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: engine-ui-events ")
    for part in ("examples:", "engine-ui-events demo", "BEARER_TOKEN", "ENGINE_API_HOST",
                 "exit codes:", "130"):  # fmt: skip
        assert part in result.stdout
    assert "python -m" not in result.stdout
    assert result.stderr == ""


def test_command_help_names_the_program_and_shows_an_example() -> None:
    result = run([console_script(), "offer-display", "--help"])

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: engine-ui-events offer-display ")
    assert "--allow-insecure-http" in result.stdout
    assert "example:\n  engine-ui-events offer-display --lead-uuid" in result.stdout


def test_run_as_a_module_it_names_itself_as_started() -> None:
    result = run_cli("--help")

    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m openapi_client ")
    assert "  python -m openapi_client demo" in result.stdout


def test_version_prints_the_distribution_and_its_version() -> None:
    from openapi_client import __version__

    for command in ([console_script()], [sys.executable, "-m", "openapi_client"]):
        result = run([*command, "--version"])
        assert result.returncode == 0
        assert result.stdout.startswith(f"engine-ui-events {__version__} ")


def test_main_returns_the_exit_code_for_help_version_and_usage_errors() -> None:
    script = (
        "import contextlib, io, json\n"
        "from openapi_client.cli import main\n"
        "codes = {}\n"
        "for name, argv in [('help', ['--help']), ('version', ['--version']),\n"
        "                   ('command help', ['serve', '--help']), ('usage', ['bogus']),\n"
        "                   ('nothing', []), ('bad port', ['serve', '--port', '-1'])]:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        codes[name] = main(argv)\n"
        "print(json.dumps(codes))\n"
    )
    result = run([sys.executable, "-c", script])

    assert result.returncode == 0, result.stderr  # main never raised SystemExit
    assert json.loads(result.stdout) == {
        "help": 0, "version": 0, "command help": 0, "usage": 2, "nothing": 2, "bad port": 2,
    }  # fmt: skip
    assert "error: argument COMMAND: invalid choice: 'bogus'" in result.stderr
    assert "(see 'engine-ui-events --help')" in result.stderr  # named, though run by python -c


@pytest.mark.parametrize("where", ["env", "flag"])
def test_debug_logs_the_exchange_to_stderr_without_the_token(
    server: FakeEngineServer, token: str, where: str
) -> None:
    given = {"env": ({"BEARER_TOKEN": token}, []), "flag": ({}, ["--token", token])}
    env, flags = given[where]

    result = run_cli("--debug", "offer-display", "--host", server.url, *flags, *OFFER_ARGS, env=env)

    assert result.returncode == 0, result.stderr
    assert "HTTP request (attempt 1): POST " in result.stderr
    assert "'Authorization': 'Bearer [REDACTED]'" in result.stderr
    assert "HTTP response: 201 Created" in result.stderr
    assert json.loads(result.stdout)["offerUuid"] == OFFER  # stdout holds the answer only
    assert_no_secret(result, token)
    server.assert_token(token)


def test_debug_works_after_the_command_too(server: FakeEngineServer, token: str) -> None:
    result = run_cli("session-init", "--debug", "--host", server.url, env={"BEARER_TOKEN": token})

    assert result.returncode == 0, result.stderr
    assert "HTTP response: 201" in result.stderr
    assert_no_secret(result, token)


def test_serve_warns_before_listening_beyond_this_machine() -> None:
    # 192.0.2.1 (TEST-NET-1) is never this machine's: the bind fails, nothing is exposed.
    result = run_cli("serve", "--host", "192.0.2.1")

    assert result.returncode == 2
    warning, error = result.stderr.splitlines()
    assert warning.startswith("warning: --host 192.0.2.1 listens beyond this machine")
    assert "accepts any token" in warning
    assert error.startswith("error: cannot listen on 192.0.2.1:0")


def test_allow_insecure_http_lets_the_token_go_to_a_non_loopback_address(
    server: FakeEngineServer, token: str
) -> None:
    # 0.0.0.0 is not a loopback address to the SDK, yet connecting to it reaches this machine.
    host = f"http://0.0.0.0:{server.port}"

    refused = run_cli("session-init", "--host", host, env={"BEARER_TOKEN": token})
    allowed = run_cli(
        "session-init", "--host", host, "--allow-insecure-http", env={"BEARER_TOKEN": token}
    )

    assert refused.returncode == 2
    assert "(on the command line: --allow-insecure-http)" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr
    assert len(server.session_inits) == 1
    assert_no_secret(refused, token)
    assert_no_secret(allowed, token)
