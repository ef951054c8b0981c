"""The public names of the package and its subpackages, lazy import, and the typing marker."""

from __future__ import annotations

import importlib.resources
import json
import os
import pydoc
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import openapi_client
from openapi_client import exceptions as exceptions_module
from openapi_client.testing import FakeEngineServer

TOP_LEVEL = [
    "__version__",
    "UIEventsApi",
    "ApiClient",
    "ApiResponse",
    "Configuration",
    "RetryPolicy",
    "ApiError",
    "OfferDisplay",
    "OfferDisplayCreateData",
    "SessionInit",
    "SessionInitCreateData",
    "OpenApiException",
    "ApiException",
    "ApiTypeError",
    "ApiValueError",
    "ApiAttributeError",
    "ApiConnectionError",
    "ApiTimeoutError",
    "ApiResponseValidationError",
    "BadRequestException",
    "UnauthorizedException",
    "ForbiddenException",
    "NotFoundException",
    "ConflictException",
    "UnprocessableEntityException",
    "ServiceException",
]


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_package_exports_public_name(name: str) -> None:
    assert name in openapi_client.__all__
    assert getattr(openapi_client, name) is not None
    assert name in dir(openapi_client)


def test_version_is_a_release_string() -> None:
    parts = openapi_client.__version__.split(".")
    assert len(parts) >= 3
    assert all(p.isdigit() for p in parts[:2])


def test_exported_names_are_the_defining_objects() -> None:
    from openapi_client.api.ui_events_api import UIEventsApi
    from openapi_client.api_client import ApiClient, ApiResponse
    from openapi_client.configuration import Configuration
    from openapi_client.models.offer_display import OfferDisplay

    assert openapi_client.UIEventsApi is UIEventsApi
    assert openapi_client.ApiClient is ApiClient
    assert openapi_client.ApiResponse is ApiResponse
    assert openapi_client.Configuration is Configuration
    assert openapi_client.OfferDisplay is OfferDisplay
    for name in exceptions_module.__all__:
        assert getattr(openapi_client, name) is getattr(exceptions_module, name)


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(openapi_client, "no_such_name")  # noqa: B009


def test_models_and_api_subpackages_export_their_names() -> None:
    import openapi_client.api as api
    import openapi_client.models as models

    assert set(models.__all__) == {
        "ApiError",
        "OfferDisplay",
        "OfferDisplayCreateData",
        "SessionInit",
        "SessionInitCreateData",
    }
    for name in models.__all__:
        assert getattr(models, name).__name__ == name
    assert api.__all__ == ["UIEventsApi"]
    assert api.UIEventsApi is openapi_client.UIEventsApi


def test_exception_hierarchy() -> None:
    e = exceptions_module
    assert issubclass(e.ApiException, e.OpenApiException)
    assert issubclass(e.ApiTypeError, TypeError)
    assert issubclass(e.ApiValueError, ValueError)
    assert issubclass(e.ApiTimeoutError, e.ApiConnectionError)
    assert issubclass(e.ApiConnectionError, e.ApiException)
    assert issubclass(e.ApiResponseValidationError, e.ApiException)
    for name in ("BadRequestException", "NotFoundException", "ServiceException"):
        assert issubclass(getattr(e, name), e.ApiException)


def test_import_is_lazy_in_a_fresh_interpreter() -> None:
    script = (
        "import json, sys, openapi_client; "
        "print(json.dumps([m for m in ('pydantic.main', 'pydantic', 'urllib3') "
        "if m in sys.modules]))"
    )

    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    assert json.loads(result.stdout) == []


def test_first_use_imports_what_is_needed_in_a_fresh_interpreter() -> None:
    script = (
        "import json, sys, openapi_client; openapi_client.UIEventsApi; "
        "print(json.dumps(['pydantic.main' in sys.modules, 'urllib3' in sys.modules]))"
    )

    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    assert json.loads(result.stdout) == [True, True]


def test_package_ships_py_typed_marker() -> None:
    marker = importlib.resources.files("openapi_client").joinpath("py.typed")

    assert marker.is_file()


def test_help_opens_with_usage_and_its_example_runs(tmp_path: Path) -> None:
    doc = openapi_client.__doc__ or ""
    rendered = pydoc.render_doc(openapi_client, renderer=pydoc.plaintext)
    assert "distribution ``engine-ui-events``" in doc.splitlines()[0]
    assert rendered.index("create_session_init") < rendered.index("imported on first use")
    lines = doc.split("::\n\n", 1)[1].splitlines()
    example = []
    for line in lines:
        if line and not line.startswith("    "):
            break
        example.append(line)
    script = tmp_path / "usage.py"
    script.write_text(textwrap.dedent("\n".join(example)), encoding="utf-8")

    with FakeEngineServer() as engine:
        env = {**os.environ, "ENGINE_API_HOST": engine.url, "BEARER_TOKEN": "pk_test_help"}
        subprocess.run([sys.executable, str(script)], env=env, check=True, timeout=60)
        engine.assert_recorded(offer_displays=1, session_inits=1)
