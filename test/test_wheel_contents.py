"""The built wheel holds the package, its data and its license, and nothing else.

Building needs a setuptools that knows SPDX license expressions (>= 77). The test builds
without network (``--no-build-isolation``), so it runs where that setuptools is installed
and is skipped elsewhere; ``pip wheel . --no-deps -w DIR`` checks the same by hand.
"""

from __future__ import annotations

import email.parser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import openapi_client

REPO = Path(__file__).resolve().parents[1]
RUNTIME_DEPENDENCIES = {"urllib3", "pydantic", "python-dateutil", "typing-extensions"}


def setuptools_major() -> int:
    try:
        import setuptools
    except ImportError:
        return 0
    return int(setuptools.__version__.split(".")[0])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    if setuptools_major() < 77:
        pytest.skip("building offline needs setuptools >= 77 in this environment")
    # Built from a copy of what the wheel is made of, so the checkout gets no build/ folder.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "openapi_client", source / "openapi_client",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (built,) = out.glob("engine_ui_events-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_holds_only_the_package_and_its_metadata(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    dist_info = f"engine_ui_events-{openapi_client.__version__}.dist-info/"

    assert all(name.startswith(("openapi_client/", dist_info)) for name in names), names
    for needed in ("openapi_client/py.typed", "openapi_client/openapi.json",
                   "openapi_client/testing/pytest_plugin.py", f"{dist_info}licenses/LICENSE"):  # fmt: skip
        assert needed in names
    assert not any("test/" in name or "benchmarks/" in name for name in names)


def test_the_wheel_metadata_declares_license_pythons_and_exact_dependencies(
    wheel: zipfile.ZipFile,
) -> None:
    dist_info = f"engine_ui_events-{openapi_client.__version__}.dist-info/"
    metadata = email.parser.Parser().parsestr(wheel.read(dist_info + "METADATA").decode())

    assert metadata["Name"] == "engine-ui-events"
    assert metadata["License-Expression"] == "MIT"
    classifiers = set(metadata.get_all("Classifier") or [])
    for minor in range(10, 14):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert "Typing :: Typed" in classifiers
    runtime = {
        requirement.split(";")[0].split("<")[0].split(">")[0].split("=")[0].strip()
        for requirement in metadata.get_all("Requires-Dist") or []
        if "extra ==" not in requirement
    }
    assert runtime == RUNTIME_DEPENDENCIES
    entry_points = wheel.read(dist_info + "entry_points.txt").decode()
    assert "engine-ui-events = openapi_client.cli:main" in entry_points
