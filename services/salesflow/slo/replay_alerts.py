"""The replay alert: more events replayed through the API than operators normally do.

A replay re-runs every handler of every event it touches; thousands in a few minutes are either a
planned recovery (silence the alert for it) or a token in the wrong hands. Counted from
``salesflow_api_replays_total`` (events queued for replay, per API instance); who asked is in the
audit trail (``GET /api/audit``). Its runbook is ``SalesflowReplaysHigh``.
"""

from __future__ import annotations

from salesflow.slo.rules import Rule, cause_alert
from salesflow.slo.spec import Spec

ALERT = "SalesflowReplaysHigh"
REPLAYED = 'salesflow_api_replays_total{result=~"queued|republished"}'  # not those that could not be replayed


def replays_high(spec: Spec) -> Rule:
    a = spec.alerts
    w = a.replay_window
    return cause_alert(
        spec,
        ALERT,
        f"sum(rate({REPLAYED}[{w}])) * 60 > {a.replays_per_minute:g}",
        severity="ticket",
        summary="Many events are being replayed through the API",
        description=(
            f"{{{{ $value | humanize }}}} events per minute replayed through the API over {w} "
            f"(threshold {a.replays_per_minute:g}, for {a.replay_for}). Who asked: GET /api/audit."
        ),
        for_=a.replay_for,
    )
