"""Every documented example runs as written: the ```python blocks of README.md, docs/*.md, the seed.

Conventions (follow them in any page whose examples should be checked):

* Only blocks fenced exactly ```python run. Use another tag (```pycon, ```text, ```bash) for
  snippets that are not meant to run on their own.
* Each block runs exactly as written, not a character changed, in a Python process of its
  own whose environment names a fresh ``FakeEngineServer``: ``$ENGINE_API_HOST`` is the fake's
  URL and ``$BEARER_TOKEN`` a token it accepts. Examples therefore leave the host to the
  environment (``Configuration()`` reads ``$ENGINE_API_HOST``), as an application would;
  a block that names a host of its own is refused (see the test below), since run by a user
  against the fake it would call the real API.
* A block whose first line is ``# file: test_<name>.py`` is a pytest module: it is written to a
  temporary directory and run with ``python -m pytest -q`` (same environment), which must pass.
  The SDK's fixtures (``fake_engine``, ``fake_engine_api``) come from its pytest11 entry point.
* Any other block runs as a script (``__name__ == "__main__"``). Exiting 0 is not enough, since
  examples catch exceptions and print "Exception when calling ..." in the generated-client
  style: it must print no such line, and the fake must show that the block really worked:
  every request it received recorded an event, and each operation the block calls
  (``create_session_init``, ``create_offer_display``, a pixel URL it loads, and an
  ``EventRecorder``'s ``record_session_init`` and ``record_offer_display``) recorded at least
  one event of its kind. Blocks about errors (an ``except`` naming a status exception, such as
  ``except UnauthorizedException``) need only have reached the fake. A block that starts a
  ``FakeEngineServer`` of its own calls that one, and asserts what it recorded itself.
* Tracebacks point at the markdown file and line of the failing statement; test ids are
  ``file:line`` of the opening fence.

The seed (``/work/shared/seed/UIEventsApi.md``) is the user's own document and is not edited.
Its examples use ``os`` without importing it, so their process supplies ``os`` as a global.
They also name the real host, in a first ``Configuration`` that the second one (without
``host``) replaces, so they reach the fake as written. Were that not so, replacing the host
text in the seed's blocks, and only there, would be the allowed exception to "as written".
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openapi_client.models import OfferDisplay, SessionInit
from openapi_client.testing import FakeEngineServer

REPO = Path(__file__).resolve().parents[1]
SEED = Path(__file__).resolve().parents[2] / "shared/seed/UIEventsApi.md"
TOKEN = "pk_docs_example_token"
SUBPROCESS_TIMEOUT = 120

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*$")
_MODULE_HEADER = re.compile(r"^# file: (?P<name>test_\w+\.py)[ \t]*$")
_ABOUT_ERRORS = re.compile(
    r"\bexcept\b\s*\(?[\w.,\s]*\b(BadRequest|Unauthorized|Forbidden|NotFound|Conflict|"
    r"UnprocessableEntity|Service)Exception\b"
)
_OWN_HOST = re.compile(r"""\bhost\s*=\s*["']""")
# What a block calls, and the event the fake must then have recorded.
_OPERATIONS: dict[str, tuple[re.Pattern[str], type[Any]]] = {
    "create_session_init": (re.compile(r"\.create_session_init\w*\("), SessionInit),
    "create_offer_display": (re.compile(r"\.create_offer_display\w*\("), OfferDisplay),
    "a loaded pixel URL": (
        re.compile(r"offer_display_pixel_url\([\s\S]*urllib3\.request\("),
        OfferDisplay,
    ),
    # EventRecorder delivers in the background: the block must flush (or close) before it ends.
    "record_session_init": (re.compile(r"\.record_session_init\("), SessionInit),
    "record_offer_display": (re.compile(r"\.record_offer_display\("), OfferDisplay),
}
# Runs a block as __main__, compiled under the markdown file's name so tracebacks point there.
_RUNNER = (
    "import os, sys\n"
    "path, markdown, preset = sys.argv[1:4]\n"
    "code = compile(open(path, encoding='utf-8').read(), markdown, 'exec')\n"
    "namespace = {'__name__': '__main__', **({'os': os} if preset == 'os' else {})}\n"
    "exec(code, namespace)\n"
)


