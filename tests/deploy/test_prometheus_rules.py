"""The generated rules pass ``promtool check rules``, and the rule unit tests in
``deploy/prometheus/tests`` pass ``promtool test rules`` and cover every alert both ways."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from salesflow.slo import SPEC_PATH, generated_files, load_spec
from salesflow.slo.render import RECORDING_RULES, SERVICE_ALERTS, SLO_ALERTS, write
from tests.deploy.promtool import promtool

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = [ROOT / path for path in (RECORDING_RULES, SLO_ALERTS, SERVICE_ALERTS)]
RULE_TESTS = sorted((ROOT / "deploy/prometheus/tests").glob("*.yml"))


def _alerts() -> dict[str, set[str]]:
    """Alert name -> its severities, from the generated rule files."""
    found: dict[str, set[str]] = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
    return found


def test_promtool_checks_the_generated_rules() -> None:
    result = promtool("check", "rules", *RULE_FILES)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_FILES)


def test_promtool_rule_unit_tests_pass() -> None:
    assert RULE_TESTS, "no rule unit tests found"
    result = promtool("test", "rules", *RULE_TESTS)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


def _cases() -> list[dict[str, Any]]:
    return [
        case
        for path in RULE_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]


def test_every_alert_is_shown_firing_and_silent() -> None:
    fired: dict[str, set[str]] = {}
    silent: set[str] = set()
    for case in _cases():
        if case["exp_alerts"]:
            fired.setdefault(case["alertname"], set()).update(a["exp_labels"]["severity"] for a in case["exp_alerts"])
        else:
            silent.add(case["alertname"])
    alerts = _alerts()
    assert set(alerts) == set(fired), "every alert needs a test where it fires"
    assert set(alerts) == silent, "every alert needs a test where it stays silent"
    for name, severities in alerts.items():
        assert fired[name] == severities, f"{name}: not every severity is shown firing"


def test_the_rule_unit_tests_catch_a_wrong_threshold(tmp_path: Path) -> None:
    # Generate the rules from a spec whose page alert needs a 40x burn instead of 14.4x: the unit
    # tests, run against those rules, must fail. (They can fail, so their passing means something.)
    spec = yaml.safe_load((ROOT / SPEC_PATH).read_text())
    spec["burn_rate_alerts"][0]["windows"][0]["factor"] = 40
    (tmp_path / SPEC_PATH).parent.mkdir(parents=True)
    (tmp_path / SPEC_PATH).write_text(yaml.safe_dump(spec))
    write(tmp_path, generated_files(load_spec(tmp_path / SPEC_PATH)))
    tests = tmp_path / "deploy/prometheus/tests"
    shutil.copytree(ROOT / "deploy/prometheus/tests", tests)
    result = promtool("test", "rules", tests / "slo-processing-success.yml")
    assert result.returncode != 0
    assert "SalesflowProcessingSuccessBudgetBurn" in result.stdout + result.stderr
