"""The Kubernetes manifests against Kubernetes' own schemas (shipped by kubernetes-validate, so
offline); the prometheus-operator resources, which those schemas do not cover, structurally."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from salesflow.slo import SPEC_PATH, load_spec
from tests.deploy.promtool import promtool

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy/k8s"
VERSIONS = ("1.30.0", "1.34.0")
CUSTOM = {"ServiceMonitor", "PrometheusRule", "Kustomization"}

# The parts of the prometheus-operator CRDs we rely on; unknown top-level keys are mistakes.
MONITORING_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"enum": ["ServiceMonitor", "PrometheusRule"]},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {"type": "object", "minProperties": 1},
    },
}
SERVICE_MONITOR_SPEC = {
    "type": "object",
    "required": ["selector", "endpoints"],
    "properties": {
        "selector": {"type": "object", "required": ["matchLabels"]},
        "endpoints": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["port"],
                "properties": {
                    "port": {"type": "string"},
                    "path": {"type": "string"},
                    "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                },
            },
        },
    },
}


def _documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, doc) for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc
    ]


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in _documents() if doc["kind"] == kind}


@pytest.mark.parametrize("version", VERSIONS)
def test_builtin_resources_match_the_kubernetes_schemas(version: str) -> None:
    checked = 0
    for _name, doc in _documents():
        if doc["kind"] not in CUSTOM:
            kubernetes_validate.validate(doc, version, strict=True)
            checked += 1
    assert checked >= 9


@pytest.mark.parametrize("mistake", ["unknown field", "wrong type"])
def test_the_schema_check_catches_mistakes(mistake: str) -> None:
    deployment = copy.deepcopy(_workload("salesflow-worker"))
    if mistake == "unknown field":
        deployment["spec"]["replica"] = 3
    else:
        deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "9101/tcp"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)


def test_monitoring_resources_are_well_formed() -> None:
    for kind in ("ServiceMonitor", "PrometheusRule"):
        for doc in _by_kind(kind).values():
            jsonschema.validate(doc, MONITORING_SCHEMA)
    for monitor in _by_kind("ServiceMonitor").values():
        jsonschema.validate(monitor["spec"], SERVICE_MONITOR_SPEC)


def test_the_service_monitor_scrapes_every_service_as_the_job_the_alerts_expect() -> None:
    (monitor,) = _by_kind("ServiceMonitor").values()
    services = _by_kind("Service")
    # The operator names the job after the Service: these are the jobs in the alerts.
    assert set(services) == {job.job for job in load_spec(ROOT / SPEC_PATH).jobs}
    for service in services.values():
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        ports = {port["name"] for port in service["spec"]["ports"]}
        assert {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]} <= ports


def test_the_prometheus_rule_passes_promtool(tmp_path: Path) -> None:
    (rule,) = _by_kind("PrometheusRule").values()
    extracted = tmp_path / "rules.yml"
    extracted.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = promtool("check", "rules", extracted)
    assert result.returncode == 0, result.stdout + result.stderr


def _workload(name: str) -> dict[str, Any]:
    """The Deployment or StatefulSet called ``name``."""
    return {**_by_kind("Deployment"), **_by_kind("StatefulSet")}[name]


def _pod(name: str) -> dict[str, Any]:
    return dict(_workload(name)["spec"]["template"]["spec"])


def test_workers_scale_up_to_the_partition_count_and_no_further() -> None:
    partitions = int(_by_kind("ConfigMap")["salesflow-config"]["data"]["SALESFLOW_TOPIC_PARTITIONS"])
    hpa = _by_kind("HorizontalPodAutoscaler")["salesflow-worker"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "salesflow-worker"
    assert hpa["spec"]["maxReplicas"] == partitions
    assert hpa["spec"]["scaleTargetRef"]["kind"] == _workload("salesflow-worker")["kind"]
    assert hpa["spec"]["minReplicas"] <= _workload("salesflow-worker")["spec"]["replicas"] <= partitions


@pytest.mark.parametrize(("deployment", "port"), [("salesflow-worker", 9101), ("salesflow-projection", 9102)])
def test_pods_run_as_non_root_and_expose_their_metrics_port(deployment: str, port: int) -> None:
    pod = _pod(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in container["ports"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[f"SALESFLOW_{container['name'].upper()}_METRICS_PORT"] == str(port)
    service = _by_kind("Service")[deployment]
    pod_labels = _workload(deployment)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


@pytest.mark.parametrize("name", ["salesflow-worker", "salesflow-projection"])
def test_consumers_have_a_stable_identity_and_time_to_drain(name: str) -> None:
    """Static membership (docs/explanation/failover.md): a pod name that survives restarts and rolling updates
    (a StatefulSet's, never a Deployment's random one) is the group instance id."""
    from salesflow.failure_policy import DRAIN_SECONDS

    workload = _workload(name)
    assert workload["kind"] == "StatefulSet"
    assert workload["spec"]["serviceName"] in _by_kind("Service")
    pod = _pod(name)
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["SALESFLOW_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # Kubernetes sends SIGKILL after the grace period: it must cover the drain, with room to commit.
    assert pod["terminationGracePeriodSeconds"] >= 2 * DRAIN_SECONDS
