"""Every alert links a runbook that exists and says what it means, how to look, how to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from salesflow.slo import SPEC_PATH, load_spec
from salesflow.slo.render import RECORDING_RULES, SERVICE_ALERTS, SLO_ALERTS

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "docs/runbooks"
SHARED_PAGES = {"README.md", "replay.md"}
SECTIONS = ("## What it means", "## How to look", "## How to fix")
REPLAY = "salesflow replay offsets --group salesflow-processor --all-topics --to-datetime"


def _alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in (RECORDING_RULES, SLO_ALERTS, SERVICE_ALERTS)
        for group in yaml.safe_load((ROOT / path).read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


ALERTS = sorted({rule["alert"] for rule in _alert_rules()})


def test_every_alert_rule_links_its_runbook() -> None:
    base = load_spec(ROOT / SPEC_PATH).runbook_base_url
    for rule in _alert_rules():
        assert rule["annotations"]["runbook_url"] == f"{base}/{rule['alert']}.md"
        assert (RUNBOOKS / f"{rule['alert']}.md").is_file(), rule["alert"]


@pytest.mark.parametrize("alert", ALERTS)
def test_runbook_says_what_it_means_how_to_look_and_how_to_fix(alert: str) -> None:
    text = (RUNBOOKS / f"{alert}.md").read_text()
    assert text.startswith(f"# {alert}\n")
    positions = [text.find(section) for section in SECTIONS]
    assert -1 not in positions and positions == sorted(positions), f"{alert}: sections missing or out of order"
    assert "replay" in text.lower(), f"{alert}: say whether a replay is needed"
    assert f"`{alert}`" in (RUNBOOKS / "README.md").read_text(), f"{alert} is missing from the index"


def test_no_runbook_without_an_alert() -> None:
    pages = {p.name for p in RUNBOOKS.glob("*.md")} - SHARED_PAGES
    assert pages == {f"{alert}.md" for alert in ALERTS}


def test_replay_is_documented_dry_run_first_then_execute() -> None:
    for page in ("replay.md", "SalesflowProcessingSuccessBudgetBurn.md"):
        lines = (RUNBOOKS / page).read_text().splitlines()
        commands = [line.strip() for line in lines if line.strip().startswith(REPLAY)]
        assert len(commands) >= 2, page
        dry, execute = commands[0], commands[1]
        assert "--execute" not in dry and execute == f"{dry} --execute", page
    assert "--replicas=0" in (RUNBOOKS / "replay.md").read_text()  # the group must have no live members
