"""``salesflow api`` refuses to start with no authentication configured, unless ``--insecure-dev``."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from salesflow.cli.main import app

AUTH_VARIABLES = (
    "SALESFLOW_API_AUTH",
    "SALESFLOW_API_TOKENS",
    "SALESFLOW_API_ADMIN_TOKENS",
    "SALESFLOW_API_JWT_ISSUER",
)


@pytest.fixture
def no_auth(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """No auth in the environment; uvicorn.run records what it was asked to serve instead of serving."""
    for name in AUTH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    served: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: served.append(options))
    return served


def test_with_no_auth_the_api_refuses_to_start_and_says_what_to_set(no_auth: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["api"])
    assert result.exit_code == 2
    assert "no authentication configured" in result.output and "--insecure-dev" in result.output
    assert no_auth == []


def test_insecure_dev_starts_it_anyway(no_auth: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["api", "--insecure-dev", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert [options["port"] for options in no_auth] == [0]


def test_static_tokens_are_enough(no_auth: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESFLOW_API_TOKENS", '{"acme": "' + "a" * 32 + '"}')
    result = CliRunner().invoke(app, ["api", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert len(no_auth) == 1
