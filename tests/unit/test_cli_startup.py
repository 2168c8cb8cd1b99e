"""``salesflow --help`` starts without the heavy libraries: commands import them when they run."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("faust", "fastapi", "sqlalchemy", "aiokafka", "confluent_kafka", "prometheus_client", "alembic", "uvicorn")

# Runs the CLI's entry point on ARGS in a fresh interpreter, then prints which HEAVY modules it loaded.
PROBE = """
import sys
from salesflow.cli.main import main
sys.argv = ["salesflow", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("LOADED", sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY)))
"""


@pytest.mark.parametrize(
    "args", [["--help"], ["replay", "offsets", "--help"], ["dlq", "list", "--help"], ["api", "--help"]]
)
def test_help_imports_no_client_library(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{PROBE}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    assert result.stdout.splitlines()[-1] == "LOADED []"
