"""The files generated from ``deploy/slo/slos.yaml`` are committed and match the spec;
``salesflow slo check`` catches drift and ``salesflow slo generate`` repairs it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from salesflow.cli.slo import slo_app
from salesflow.slo import SPEC_PATH, drift, generated_files, load_spec
from salesflow.slo.render import DASHBOARD, PROMETHEUS_RULE, RECORDING_RULES, SERVICE_ALERTS, SLO_ALERTS

ROOT = Path(__file__).resolve().parents[2]
GENERATED = (RECORDING_RULES, SLO_ALERTS, SERVICE_ALERTS, PROMETHEUS_RULE, DASHBOARD)


def test_generated_files_are_up_to_date() -> None:
    files = generated_files(load_spec(ROOT / SPEC_PATH))
    assert sorted(files) == sorted(GENERATED)
    assert drift(ROOT, files) == [], "run `salesflow slo generate` and commit the result"


def test_generated_files_are_committed() -> None:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.fail("this test needs the git work tree to tell committed from uncommitted files")
    tracked = subprocess.run(["git", "ls-files", *GENERATED], cwd=ROOT, capture_output=True, text=True, check=True)
    assert sorted(tracked.stdout.split()) == sorted(GENERATED)
    changed = subprocess.run(
        ["git", "diff", "--name-only", "HEAD", "--", *GENERATED], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert changed.stdout.split() == [], "generated files differ from the last commit: commit them"


def test_check_fails_on_drift_and_generate_repairs_it(tmp_path: Path) -> None:
    (tmp_path / SPEC_PATH).parent.mkdir(parents=True)
    shutil.copy(ROOT / SPEC_PATH, tmp_path / SPEC_PATH)
    runner = CliRunner()

    missing = runner.invoke(slo_app, ["check", "--root", str(tmp_path)])
    assert missing.exit_code == 1
    assert RECORDING_RULES in missing.output

    wrote = runner.invoke(slo_app, ["generate", "--root", str(tmp_path)])
    assert wrote.exit_code == 0, wrote.output
    assert all((tmp_path / path).read_text() == (ROOT / path).read_text() for path in GENERATED)
    assert runner.invoke(slo_app, ["check", "--root", str(tmp_path)]).exit_code == 0

    # A hand edit of a generated file, or a spec change not regenerated, both count as drift.
    (tmp_path / SLO_ALERTS).write_text((tmp_path / SLO_ALERTS).read_text().replace("14.4", "20"))
    edited = runner.invoke(slo_app, ["check", "--root", str(tmp_path)])
    assert edited.exit_code == 1 and SLO_ALERTS in edited.output
    spec = yaml.safe_load((tmp_path / SPEC_PATH).read_text())
    spec["slos"][0]["objective"] = 0.995
    (tmp_path / SPEC_PATH).write_text(yaml.safe_dump(spec))
    stale = runner.invoke(slo_app, ["check", "--root", str(tmp_path)])
    assert stale.exit_code == 1 and RECORDING_RULES in stale.output


def test_the_prometheus_rule_carries_every_rule_group() -> None:
    rule = yaml.safe_load((ROOT / PROMETHEUS_RULE).read_text())
    groups = [
        g
        for path in (RECORDING_RULES, SLO_ALERTS, SERVICE_ALERTS)
        for g in yaml.safe_load((ROOT / path).read_text())["groups"]
    ]
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == groups