@dataclass(frozen=True)
class Block:
    """One ```python block: where it starts (the fence line, 1-based) and its code."""

    path: Path
    line: int
    code: str

    @property
    def label(self) -> str:
        try:
            name = self.path.resolve().relative_to(REPO).as_posix()
        except ValueError:
            name = "seed/" + self.path.name
        return f"{name}:{self.line}"

    @property
    def module_name(self) -> str | None:
        """The file name of a pytest-module block (first line ``# file: test_x.py``), else None."""
        first = self.code.split("\n", 1)[0]
        match = _MODULE_HEADER.match(first)
        return match["name"] if match else None

    @property
    def about_errors(self) -> bool:
        return _ABOUT_ERRORS.search(self.code) is not None

    def expected_events(self) -> dict[str, type[Any]]:
        """The operations this block calls on the environment's fake, each with its event.

        None for a block that starts a ``FakeEngineServer`` of its own: its calls go there,
        and it checks them itself.
        """
        if "FakeEngineServer(" in self.code:
            return {}
        return {
            name: model
            for name, (pattern, model) in _OPERATIONS.items()
            if pattern.search(self.code)
        }


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of a markdown file, dedented by their fence's indentation."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE_OPEN.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, start = opening["indent"], index
        body: list[str] = []
        index += 1
        while index < len(lines) and lines[index].strip() != "```":
            text = lines[index]
            body.append(text[len(indent) :] if text.startswith(indent) else text.lstrip())
            index += 1
        if index == len(lines):
            raise ValueError(f"{path}:{start + 1}: ```python block is never closed")
        blocks.append(Block(path, start + 1, "\n".join(body) + "\n"))
        index += 1
    return blocks


def documented_pages() -> list[Path]:
    """README.md (when present) and every page in docs/."""
    readme = REPO / "README.md"
    return ([readme] if readme.is_file() else []) + sorted((REPO / "docs").glob("*.md"))


def _params(blocks: list[Block]) -> list[Any]:
    return [pytest.param(block, id=block.label) for block in blocks]


DOC_BLOCKS = [block for page in documented_pages() for block in python_blocks(page)]
if SEED.is_file():
    SEED_PARAMS = _params(python_blocks(SEED))
else:
    SEED_PARAMS = [
        pytest.param(None, id="seed-absent", marks=pytest.mark.skip(reason=f"no seed at {SEED}"))
    ]


@pytest.fixture
def docs_engine() -> Iterator[FakeEngineServer]:
    """A fake Engine for one example."""
    with FakeEngineServer() as server:
        yield server


