"""API settings, tokens and cursors, without I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from pydantic import ValidationError

from salesflow.api.api_settings import ApiSettings
from salesflow.api.auth import Principal, TokenTable
from salesflow.api.http_errors import ApiError
from salesflow.api.queries import Cursor
from salesflow.errors import ConfigurationError

ACME = "acme-token-0123456789"
ACME_NEXT = "acme-token-rotated-0123"
GLOBEX = "globex-token-0123456789"
ADMIN = "admin-token-0123456789"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("TOKENS", "ADMIN_TOKENS", "TOKENS_FILE", "ADMIN_TOKENS_FILE"):
        monkeypatch.delenv(f"SALESFLOW_API_{name}", raising=False)
    return monkeypatch


def test_tokens_from_the_environment_one_or_several_per_tenant(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SALESFLOW_API_TOKENS", json.dumps({"acme": [ACME, ACME_NEXT], "globex": GLOBEX}))
    clean_env.setenv("SALESFLOW_API_ADMIN_TOKENS", json.dumps([ADMIN]))
    table = TokenTable(ApiSettings())
    assert table.resolve(ACME) == table.resolve(ACME_NEXT) == Principal("acme")
    assert table.resolve(GLOBEX) == Principal("globex")
    assert table.resolve(ADMIN) == Principal(None)
    assert table.resolve("nope-nope-nope-nope") is None
    assert table.resolve(ACME + "x") is None


def test_tokens_from_secret_files(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    tokens, admin = tmp_path / "tokens.json", tmp_path / "admin"
    tokens.write_text(json.dumps({"acme": ACME}) + "\n")
    admin.write_text(ADMIN + "\n")  # one bare token, as `echo` writes it
    clean_env.setenv("SALESFLOW_API_TOKENS_FILE", str(tokens))
    clean_env.setenv("SALESFLOW_API_ADMIN_TOKENS_FILE", str(admin))
    settings = ApiSettings()
    assert settings.tokens["acme"][0].get_secret_value() == ACME
    assert [t.get_secret_value() for t in settings.admin_tokens] == [ADMIN]
    assert ACME not in repr(settings) and ADMIN not in repr(settings)


def test_a_token_given_twice_or_as_file_and_variable_is_refused(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="both 'acme' and 'globex'"):
        ApiSettings(tokens={"acme": ACME, "globex": ACME})
    with pytest.raises(ValidationError, match="shorter than 16"):
        ApiSettings(tokens={"acme": "short"})
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"acme": ACME}))
    clean_env.setenv("SALESFLOW_API_TOKENS_FILE", str(path))
    clean_env.setenv("SALESFLOW_API_TOKENS", json.dumps({"acme": ACME}))
    with pytest.raises(ConfigurationError, match="keep one"):
        ApiSettings()


def test_a_tenant_never_widens_its_scope() -> None:
    tenant, admin = Principal("acme"), Principal(None)
    assert tenant.scope() == tenant.scope("acme")
    assert tenant.scope().tenant_id == "acme" and not tenant.scope().empty
    assert tenant.scope("globex").empty  # another tenant's data: nothing, as if absent
    assert admin.scope().tenant_id is None and admin.scope("globex").tenant_id == "globex"


def test_cursors_round_trip_and_garbage_is_a_400() -> None:
    cursor = Cursor(datetime(2026, 11, 24, 12, tzinfo=UTC), uuid4())
    assert Cursor.decode(cursor.encode()) == cursor
    for bad in ("", "x", "bm90IGpzb24", "WyJ4IiwgInkiXQ", "WzEsMl0", "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzIzOjU5IiwgIngiXQ"):
        with pytest.raises(ApiError) as raised:
            Cursor.decode(bad)
        assert raised.value.status == 400
