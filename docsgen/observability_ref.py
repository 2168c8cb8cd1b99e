"""Metrics, SLOs and alerts: the metrics as declared in the code (every ``Counter``/``Gauge``/
``Histogram`` call, found in the source), the SLOs from ``deploy/slo/slos.yaml``, and the alerts as
``salesflow slo generate`` builds them from that spec, each with its runbook."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docsgen.markdown import code, generated_note, table

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "services" / "salesflow"
KINDS = {"Counter": "counter", "Gauge": "gauge", "Histogram": "histogram", "Summary": "summary"}


@dataclass(frozen=True)
class MetricEntry:
    name: str  # as exposed (a counter with ``_total``)
    kind: str
    help: str
    labels: tuple[str, ...]
    module: str


def _kind(call: ast.Call) -> str | None:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return KINDS.get(name.lstrip("_").capitalize())


def _literals(call: ast.Call) -> list[str | tuple[str, ...]]:
    values: list[str | tuple[str, ...]] = []
    for arg in call.args:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            values.append(arg.value)
        elif isinstance(arg, ast.List | ast.Tuple):
            values.append(tuple(e.value for e in arg.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)))
    return values


def metrics(package: Path = PACKAGE) -> list[MetricEntry]:
    """Every metric the package declares, by exposed name."""
    found: dict[str, MetricEntry] = {}
    for path in sorted(package.rglob("*.py")):
        for call in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)):
            kind, values = _kind(call), _literals(call)
            if kind is None or not values or not str(values[0]).startswith("salesflow_"):
                continue
            name = str(values[0]) + ("_total" if kind == "counter" else "")
            help_text = str(values[1]) if len(values) > 1 and isinstance(values[1], str) else ""
            labels = tuple(v for rest in values[2:] for v in ((rest,) if isinstance(rest, str) else rest))
            module = ".".join(("salesflow", *path.relative_to(package).with_suffix("").parts))
            found[name] = MetricEntry(name, kind, help_text, labels, module)
    return sorted(found.values(), key=lambda m: m.name)


def alerts() -> Iterator[dict[str, Any]]:
    """Every alerting rule ``salesflow slo generate`` writes, from the spec."""
    from salesflow.slo import SPEC_PATH, load_spec
    from salesflow.slo.render import rule_files

    for groups in rule_files(load_spec(ROOT / SPEC_PATH)).values():
        for group in groups:
            yield from (rule for rule in group["rules"] if "alert" in rule)


def _slo_section() -> str:
    from salesflow.slo import SPEC_PATH, load_spec

    spec = load_spec(ROOT / SPEC_PATH)
    rows = [(code(s.name), f"{float(s.objective) * 100:g}%", s.description, code(s.alert)) for s in spec.slos]
    return (
        f"## SLOs\n\nFrom `{SPEC_PATH}`, over a rolling {spec.budget_window}. `salesflow slo generate` turns the "
        "spec into the Prometheus rules, the `PrometheusRule` and the Grafana dashboard; `salesflow slo check` "
        "fails when they drift.\n\n" + table(["SLO", "objective", "what it promises", "burn-rate alert"], rows) + "\n"
    )


def _alert_section() -> str:
    rows = []
    for rule in alerts():
        labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
        runbook = f"[runbook](../runbooks/{rule['alert']}.md)"
        summary = annotations.get("summary", annotations.get("description", ""))
        rows.append((code(rule["alert"]), labels.get("severity", ""), rule.get("for", ""), summary, runbook))
    return "## Alerts\n\n" + table(["alert", "severity", "for", "summary", "runbook"], rows) + "\n"


def render() -> str:
    """The whole page."""
    rows = [(code(m.name), m.kind, " ".join(code(x) for x in m.labels), m.help, code(m.module)) for m in metrics()]
    return (
        "# Metrics, SLOs and alerts\n\n"
        + generated_note("docsgen/observability_ref.py")
        + "Every service serves Prometheus metrics on `/metrics`. Names carry the `salesflow_` prefix and base "
        "units; labels are bounded and never hold a tenant or lead id.\n\n## Metrics\n\n"
        + table(["metric", "kind", "labels", "what it counts", "declared in"], rows)
        + "\n"
        + _slo_section()
        + _alert_section()
    )
