"""Every documented example runs: the ```python blocks of README.md and docs/*.md, and the seed.

Conventions (follow them in any page whose examples should be checked):

* Only blocks fenced exactly ```python run. Use another tag (```pycon, ```text, ```bash) for
  snippets that are not meant to run on their own.
* Each block runs against a fresh ``FakeEngineServer`` (it accepts any non-empty bearer
  token), with ``$BEARER_TOKEN`` set to ``TOKEN`` and ``$ENGINE_API_HOST`` set to the fake's URL
  (the SDK's default host). The host aside rule: the literal text ``https://api.engine.tech`` in a block
  is replaced by the fake's URL before it runs, so examples can name the real API.
* A block whose first line is ``# file: test_<name>.py`` is a pytest module: it is written to a
  temporary directory and run with ``python -m pytest -q`` in a subprocess (same environment),
  which must pass. The SDK's ``fake_engine`` fixture is available there (pytest11 entry point).
* Any other block is ``exec``-ed in a fresh namespace with ``__name__ == "__main__"`` and its
  stdout captured. It must not raise, and its output must not contain "Exception when calling"
  (examples print failures in the generated-client style instead of raising).
* Afterwards the fake must have turned every request it received into an event (no error
  answers), and a block that printed "The response of UIEventsApi->create_X" must have recorded
  at least one X. Blocks about errors (an ``except`` naming a status exception, such as
  ``except UnauthorizedException``) are exempt from the first check.
* Tracebacks point at the markdown file and line of the failing statement; test ids are
  ``file:line`` of the opening fence.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openapi_client.testing import FakeEngineServer

REPO = Path(__file__).resolve().parents[1]
SEED = Path(__file__).resolve().parents[2] / "shared/seed/UIEventsApi.md"
PUBLIC_HOST = "https://api.engine.tech"
TOKEN = "pk_docs_example_token"
SUBPROCESS_TIMEOUT = 120

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*$")
_MODULE_HEADER = re.compile(r"^# file: (?P<name>test_\w+\.py)[ \t]*$")
_ABOUT_ERRORS = re.compile(
    r"\bexcept\b\s*\(?[\w.,\s]*\b(BadRequest|Unauthorized|Forbidden|NotFound|Conflict|"
    r"UnprocessableEntity|Service)Exception\b"
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
def docs_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEngineServer]:
    """A fake Engine for one example, named by $ENGINE_API_HOST, and a token in $BEARER_TOKEN."""
    with FakeEngineServer() as server:
        monkeypatch.setenv("BEARER_TOKEN", TOKEN)
        monkeypatch.setenv("ENGINE_API_HOST", server.url)
        for name in ("PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
            monkeypatch.delenv(name, raising=False)
        yield server


def exec_block(block: Block, host: str, preset: dict[str, Any] | None = None) -> str:
    """Run a block as a script (host aside applied) and return what it printed."""
    code = block.code.replace(PUBLIC_HOST, host)
    # Leading newlines make the compiled lines match the markdown's, for readable tracebacks.
    compiled = compile("\n" * block.line + code, str(block.path), "exec")
    namespace: dict[str, Any] = {"__name__": "__main__", **(preset or {})}
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compiled, namespace)
    return output.getvalue()


def run_module_block(block: Block, name: str, host: str, tmp_path: Path) -> None:
    """Write a pytest-module block to ``tmp_path`` and run pytest on it in a subprocess."""
    module = tmp_path / name
    module.write_text(block.code.replace(PUBLIC_HOST, host), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name],
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"pytest on {block.label} failed:\n{report}"
    assert " passed" in result.stdout, f"{block.label} ran no tests:\n{report}"


def check_recorded(server: FakeEngineServer, block: Block, output: str) -> None:
    """What the fake received is what a working example would send."""
    session_inits, offer_displays = server.session_inits, server.offer_displays
    if not block.about_errors:
        requests = server.requests
        failed = len(requests) - len(session_inits) - len(offer_displays)
        sent = [f"{r.method} {r.path}" for r in requests]
        assert failed == 0, f"{block.label}: {failed} request(s) did not record an event: {sent}"
    for operation, recorded in (
        ("create_session_init", session_inits),
        ("create_offer_display", offer_displays),
    ):
        if f"The response of UIEventsApi->{operation}" in output:
            assert recorded, f"{block.label} printed a {operation} answer the fake never made"


@pytest.mark.parametrize("block", _params(DOC_BLOCKS))
def test_documented_example_runs_against_fake_server(
    block: Block, docs_engine: FakeEngineServer, tmp_path: Path
) -> None:
    name = block.module_name
    output = ""
    if name is not None:
        run_module_block(block, name, docs_engine.url, tmp_path)
    else:
        output = exec_block(block, docs_engine.url)
        assert "Exception when calling" not in output, f"{block.label} printed:\n{output}"
    check_recorded(docs_engine, block, output)


@pytest.mark.parametrize("block", SEED_PARAMS)
def test_seed_example_prints_the_answer_of_the_fake_server(
    block: Block, docs_engine: FakeEngineServer
) -> None:
    # The seed uses `os` without importing it; the namespace supplies it.
    output = exec_block(block, docs_engine.url, {"os": os})
    assert "Exception when calling" not in output, output
    assert "The response of UIEventsApi->" in output, output
    check_recorded(docs_engine, block, output)
    assert len(docs_engine.session_inits) + len(docs_engine.offer_displays) == 1


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
    with pytest.raises(RuntimeError) as caught:
        exec_block(block, "http://127.0.0.1:9")
    assert caught.traceback[-1].lineno + 1 == 5  # pytest's lineno is 0-based
    assert Path(str(caught.traceback[-1].path)) == page


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