def example_env(server: FakeEngineServer) -> dict[str, str]:
    """This process's environment, pointed at ``server``, without settings of the outer pytest."""
    skip = ("BEARER_TOKEN", "ENGINE_API_HOST", "PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    env = {name: value for name, value in os.environ.items() if name not in skip}
    return {**env, "ENGINE_API_HOST": server.url, "BEARER_TOKEN": TOKEN}


def run_script_block(
    block: Block, env: dict[str, str], cwd: Path, preset: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run a block as a script in its own process; its lines keep their markdown numbers."""
    script = cwd / "example.py"
    # Leading newlines make the compiled lines match the markdown's, for readable tracebacks.
    script.write_text("\n" * block.line + block.code, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-c", _RUNNER, str(script), str(block.path), preset],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )


def run_module_block(block: Block, name: str, env: dict[str, str], tmp_path: Path) -> None:
    """Write a pytest-module block to ``tmp_path`` and run pytest on it in a subprocess."""
    (tmp_path / name).write_text(block.code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"pytest on {block.label} failed:\n{report}"
    assert " passed" in result.stdout, f"{block.label} ran no tests:\n{report}"


def check_script_ran(block: Block, result: subprocess.CompletedProcess[str]) -> None:
    report = f"{block.label} printed:\n{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, report
    assert "Exception when calling" not in result.stdout, report


def check_recorded(server: FakeEngineServer, block: Block) -> None:
    """The fake saw what a working example sends (not an example that caught its failure)."""
    requests = server.requests
    sent = [request.describe() for request in requests]
    if block.about_errors:
        assert requests, f"{block.label}: an example about errors never reached the fake"
        return
    failed = [request.describe() for request in requests if request.event is None]
    assert failed == [], f"{block.label}: request(s) recorded nothing: {failed}"
    for operation, model in block.expected_events().items():
        recorded = server.wait_for_events(model, 0, timeout=0)
        assert recorded, f"{block.label} calls {operation}, yet the fake recorded none: {sent}"


@pytest.mark.parametrize("block", _params(DOC_BLOCKS))
def test_documented_example_runs_as_written_against_the_fake_server(
    block: Block, docs_engine: FakeEngineServer, tmp_path: Path
) -> None:
    env = example_env(docs_engine)
    name = block.module_name
    if name is not None:  # its tests use fakes of their own (fixtures) and check them
        run_module_block(block, name, env, tmp_path)
        return
    check_script_ran(block, run_script_block(block, env, tmp_path))
    check_recorded(docs_engine, block)


@pytest.mark.parametrize("block", SEED_PARAMS)
def test_seed_example_prints_the_answer_of_the_fake_server(
    block: Block, docs_engine: FakeEngineServer, tmp_path: Path
) -> None:
    result = run_script_block(block, example_env(docs_engine), tmp_path, preset="os")
    check_script_ran(block, result)
    assert "The response of UIEventsApi->" in result.stdout, result.stdout
    check_recorded(docs_engine, block)
    assert len(docs_engine.session_inits) + len(docs_engine.offer_displays) == 1


def test_runnable_examples_leave_the_host_to_the_environment() -> None:
    naming = [block.label for block in DOC_BLOCKS if _OWN_HOST.search(block.code)]
    assert naming == [], "examples that would call the API they name, not $ENGINE_API_HOST"


# -- the runner's own parts ------------------------------------------------------------------


def test_collector_dedents_indented_blocks_and_ignores_other_languages(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n```bash\necho no\n```\n\n1. Step:\n\n   ```python\n   x = 1\n"
        "   if x:\n       print(x)\n   ```\n\n```py\nskipped = True\n```\n",
        encoding="utf-8",
    )
    (block,) = python_blocks(page)
    assert block.line == 9
    assert block.code == "x = 1\nif x:\n    print(x)\n"


def test_collector_refuses_an_unclosed_python_block(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("text\n```python\nprint('never closed')\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"page\.md:2"):
        python_blocks(page)


def test_traceback_of_a_failing_block_names_the_markdown_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("intro\n\n```python\nok = 1\nraise RuntimeError('boom')\n```\n")
    (block,) = python_blocks(page)

    result = run_script_block(block, dict(os.environ), tmp_path)

    assert result.returncode == 1
    assert f'File "{page}", line 5' in result.stderr
    assert "raise RuntimeError('boom')" in result.stderr  # the markdown's own line is shown


def test_a_block_that_caught_its_failure_does_not_pass(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nimport openapi_client\n"
        "api = openapi_client.UIEventsApi(openapi_client.ApiClient(\n"
        "    openapi_client.Configuration(access_token='t', retries=0, timeout=2)))\n"
        "try:\n    api.create_session_init()\nexcept Exception as e:\n"
        "    print('Exception when calling UIEventsApi->create_session_init: %s' % e)\n```\n"
    )
    (block,) = python_blocks(page)
    with FakeEngineServer() as engine:
        url = engine.url  # free again once stopped: the example's call is refused
    with FakeEngineServer() as other:
        env = {**example_env(other), "ENGINE_API_HOST": url}
        result = run_script_block(block, env, tmp_path)

        assert result.returncode == 0  # exits 0 ...
        with pytest.raises(AssertionError, match="Exception when calling"):
            check_script_ran(block, result)  # ... but does not pass
        with pytest.raises(AssertionError, match="calls create_session_init, yet the fake"):
            check_recorded(other, block)


def test_recorder_calls_count_as_the_operations_they_record() -> None:
    code = (
        "session = recorder.record_session_init()\n"
        "recorder.record_offer_display(body)\n"
        "recorder.flush()\n"
    )
    block = Block(REPO / "docs/page.md", 1, code)
    assert block.expected_events() == {
        "record_session_init": SessionInit,
        "record_offer_display": OfferDisplay,
    }
    # A block that records and never delivers does not pass.
    with FakeEngineServer() as engine, pytest.raises(AssertionError, match="record_session_init"):
        check_recorded(engine, block)


_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def _prose_lines(path: Path) -> list[str]:
    """The lines of a markdown file outside fenced code blocks."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces as hyphens, -N repeats."""
    seen: dict[str, int] = {}
    for line in _prose_lines(path):
        if line.startswith("#"):
            slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            if count:
                seen[f"{slug}-{count}"] = 1
    return set(seen) | {""}


def test_relative_links_and_anchors_of_the_docs_resolve() -> None:
    broken = []
    for page in documented_pages():
        for line in _prose_lines(page):
            for match in _LINK.finditer(line):
                target = match["target"]
                if re.match(r"^[a-z]+:", target):
                    continue  # http:, https:, mailto:
                file_part, _, anchor = target.partition("#")
                linked = (page.parent / file_part).resolve() if file_part else page
                if not linked.exists():
                    broken.append(f"{page.name}: {target} (no such file)")
                elif linked.suffix == ".md" and anchor and anchor not in _anchors(linked):
                    broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []


def test_every_docs_page_has_a_runnable_example() -> None:
    pages = sorted((REPO / "docs").glob("*.md"))
    assert pages, "docs/ has no pages"
    without = [page.name for page in pages if not python_blocks(page)]
    assert without == []
