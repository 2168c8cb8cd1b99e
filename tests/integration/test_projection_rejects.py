"""Issue 11, defect 1: one record Postgres cannot store never stops the projection.

Crafted records go straight onto the topics the projection reads (the worker's own limits are not
relied on): outcomes with a NUL in a text column, numbers beyond a column's range, a time out of
range, malformed JSON, an unknown fact kind; source records whose payload jsonb cannot hold; dead
letters with a NUL in a header. Each bad record is kept in ``rejected_records`` with its reason and
its own bytes, every good record around it is written, and the offsets are committed past all of them.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.domain import records as r
from salesflow.domain.events import EventType
from salesflow.settings import Settings
from salesflow.testing.factories import event_dict
from tests.harness import wait_for
from tests.integration.projection_kit import (
    Sent,
    Topics,
    committed_to_end,
    event_rows,
    fact,
    outcome_of,
    rejected,
    rows,
    running_projection,
)

pytestmark = pytest.mark.integration

NUL = "\x00"


def bad_outcomes(tenant: str) -> list[tuple[str, dict[str, Any] | bytes, str]]:
    """(what is wrong, the outcome record, the reason it must be rejected with)."""
    action = event_dict(EventType.AUTOPILOT_ACTION_EXECUTED, tenant)
    steps = event_dict(EventType.SEQUENCE_STEP_EXECUTED, tenant)
    nul_lead = event_dict(EventType.LEAD_CREATED, tenant, lead_id=f"lead{NUL}x")
    late = event_dict(EventType.LEAD_CREATED, tenant)
    late["time"] = "9999-12-31T23:59:59-01:00"
    money = {"action_id": "a", "action_type": "send_message", "outcome": "succeeded", "model": None}
    step = {"sequence_id": "s", "step_count": 3, "action": "email", "status": "executed", "completed": False}
    unknown = event_dict(EventType.LEAD_CREATED, tenant)
    return [
        ("a NUL in lead_id", outcome_of(nul_lead), "invalid_value"),
        (
            "cost_usd 1e40",
            outcome_of(action, facts=[fact(action, "ai_action", **money, cost_usd=1e40, value_usd=1.0)]),
            "invalid_value",
        ),
        (
            "tokens 2**31",
            outcome_of(action, facts=[fact(action, "ai_action", **money, cost_usd=1, value_usd=1, tokens=2**31)]),
            "invalid_value",
        ),
        (
            "step_index 2**31",
            outcome_of(steps, facts=[fact(steps, "sequence_step", **step, step_index=2**31)]),
            "invalid_value",
        ),
        ("time out of range in UTC", outcome_of(late, facts=[]), "invalid_value"),
        ("not JSON", b'{"event_id": ', "malformed_outcome"),
        ("unknown fact kind", outcome_of(unknown, facts=[fact(unknown, "horoscope")]), "malformed_outcome"),
        (
            "status beyond the check",
            outcome_of(event_dict(EventType.LEAD_CREATED, tenant), status="lost"),
            "invalid_value",
        ),
    ]


@pytest.fixture
def tenant(settings: Settings) -> str:
    return f"t-{settings.topic_prefix.split('.')[0]}"


async def test_bad_records_are_rejected_with_their_bytes_and_the_rest_is_written(
    settings: Settings, engine: AsyncEngine, tenant: str
) -> None:
    good = [event_dict(EventType.LEAD_CREATED, tenant, n, lead_id=f"lead-{n}") for n in range(12)]
    bad = bad_outcomes(tenant)
    nul_payload = event_dict(EventType.LEAD_CREATED, tenant, campaign=f"spring{NUL}")
    expected: dict[tuple[str, int, int], tuple[str, Sent]] = {}
    async with Topics(settings) as topics:
        # Good and bad interleaved in one partition, so they share batches.
        for n, event in enumerate(good):
            await topics.source(event)
            await topics.outcome(outcome_of(event))
            if n < len(bad):
                _, value, reason = bad[n]
                sent = await topics.outcome(value)
                expected[(sent.topic, sent.partition, sent.offset)] = (reason, sent)
        sent = await topics.source(nul_payload)  # decodes, but jsonb cannot hold its \u0000
        expected[(sent.topic, sent.partition, sent.offset)] = ("invalid_value", sent)
        headers = [(r.DLQ_REASON, b"not_json"), (r.DLQ_DETAIL, f"bad{NUL}detail".encode())]
        sent = await topics.dead_letter(b"raw bytes", headers)
        expected[(sent.topic, sent.partition, sent.offset)] = ("invalid_value", sent)
        fine_dead_letter = await topics.dead_letter(b"other raw bytes", [(r.DLQ_REASON, b"not_json")])

    async with running_projection(settings, engine) as projection:
        await wait_for(lambda: _all_rejected(engine, settings, len(expected)), timeout=90, what="every rejection")
        await wait_for(lambda: committed_to_end(settings), timeout=30, what="offsets committed to the end")
        metric = projection.metrics.projection_rejected_records

    found = await rejected(engine, settings)
    assert {pos: row["reason"] for pos, row in found.items()} == {pos: reason for pos, (reason, _) in expected.items()}
    for pos, (_, sent) in expected.items():
        assert found[pos]["raw"] == sent.value, pos  # the record's own bytes, kept
        assert found[pos]["error"], pos
    dead_letter_rejected = found[next(p for p in expected if p[0] == settings.topics.deadletter)]
    assert ["salesflow.dlq.detail", "YmFkAGRldGFpbA=="] in dead_letter_rejected["headers"]  # base64, NUL kept
    written = await event_rows(engine, [e["id"] for e in good])
    assert {row["status"] for row in written.values()} == {"processed"} and len(written) == len(good)
    assert all(row["payload"] is not None for row in written.values())
    funnel = await rows(engine, "SELECT count(*) AS n FROM funnel_facts WHERE tenant_id = :t", t=tenant)
    assert funnel[0]["n"] == len(good)
    dead = await rows(engine, "SELECT raw FROM dead_letters WHERE topic = :t", t=fine_dead_letter.topic)
    assert [d["raw"] for d in dead] == [b"other raw bytes"]
    counted = {reason: metric.labels(reason)._value.get() for reason in ("invalid_value", "malformed_outcome")}
    assert counted == {
        "invalid_value": sum(1 for reason, _ in expected.values() if reason == "invalid_value"),
        "malformed_outcome": sum(1 for reason, _ in expected.values() if reason == "malformed_outcome"),
    }


async def test_a_re_read_keeps_each_rejection_once(settings: Settings, engine: AsyncEngine, tenant: str) -> None:
    event = event_dict(EventType.LEAD_CREATED, tenant, lead_id=f"x{NUL}")
    async with Topics(settings) as topics:
        await topics.outcome(outcome_of(event))
        await topics.outcome(outcome_of(event_dict(EventType.LEAD_CREATED, tenant)))
    async with running_projection(settings, engine):
        await wait_for(lambda: _all_rejected(engine, settings, 1), timeout=60, what="the rejection")
    # A new group reads everything again, as after a crash before the commit: nothing is added.
    again = settings.model_copy(update={"projection_group": f"{settings.projection_group}-again"})
    async with running_projection(again, engine):
        await wait_for(lambda: committed_to_end(again), timeout=60, what="the re-read")
    assert len(await rejected(engine, settings)) == 1


async def _all_rejected(engine: AsyncEngine, settings: Settings, count: int) -> bool:
    return len(await rejected(engine, settings)) >= count
