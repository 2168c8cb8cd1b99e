"""A service that cannot be reached ends a command with one clear line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "salesflow.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize(
    "args", [["topics", "create"], ["replay", "offsets", "--group", "g", "--all-topics", "--to-earliest"]]
)
def test_unreachable_kafka_is_one_line_naming_the_setting(args: list[str]) -> None:
    result = run(args, SALESFLOW_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    assert result.returncode == 1
    assert "error: cannot reach Kafka at 127.0.0.1:1 (SALESFLOW_KAFKA_BOOTSTRAP_SERVERS)" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_postgres_is_one_line_naming_the_setting() -> None:
    result = run(["summary"], SALESFLOW_DATABASE_URL="postgresql+asyncpg://u:secret-pw@127.0.0.1:1/db")
    assert result.returncode == 1
    assert "error: cannot reach Postgres (SALESFLOW_DATABASE_URL)" in result.stderr
    assert "Traceback" not in result.stderr and "secret-pw" not in result.stderr + result.stdout
