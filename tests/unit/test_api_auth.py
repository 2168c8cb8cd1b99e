"""API settings, tokens and cursors, without I/O."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from pydantic import ValidationError

from salesflow.api.api_settings import ApiSettings
from salesflow.api.auth import Authenticator, Principal, TokenTable
from salesflow.api.http_errors import ApiError
from salesflow.api.jwt_settings import JwtSettings
from salesflow.api.queries import Cursor
from salesflow.errors import ConfigurationError

ACME = "acme-token-0123456789"
ACME_NEXT = "acme-token-rotated-0123"
GLOBEX = "globex-token-0123456789"
ADMIN = "admin-token-0123456789"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("TOKENS", "ADMIN_TOKENS", "TOKENS_FILE", "ADMIN_TOKENS_FILE", "AUTH", "JWT_ISSUER", "JWT_AUDIENCE"):
        monkeypatch.delenv(f"SALESFLOW_API_{name}", raising=False)
    return monkeypatch


def test_tokens_from_the_environment_one_or_several_per_tenant(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SALESFLOW_API_TOKENS", json.dumps({"acme": [ACME, ACME_NEXT], "globex": GLOBEX}))
    clean_env.setenv("SALESFLOW_API_ADMIN_TOKENS", json.dumps([ADMIN]))
    table = TokenTable(ApiSettings())
    acme, acme_next, globex, admin = (table.resolve(t) for t in (ACME, ACME_NEXT, GLOBEX, ADMIN))
    assert acme and acme_next and globex and admin
    assert acme.tenants == acme_next.tenants == frozenset({"acme"}) and globex.tenants == frozenset({"globex"})
    assert acme.subject != acme_next.subject  # the audit trail tells a rotated token from its successor
    assert acme.allows("events:replay") and not acme.allows("admin")
    assert admin.tenants is None and admin.allows("admin")
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
    scopes = frozenset({"events:read"})
    tenant, admin = Principal("a", "static", frozenset({"acme"}), scopes), Principal("b", "static", None, scopes)
    assert tenant.scope() == tenant.scope("acme")
    assert tenant.scope().tenants == frozenset({"acme"}) and not tenant.scope().empty
    assert tenant.scope("globex").empty  # another tenant's data: nothing, as if absent
    assert admin.scope().tenants is None and admin.scope("globex").tenants == frozenset({"globex"})
    several = Principal("c", "https://idp", frozenset({"acme", "globex"}), scopes)
    assert several.scope().tenants == frozenset({"acme", "globex"}) and several.scope("globex").tenants == frozenset(
        {"globex"}
    )
    assert several.scope("initech").empty
    assert Principal("d", "https://idp", frozenset(), scopes).scope().empty


def test_the_auth_modes_are_explicit(clean_env: pytest.MonkeyPatch) -> None:
    assert ApiSettings().auth == ["static"]
    clean_env.setenv("SALESFLOW_API_AUTH", "jwt, static")
    assert ApiSettings().auth_modes() == frozenset({"jwt", "static"})
    clean_env.setenv("SALESFLOW_API_AUTH", "none")
    with pytest.raises(ValidationError):
        ApiSettings()
    clean_env.setenv("SALESFLOW_API_AUTH", "jwt")
    assert not Authenticator(ApiSettings()).configured  # jwt without an issuer: no way in
    with pytest.raises(ValidationError):
        JwtSettings(algorithms="HS256")  # a JWKS holds public keys: HMAC is never allowed
    assert JwtSettings(audience="a,b", algorithms="ES256").audience == ["a", "b"]


def test_cursors_round_trip_and_garbage_is_a_400() -> None:
    cursor = Cursor(datetime(2026, 11, 24, 12, tzinfo=UTC), uuid4())
    assert Cursor.decode(cursor.encode()) == cursor
    for bad in ("", "x", "bm90IGpzb24", "WyJ4IiwgInkiXQ", "WzEsMl0", "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzIzOjU5IiwgIngiXQ"):
        with pytest.raises(ApiError) as raised:
            Cursor.decode(bad)
        assert raised.value.status == 400


def test_the_api_refuses_to_start_with_no_way_in(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESFLOW_API_")}
    for auth in ("static", "jwt"):  # no tokens; JWT without an issuer
        started = subprocess.run(
            [sys.executable, "-m", "salesflow.cli.main", "api"],
            env={**env, "SALESFLOW_API_AUTH": auth},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert started.returncode == 2 and "no authentication configured" in started.stderr, started.stderr
