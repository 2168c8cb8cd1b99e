"""Security settings: secrets from variables or *_FILE files, typed SecretStr, masked everywhere shown."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from salesflow.cli.main import app
from salesflow.errors import SecretFileError
from salesflow.secrets import MASK, reveal, secret_fields
from salesflow.settings import Settings
from tests.harness import settings_env

SECRET = "Sup3r-Distinctive-Secret-7788"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean SALESFLOW_* environment (the shell running the tests may point at a stack)."""
    import os

    for name in list(os.environ):
        if name.startswith("SALESFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(Path(__file__).parent)  # no stray .env file
    return monkeypatch


def test_every_password_and_token_setting_is_a_secret() -> None:
    assert {"kafka_sasl_password", "kafka_ssl_key_password", "database_password"} <= set(secret_fields(Settings))


def test_a_secret_comes_from_its_variable(env: pytest.MonkeyPatch) -> None:
    env.setenv("SALESFLOW_KAFKA_SASL_PASSWORD", SECRET)
    password = Settings().kafka_sasl_password
    assert password is not None and password.get_secret_value() == SECRET


def test_a_secret_comes_from_a_file_without_its_trailing_newline(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(SECRET + "\n")
    env.setenv("SALESFLOW_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "pw"))
    settings = Settings()
    assert settings.kafka_sasl_password is not None and settings.kafka_sasl_password.get_secret_value() == SECRET
    assert SECRET not in repr(settings) and SECRET not in str(settings)


def test_a_secret_given_both_ways_is_refused(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(SECRET)
    env.setenv("SALESFLOW_DATABASE_PASSWORD", "other")
    env.setenv("SALESFLOW_DATABASE_PASSWORD_FILE", str(tmp_path / "pw"))
    with pytest.raises(SecretFileError, match="both SALESFLOW_DATABASE_PASSWORD and SALESFLOW_DATABASE_PASSWORD_FILE"):
        Settings()


@pytest.mark.parametrize("content", [None, ""])
def test_a_missing_or_empty_secret_file_names_the_variable_and_path(
    env: pytest.MonkeyPatch, tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "pw"
    if content is not None:
        path.write_text(content)
    env.setenv("SALESFLOW_KAFKA_SASL_PASSWORD_FILE", str(path))
    with pytest.raises(SecretFileError, match=f"SALESFLOW_KAFKA_SASL_PASSWORD_FILE: .*{path}"):
        Settings()


def test_the_database_password_and_tls_settings_are_merged_into_the_url_and_masked(env: pytest.MonkeyPatch) -> None:
    env.setenv("SALESFLOW_DATABASE_URL", "postgresql+asyncpg://app@db.example.com:5432/salesflow")
    env.setenv("SALESFLOW_DATABASE_PASSWORD", "p@ss:/" + SECRET)
    env.setenv("SALESFLOW_DATABASE_SSLMODE", "verify-full")
    env.setenv("SALESFLOW_DATABASE_SSL_ROOTCERT", "/etc/ssl/rds-ca.pem")
    settings = Settings()
    assert settings.database_url.startswith("postgresql+asyncpg://app:p%40ss%3A%2F" + SECRET + "@db.example.com")
    assert "sslmode=verify-full" in settings.database_url and "sslrootcert=" in settings.database_url
    assert SECRET not in repr(settings)
    # Handing the settings to a child process (tests/harness.py) gives the same effective URL again.
    again = Settings(**{name: reveal(value) for name, value in settings.model_dump().items()})
    assert again.database_url == settings.database_url


def test_an_empty_file_setting_means_not_set(env: pytest.MonkeyPatch) -> None:
    env.setenv("SALESFLOW_KAFKA_SSL_CAFILE", "")
    assert Settings().kafka_ssl_cafile is None


def test_the_test_harness_hands_real_secret_values_to_child_processes(env: pytest.MonkeyPatch) -> None:
    env.setenv("SALESFLOW_KAFKA_SASL_PASSWORD_FILE", "/somewhere/else")
    child = settings_env(Settings(kafka_sasl_password=SECRET))
    assert child["SALESFLOW_KAFKA_SASL_PASSWORD"] == SECRET
    assert "SALESFLOW_KAFKA_SASL_PASSWORD_FILE" not in child


def test_config_show_prints_every_setting_with_secrets_masked(env: pytest.MonkeyPatch) -> None:
    env.setenv("SALESFLOW_KAFKA_SASL_PASSWORD", SECRET)
    env.setenv("SALESFLOW_DATABASE_URL", f"postgresql+asyncpg://salesflow:{SECRET}@127.0.0.1:5432/salesflow")
    env.setattr(sys, "argv", ["salesflow", "config", "show"])
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert "SALESFLOW_KAFKA_SASL_PASSWORD" in result.output and MASK in result.output
    assert "postgresql+asyncpg://salesflow:***@127.0.0.1:5432/salesflow" in result.output
    for name in Settings.model_fields:
        assert f"SALESFLOW_{name.upper()}" in result.output


def test_a_bad_setting_ends_a_command_with_one_line_and_no_value(env: pytest.MonkeyPatch) -> None:
    env.setenv("SALESFLOW_KAFKA_SECURITY_PROTOCOL", "SASL_" + SECRET)
    env.setattr(sys, "argv", ["salesflow", "config", "show"])
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 2
    assert "SALESFLOW_KAFKA_SECURITY_PROTOCOL: Input should be" in result.output
    assert SECRET not in result.output


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    if hasattr(command, "commands"):  # a group (Typer vendors its own click)
        for name, sub in command.commands.items():
            paths += _command_paths(sub, (*path, name))
    return paths


def test_no_help_text_shows_a_secret(env: pytest.MonkeyPatch) -> None:
    env.setenv("SALESFLOW_KAFKA_SASL_PASSWORD", SECRET)
    env.setenv("SALESFLOW_DATABASE_PASSWORD", SECRET)
    paths = _command_paths(typer.main.get_command(app))
    assert ("config", "show") in paths and ("worker",) in paths
    for path in paths:
        env.setattr(sys, "argv", ["salesflow", *path, "--help"])
        result = CliRunner().invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert SECRET not in result.output, path
