"""The plugin's tests use SalesFlow's test kit: a throwaway database and run_handlers, no Kafka."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from salesflow.testing.pytest_plugin import (  # noqa: F401  (fixtures)
    default_database_server,
    handler_database_url,
    handler_db,
    handler_resources,
    handler_settings,
)

# Tests run from a checkout: the package is importable without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
REPOSITORY = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def handler_database_server() -> Iterator[str]:
    """Inside the SalesFlow repository, the Postgres its own tests use (tests/infra.py: the endpoints
    from the environment, or the local stack, started if need be, as on CI); elsewhere the kit's."""
    if not (REPOSITORY / "tests" / "infra.py").is_file():
        yield default_database_server()
        return
    sys.path.insert(0, str(REPOSITORY))
    from tests.infra import stack_endpoints

    with stack_endpoints() as endpoints:
        yield endpoints.database_url
