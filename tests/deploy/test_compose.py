"""docker-compose.yml against the Compose Specification's JSON Schema (the copy check-jsonschema
ships, so offline), plus what the schema cannot know: order, health checks, mounts, and that the
Prometheus config matches the services and the SLO spec. Also the Dockerfile's shape."""

from __future__ import annotations

import json
import re
from graphlib import TopologicalSorter
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from salesflow.settings import Settings
from salesflow.slo import SPEC_PATH, load_spec
from tests.deploy.promtool import promtool

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
LONG_RUNNING = ("kafka", "postgres", "worker", "projection", "prometheus", "grafana")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    return jsonschema.Draft7Validator(json.loads(schema.read_text()))


def test_compose_file_matches_the_compose_spec_schema(compose: dict[str, Any], validator: Any) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


@pytest.mark.parametrize("mistake", ["unknown condition", "misspelt key"])
def test_the_schema_check_catches_mistakes(compose: dict[str, Any], validator: Any, mistake: str) -> None:
    broken = json.loads(json.dumps(compose))
    if mistake == "unknown condition":
        broken["services"]["worker"]["depends_on"]["topics"]["condition"] = "service_finished"
    else:
        broken["services"]["projection"]["helthcheck"] = broken["services"]["projection"].pop("healthcheck")
    assert list(validator.iter_errors(broken))


def test_every_piece_of_the_stack_is_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(LONG_RUNNING) | {"topics", "migrate"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert services["topics"]["command"] == ["topics", "create"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for job in ("topics", "migrate"):
        assert services[job]["restart"] == "no"
    for name, service in services.items():
        assert ":" in service["image"] and not service["image"].endswith(":latest"), f"{name}: pin the image"


def test_long_running_services_have_health_checks(compose: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        assert compose["services"][name]["healthcheck"]["test"], name


def test_start_order_infrastructure_then_jobs_then_pipeline(compose: dict[str, Any]) -> None:
    services = compose["services"]
    needs = {name: dict(s.get("depends_on", {})) for name, s in services.items()}
    order = list(TopologicalSorter({n: set(d) for n, d in needs.items()}).static_order())  # raises on a cycle
    assert order.index("kafka") < order.index("topics") < order.index("worker") < order.index("prometheus")
    assert needs["topics"]["kafka"]["condition"] == "service_healthy"
    assert needs["migrate"]["postgres"]["condition"] == "service_healthy"
    assert needs["worker"]["topics"]["condition"] == "service_completed_successfully"
    assert needs["projection"]["migrate"]["condition"] == "service_completed_successfully"
    assert needs["projection"]["topics"]["condition"] == "service_completed_successfully"
    assert needs["grafana"]["prometheus"]["condition"] == "service_healthy"


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Bind mounts of a service: container path -> host path (relative to the compose file)."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            found[target] = source
    return found


def test_prometheus_and_grafana_mount_the_rules_and_the_dashboard(compose: dict[str, Any]) -> None:
    prometheus, grafana = _mounts(compose["services"]["prometheus"]), _mounts(compose["services"]["grafana"])
    assert prometheus == {
        "/etc/prometheus/prometheus.yml": "./deploy/prometheus/prometheus.yml",
        "/etc/prometheus/rules": "./deploy/prometheus/rules",
    }
    assert grafana == {
        "/etc/grafana/provisioning": "./deploy/grafana/provisioning",
        "/var/lib/grafana/dashboards": "./deploy/grafana/dashboards",
    }
    for host in [*prometheus.values(), *grafana.values()]:
        assert (ROOT / host).exists(), host
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/salesflow.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    assert "--storage.tsdb.retention.time=31d" in compose["services"]["prometheus"]["command"]  # 30d budget


def default_metrics_port(service: str) -> int:
    """Where a service serves /metrics by default: the API on its own HTTP port."""
    if service == "api":
        from salesflow.api.api_settings import ApiSettings

        return ApiSettings().port
    return int(getattr(Settings(), f"{service}_metrics_port"))


def test_prometheus_config_is_valid_and_scrapes_the_jobs_the_alerts_expect(compose: dict[str, Any]) -> None:
    config_path = ROOT / "deploy/prometheus/prometheus.yml"
    result = promtool("check", "config", config_path)  # also checks the rule files it loads
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 3 rule files found" in result.stdout
    config = yaml.safe_load(config_path.read_text())
    scraped = {job["job_name"]: job["dns_sd_configs"][0] for job in config["scrape_configs"] if "dns_sd_configs" in job}
    expected = {job.job: (job.name, default_metrics_port(job.name)) for job in load_spec(ROOT / SPEC_PATH).jobs}
    assert {job: (sd["names"][0], sd["port"]) for job, sd in scraped.items()} == expected
    for service, port in expected.values():
        assert str(port) in compose["services"][service]["expose"]
        assert str(port) in " ".join(compose["services"][service]["healthcheck"]["test"])


def test_dockerfile_is_multi_stage_and_runs_as_a_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)", text, re.MULTILINE)
    assert len(stages) >= 2, "a build stage and a runtime stage"
    final = text[text.rindex("\nFROM ") :]
    assert "COPY --from=build" in final
    user = re.findall(r"^USER\s+(\S+)", final, re.MULTILINE)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert re.search(r'^ENTRYPOINT \["salesflow"\]', final, re.MULTILINE)
    assert "build-essential" not in final  # the compiler stays in the build stage
    assert "pip install --require-hashes -r requirements.lock" in text  # the locked dependencies
    assert (ROOT / "requirements.lock").is_file()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".stack", ".venv", ".git"} <= set(ignored)
