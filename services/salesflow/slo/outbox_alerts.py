"""The outbox's alert: events committed by a service but not reaching Kafka. Part of the generated
service alerts (``salesflow.slo.service_alerts``); its runbook is ``SalesflowOutboxBacklogOld``."""

from __future__ import annotations

from salesflow.slo.rules import Rule, cause_alert
from salesflow.slo.spec import Spec

OLDEST_ROW_SECONDS = 60  # a relay publishes within milliseconds; a minute means it is stuck or gone
FOR = "5m"


def outbox_backlog_old(spec: Spec) -> Rule:
    """The oldest outbox row of a service (its relay's ``job``) has waited too long."""
    return cause_alert(
        spec,
        "SalesflowOutboxBacklogOld",
        f"max by (job) (salesflow_outbox_oldest_row_age_seconds) > {OLDEST_ROW_SECONDS}",
        severity="page",
        summary="Events wait in the outbox of {{ $labels.job }}",
        description=(
            "The oldest outbox row of {{ $labels.job }} is {{ $value | humanizeDuration }} old "
            f"(threshold {OLDEST_ROW_SECONDS} s, for {FOR}): committed events are not reaching Kafka."
        ),
        for_=FOR,
    )
