"""Alerts on causes the SLO alerts can miss: consumer lag, dead letters, services down or gone.

A consumer that is stuck records no freshness observations at all, so the freshness SLI goes empty
rather than bad; the lag alert catches that. A worker that is gone exposes nothing, so only ``up``
and ``absent`` can tell.
"""

from __future__ import annotations

from salesflow.slo.outbox_alerts import outbox_backlog_old
from salesflow.slo.replay_alerts import replays_high
from salesflow.slo.rules import Group, Rule, cause_alert
from salesflow.slo.spec import Job, Spec


def consumer_lag(spec: Spec) -> Rule:
    """A group too far behind on a topic, per group and topic (the worst instance counts)."""
    a = spec.alerts
    return cause_alert(
        spec,
        "SalesflowConsumerLagHigh",
        f"max by (group, topic) (salesflow_consumer_lag_seconds) > {a.consumer_lag_seconds:g}",
        severity="page",
        summary="Consumer group {{ $labels.group }} is behind on {{ $labels.topic }}",
        description=(
            "The oldest unprocessed record of {{ $labels.topic }} in group {{ $labels.group }} is "
            "{{ $value | humanizeDuration }} old (threshold "
            f"{a.consumer_lag_seconds:g} s, for {a.consumer_lag_for})."
        ),
        for_=a.consumer_lag_for,
    )


def dead_letters(spec: Spec) -> Rule:
    """Too large a share of consumed records dead-lettered (a producer sends bad input)."""
    a = spec.alerts
    w = a.dead_letter_window
    return cause_alert(
        spec,
        "SalesflowDeadLettersHigh",
        (
            f"sum(rate(salesflow_dead_letters_total[{w}]))\n/\n"
            f"sum(rate(salesflow_events_consumed_total[{w}]))\n> {a.dead_letter_ratio:g}"
        ),
        severity="ticket",
        summary="Many records go to the dead-letter topic",
        description=(
            f"{{{{ $value | humanizePercentage }}}} of the records consumed over {w} could not be "
            f"decoded or validated (threshold {a.dead_letter_ratio:.0%}, for {a.dead_letter_for})."
        ),
        for_=a.dead_letter_for,
    )


def rejected_records(spec: Spec) -> Rule:
    """The projection kept records aside (``rejected_records``): each is an event not in Postgres."""
    w = spec.alerts.rejected_records_window
    return cause_alert(
        spec,
        "SalesflowProjectionRejectedRecords",
        f"sum by (reason) (increase(salesflow_projection_rejected_records_total[{w}])) > 0",
        severity="ticket",
        summary="The projection rejected records ({{ $labels.reason }})",
        description=(
            f"Records the projection could not write to Postgres and kept in rejected_records over {w}, "
            f"with reason {{{{ $labels.reason }}}}: {{{{ $value | humanize }}}}."
        ),
    )


def down(spec: Spec, job: Job) -> Rule:
    """One instance of ``job`` fails its scrapes."""
    name = f"Salesflow{job.title}Down"
    return cause_alert(
        spec,
        name,
        f'up{{job="{job.job}"}} == 0',
        severity="page",
        summary=f"A SalesFlow {job.name} is down: {{{{ $labels.instance }}}}",
        description=(
            f"Prometheus has failed to scrape {{{{ $labels.instance }}}} (job {job.job}) for {spec.alerts.down_for}."
        ),
        for_=spec.alerts.down_for,
    )


def metrics_absent(spec: Spec, job: Job) -> Rule:
    """No target of ``job`` at all: nothing runs, or Prometheus no longer discovers it."""
    name = f"Salesflow{job.title}MetricsAbsent"
    return cause_alert(
        spec,
        name,
        f'absent(up{{job="{job.job}"}})',
        severity="page",
        summary=f"No SalesFlow {job.name} is being scraped",
        description=(
            f"Prometheus has had no target for job {job.job} for {spec.alerts.absent_for}: "
            f"no {job.name} runs, or Prometheus no longer discovers it."
        ),
        for_=spec.alerts.absent_for,
    )


def service_group(spec: Spec) -> Group:
    """Every non-SLO alert, in one group."""
    rules = [consumer_lag(spec), dead_letters(spec), rejected_records(spec), outbox_backlog_old(spec)]
    rules.append(replays_high(spec))
    for job in spec.jobs:
        rules += [down(spec, job), metrics_absent(spec, job)]
    return {"name": f"{spec.service}-service-alerts", "rules": rules}
