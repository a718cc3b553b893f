"""A property-based run of the API's OpenAPI schema (schemathesis): every operation, with generated parameters
and bodies, against the real app over a real library, answers without a server error (and errors are JSON)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from photoscout.app import Photoscout
from photoscout.database.embedded import EmbeddedServer
from photoscout.web import create_app
from tests.conftest import clone_library


@pytest.fixture(scope="module")
def api_schema(library_template: tuple[Path, str], pg_server: EmbeddedServer,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = clone_library(library_template, pg_server, Path(tmp_path_factory.mktemp("schema")))
    with Photoscout.open(home) as core:
        app = create_app(core, warm=False, host="testserver")  # the name the ASGI client sends
        yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


def _check(operation: Any, tried: dict[str, int]) -> Any:
    label = f"{operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy())
    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        response = case.call_and_validate(headers={"X-Photoscout-Request": "1"}, checks=[not_a_server_error])
        tried[label] = tried.get(label, 0) + 1
        if response.status_code >= 400:
            assert "error" in response.json(), (label, response.text)

    return run


def test_no_server_error(api_schema: Any) -> None:
    """Each operation in turn (a fixture-built schema: the app needs the library first)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 30
    tried: dict[str, int] = {}
    for operation in operations:
        _check(operation, tried)()
    assert len(tried) == len(operations), tried
    print(f"{sum(tried.values())} calls over {len(tried)} operations")
