"""User code type-checks as the docs say, with and without pydantic's mypy plugin.

``typed_user_code.py`` is a small application written against the SDK: snake_case model
constructors taking ``str`` or ``uuid.UUID``, the pixel helpers, the fake server's helpers.
``mypy --strict`` must accept it both ways, and must refuse what it marks as refused.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import openapi_client

SAMPLE = Path(__file__).with_name("typed_user_code.py")


def mypy_config(tmp_path: Path, plugin: bool) -> Path:
    """A user's mypy configuration; it finds the SDK as installed (an editable install too)."""
    lines = [
        "[mypy]",
        "strict = True",
        f"python_version = {sys.version_info[0]}.{sys.version_info[1]}",
    ]
    if plugin:
        lines.append("plugins = pydantic.mypy")
    package_root = Path(openapi_client.__file__).resolve().parents[1]
    if "site-packages" not in package_root.parts:  # an editable install: mypy needs the path
        lines.append(f"mypy_path = {package_root}")
    config = tmp_path / "mypy.ini"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


@pytest.mark.parametrize("plugin", [True, False], ids=["pydantic-plugin", "no-plugin"])
def test_user_code_passes_mypy_strict(tmp_path: Path, plugin: bool) -> None:
    config = mypy_config(tmp_path, plugin)

    result = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--config-file", str(config),
            "--cache-dir", str(tmp_path / "mypy-cache"), "--no-error-summary", str(SAMPLE),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
