"""Running Debian's ``promtool`` from the tests: a missing binary fails (CI installs it), never skips."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        raise AssertionError(
            "promtool is not installed: run scripts/install-system-deps.sh (Debian package prometheus)"
        )
    return subprocess.run([binary, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)
