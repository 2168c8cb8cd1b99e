"""Dependencies: requirements.lock is what pyproject.toml resolves to, and pip-audit knows no vulnerability in it.

Both need PyPI (the only registry reached here and on CI). When it does not answer, the tests say so
and skip, rather than hang or pass as if something had been checked.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.harness import ROOT

LOCK = ROOT / "requirements.lock"
LOCK_COMMAND = ["pip", "compile", "pyproject.toml", "--universal", "--python-version", "3.11", "--generate-hashes"]
REGENERATE = f"uv {' '.join(LOCK_COMMAND)} -o requirements.lock"
# Findings accepted on purpose: vulnerability id -> why. Each must also be listed on the site's
# "Dependencies and why" page (docs/reference/dependencies.md).
DEPENDENCIES_PAGE = ROOT / "docs" / "reference" / "dependencies.md"
ACCEPTED: dict[str, str] = {}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def locked() -> dict[str, tuple[str, int]]:
    """Locked packages: canonical name -> (version, number of hashes)."""
    found: dict[str, tuple[str, int]] = {}
    name = None
    for line in LOCK.read_text().splitlines():
        if pin := _PIN.match(line):
            name = canonicalize_name(pin.group(1))
            found[name] = (pin.group(2), 0)
        elif name and line.strip().startswith("--hash=sha256:"):
            version, hashes = found[name]
            found[name] = (version, hashes + 1)
    return found


def direct_dependencies() -> list[Requirement]:
    return [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    return found or pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")


def test_every_dependency_is_locked_at_a_version_pyproject_allows_with_hashes() -> None:
    lock = locked()
    for requirement in direct_dependencies():
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{requirement.name} is not in requirements.lock: run `{REGENERATE}`"
        assert requirement.specifier.contains(lock[name][0], prereleases=True), (
            f"requirements.lock has {name}=={lock[name][0]}, pyproject.toml asks {requirement}: run `{REGENERATE}`"
        )
    unhashed = [name for name, (_, hashes) in lock.items() if hashes == 0]
    assert unhashed == [], f"locked without hashes: {unhashed}"


def test_the_lock_file_is_what_uv_resolves_from_pyproject(tmp_path: Path) -> None:
    # uv keeps the versions already in the output file when they still fit, so this only differs
    # when pyproject.toml changed and the lock was not regenerated.
    fresh = tmp_path / "requirements.lock"
    shutil.copy(LOCK, fresh)
    proc = subprocess.run(
        [_tool("uv"), *LOCK_COMMAND, "--quiet", "-o", str(fresh)], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    unreachable = r"(?i)failed to fetch|error sending request|dns|timed out|connect"
    if proc.returncode != 0 and re.search(unreachable, proc.stderr):
        pytest.skip(f"PyPI did not answer, the lock could not be re-resolved: {proc.stderr.strip()[:300]}")
    assert proc.returncode == 0, proc.stderr

    def body(path: Path) -> list[str]:
        return [line for line in path.read_text().splitlines() if not line.startswith(("# This file", "#    uv "))]

    assert body(fresh) == body(LOCK), f"requirements.lock is stale: run `{REGENERATE}`"


def test_pip_audit_knows_no_vulnerability_in_the_locked_dependencies(tmp_path: Path) -> None:
    report = tmp_path / "audit.json"
    command = [
        _tool("pip-audit"),
        "-r",
        str(LOCK),
        "--disable-pip",
        "--require-hashes",
        "--progress-spinner",
        "off",
        "--timeout",
        "20",
        "--format",
        "json",
        "--output",
        str(report),
    ]
    try:
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired:
        pytest.skip("pip-audit did not finish within 240 s: its vulnerability service (PyPI) did not answer")
    if not report.exists():
        pytest.skip(f"pip-audit could not run against its vulnerability service: {proc.stderr.strip()[-400:]}")
    dependencies = json.loads(report.read_text())["dependencies"]
    findings = {
        (d["name"], d["version"], v["id"]): v.get("fix_versions", [])
        for d in dependencies
        for v in d.get("vulns", [])
        if v["id"] not in ACCEPTED
    }
    assert findings == {}, f"known vulnerabilities (fix, or accept in ACCEPTED and on its page): {findings}"
    page = DEPENDENCIES_PAGE.read_text()
    assert [vuln for vuln in ACCEPTED if vuln not in page] == [], f"list every accepted finding in {DEPENDENCIES_PAGE}"
    skipped = [d for d in dependencies if "skip_reason" in d]
    if skipped:
        pytest.skip(
            f"pip-audit could not audit {len(skipped)} of {len(dependencies)} locked packages, so no "
            f"vulnerability was found but none could be ruled out either: {skipped[0]['skip_reason']} "
            "(PyPI's per-version JSON API, which pip-audit asks, did not answer)"
        )
