"""Prometheus rules from the SLO spec: SLI error ratios per window, the error budget, and the
multi-window, multi-burn-rate alerts of the SRE Workbook.

Rule groups are plain dicts in the shape of a Prometheus rule file, so the same groups go into
``deploy/prometheus/rules/*.yml`` and the Kubernetes ``PrometheusRule``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from salesflow.slo.spec import SLO, BurnRateAlert, EventsSLI, Spec, ThresholdSLI, duration_seconds

Rule = dict[str, Any]
Group = dict[str, Any]

OBJECTIVE = "slo:objective:ratio"
ERROR_BUDGET = "slo:error_budget:ratio"
BUDGET_REMAINING = "slo:error_budget_remaining:ratio"


def cause_alert(
    spec: Spec, name: str, expr: str, *, severity: str, summary: str, description: str, for_: str | None = None
) -> Rule:
    """An alert on a cause the SLO alerts can miss (lag, dead letters, a service down), with the
    service's label and the runbook named after it."""
    rule: Rule = {"alert": name, "expr": expr}
    if for_ is not None:
        rule["for"] = for_
    rule["labels"] = {"severity": severity, "service": spec.service}
    rule["annotations"] = {"summary": summary, "description": description, "runbook_url": spec.runbook_url(name)}
    return rule


def error_ratio(window: str) -> str:
    """Name of the recorded SLI error ratio over ``window`` (Sloth's convention)."""
    return f"slo:sli_error:ratio_rate{window}"


def sli_error_expr(sli: EventsSLI | ThresholdSLI, window: str) -> str:
    """PromQL for the share of bad events over ``window``; empty (not 0) when nothing happened."""
    if isinstance(sli, EventsSLI):
        # No error series exists until the first error: `or vector(0)` makes "none" a 0, not a gap.
        errors = f"sum(rate({sli.metric}{{{sli.errors}}}[{window}]))"
        total = f"sum(rate({sli.metric}{{{sli.total}}}[{window}]))"
        return f"({errors} or vector(0))\n/\n{total}"
    good = f'sum(rate({sli.histogram}_bucket{{le="{sli.le}"}}[{window}]))'
    total = f"sum(rate({sli.histogram}_count[{window}]))"
    return f"1 - (\n  {good}\n  /\n  {total}\n)"


def slo_labels(spec: Spec, slo: SLO) -> dict[str, str]:
    """The labels every recorded series and alert of ``slo`` carries."""
    return {"service": spec.service, "slo": slo.name}


def selector(spec: Spec, slo: SLO) -> str:
    """PromQL label matchers picking the recorded series of ``slo``."""
    return f'{{service="{spec.service}", slo="{slo.name}"}}'


def recording_group(spec: Spec, slo: SLO) -> Group:
    """The SLI error ratio over every alerting window and the budget window, plus the budget."""
    labels = slo_labels(spec, slo)
    rules: list[Rule] = [
        {"record": error_ratio(window), "expr": sli_error_expr(slo.sli, window), "labels": labels}
        for window in [*spec.windows, spec.budget_window]
    ]
    rules += [
        {"record": OBJECTIVE, "expr": f"vector({slo.objective})", "labels": labels},
        {"record": ERROR_BUDGET, "expr": f"vector({slo.error_budget})", "labels": labels},
        {
            # 1 = untouched, 0 = spent, below 0 = overspent, over the budget window.
            "record": BUDGET_REMAINING,
            "expr": f"1 - {error_ratio(spec.budget_window)}{selector(spec, slo)} / {slo.error_budget}",
            "labels": labels,
        },
    ]
    return {"name": f"{spec.service}-slo-{slo.name}", "rules": rules}


def burn_rate_alert(spec: Spec, slo: SLO, alert: BurnRateAlert) -> Rule:
    """One alert of one severity: any of its (long, short) window pairs burning above its factor."""
    sel = selector(spec, slo)
    budget = slo.error_budget
    conditions = [
        f"(\n  {error_ratio(w.long)}{sel} > ({w.factor} * {budget})\n"
        f"and\n  {error_ratio(w.short)}{sel} > ({w.factor} * {budget})\n)"
        for w in alert.windows
    ]
    pairs = " or ".join(f"{w.factor}x over {w.long} and {w.short}" for w in alert.windows)
    fastest = max(alert.windows, key=lambda w: w.factor)
    return {
        "alert": slo.alert,
        "expr": "\nor\n".join(conditions),
        "labels": {"severity": alert.severity, **slo_labels(spec, slo)},
        "annotations": {
            "summary": f"{slo.name} SLO: error budget burning {'fast' if alert.severity == 'page' else 'steadily'}",
            "description": (
                f"The {slo.name} error ratio is above the budget ({budget} of events) by {pairs}. "
                f"At {fastest.factor}x the {spec.budget_window} budget is gone in "
                f"{_days(spec.budget_window, fastest.factor)}. Objective: {_percent(slo.objective)}."
            ),
            "runbook_url": spec.runbook_url(slo.alert),
        },
    }


def alert_group(spec: Spec, slo: SLO) -> Group:
    """The burn-rate alerts of ``slo``, one per severity."""
    return {
        "name": f"{spec.service}-slo-{slo.name}-alerts",
        "rules": [burn_rate_alert(spec, slo, alert) for alert in spec.burn_rate_alerts],
    }


def _days(window: str, factor: Decimal) -> str:
    days = duration_seconds(window) / 86400 / float(factor)
    return f"{days:.3g} days"


def _percent(ratio: Decimal) -> str:
    return f"{format((ratio * 100).normalize(), 'f')}%"
