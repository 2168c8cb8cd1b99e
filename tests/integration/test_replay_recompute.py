"""Replay recomputes, on the real broker and database, with the worker and projection as processes.

One scenario, in steps that build on each other (module fixtures, in order):
1. a worker with two broken handlers processes lead journeys: `sequence_progress` raises (those events
   fail), `first_touch` records a wrong campaign; `salesflow replay failed --limit 2` re-publishes two
   failed events, which the broken worker counts as replays;
2. the broken worker stops, `salesflow replay offsets --to-earliest --execute` resets its group, and the
   fixed worker re-reads everything: the fixed handlers' facts replace the broken ones, nothing fails;
3. a second reset and rerun leaves every fact table and view as it was, row for row, while
   `replay_count` rises, `salesflow_events_replayed_total` counts every event, and freshness sees none.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import orjson
import pytest

from salesflow.bootstrap import event_producer
from salesflow.domain.events import EventType
from salesflow.kafka_admin import create_topics
from tests.conftest import SettingsFactory
from tests.integration.test_replay_scenario import (
    BrokenWorker,
    Scenario,
    by_type,
    fact_snapshot,
    fixed_handler_facts,
    free_port,
    journeys,
    later,
    view_snapshot,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def broken_run(
    settings_factory: SettingsFactory, service_factory: Any, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Scenario]:
    from salesflow.db.engine import create_engine

    settings = settings_factory()
    await create_topics(settings)
    engine = create_engine(database_url)
    scenario = Scenario(settings, engine, journeys(), service_factory, free_port())
    scenario.copies.update(scenario.ids)
    service_factory("projection", settings)
    scenario.worker = BrokenWorker("broken-worker", settings, tmp_path_factory.mktemp("broken")).start()
    try:
        async with event_producer(settings) as producer:
            assert not (await producer.send_all(scenario.events)).failed
        await scenario.wait_until(lambda now: all(s.status != "pending" for s in now.values()), "the broken run")
        yield scenario
    finally:
        scenario.worker.stop()
        await engine.dispose()


async def test_1_broken_handlers_fail_events_and_record_wrong_facts(broken_run: Scenario) -> None:
    now = await broken_run.states()
    steps = set(by_type(broken_run, EventType.SEQUENCE_STEP_EXECUTED))
    assert {i for i, s in now.items() if s.status == "failed"} == steps
    campaigns = await broken_run.rows(
        "SELECT DISTINCT campaign FROM attribution_touches WHERE event_id = ANY(:ids) AND touch = 'first_touch'",
        ids=broken_run.ids,
    )
    assert campaigns == [{"campaign": "BROKEN"}]
    step_facts = "SELECT * FROM sequence_step_facts WHERE event_id = ANY(:ids)"
    assert await broken_run.rows(step_facts, ids=broken_run.ids) == []


async def test_1_replay_failed_republishes_the_oldest_failed_events(broken_run: Scenario) -> None:
    done = await asyncio.to_thread(
        broken_run.cli, "replay", "failed", "--type", "sequence.step_executed", "--limit", "2", "--json"
    )
    results = orjson.loads(done.stdout)["results"]
    assert [r["status"] for r in results] == ["republished", "republished"]
    chosen = {UUID(r["event_id"]) for r in results}
    oldest = sorted((e["time"], e["id"]) for e in broken_run.events if e["type"] == "sequence.step_executed")[:2]
    assert chosen == {UUID(i) for _, i in oldest}
    # Re-published to the original partition, at a new offset.
    assert all(
        r["republished"]["topic"] == r["original"]["topic"]
        and r["republished"]["partition"] == r["original"]["partition"]
        and r["republished"]["offset"] > r["original"]["offset"]
        for r in results
    )
    await broken_run.wait_until(lambda now: all(now[i].replay_count == 1 for i in chosen), "the two replays")
    now = await broken_run.states()
    assert {i for i, s in now.items() if s.replay_count} == chosen
    assert all(now[i].status == "failed" for i in chosen)  # still broken: the handler is not fixed yet
    broken_run.copies.update(chosen)


@pytest.fixture(scope="module")
async def fixed_run(broken_run: Scenario) -> Scenario:
    await broken_run.rerun_from_earliest()
    return broken_run


async def test_2_fixed_handlers_replayed_overwrite_the_broken_facts(fixed_run: Scenario) -> None:
    assert await fact_snapshot(fixed_run) == await fixed_handler_facts(fixed_run.events)
    _, after, _ = fixed_run.reruns[-1]
    assert {s.status for s in after.values()} == {"processed"}
    errors = await fixed_run.rows(
        "SELECT count(*) AS n FROM events WHERE id = ANY(:ids) AND error_message IS NOT NULL", ids=fixed_run.ids
    )
    assert errors == [{"n": 0}]
    assert fixed_run.seen_pending_after_final == []


def assert_counted_as_replays(scenario: Scenario) -> None:
    before, after, metrics = scenario.reruns[-1]
    for event_id, state in after.items():
        # One more per record read; copies of one event projected in one batch count once.
        assert (
            before[event_id].replay_count + 1
            <= state.replay_count
            <= before[event_id].replay_count + scenario.copies[event_id]
        ), event_id
    # The new worker process saw only replays: counted as such, outside freshness and business counters.
    assert metrics.get("salesflow_events_replayed_total") == sum(scenario.copies.values())
    assert metrics.get("salesflow_event_freshness_seconds_count", 0) == 0
    assert metrics.get("salesflow_leads_created_total", 0) == 0


async def test_2_the_fixed_run_counts_every_record_as_a_replay(fixed_run: Scenario) -> None:
    assert_counted_as_replays(fixed_run)


@pytest.fixture(scope="module")
async def rerun(fixed_run: Scenario) -> tuple[Scenario, dict[str, Counter[str]], dict[str, list[str]]]:
    facts, views = await fact_snapshot(fixed_run), await view_snapshot(fixed_run)
    await fixed_run.rerun_from_earliest()
    return fixed_run, facts, views


async def test_3_a_rerun_from_earliest_recomputes_the_same_facts_and_views(rerun: Any) -> None:
    scenario, facts, views = rerun
    assert all(views.values()) and all(facts.values())
    assert await fact_snapshot(scenario) == facts
    assert await view_snapshot(scenario) == views
    _, after, _ = scenario.reruns[-1]
    assert {s.status for s in after.values()} == {"processed"}
    assert scenario.seen_pending_after_final == []


async def test_3_the_rerun_counts_every_record_as_a_replay(rerun: Any) -> None:
    assert_counted_as_replays(rerun[0])


async def test_4_replay_event_recomputes_one_event(rerun: Any) -> None:
    scenario: Scenario = rerun[0]
    target = by_type(scenario, EventType.LEAD_CREATED)[0]
    before, facts = await scenario.states(), await fact_snapshot(scenario)
    metrics_before = await asyncio.to_thread(scenario.metrics)
    done = await asyncio.to_thread(scenario.cli, "replay", "event", str(target))
    assert "1 of 1 event(s) re-published" in done.stdout
    await scenario.wait_until(
        lambda now: now[target].replay_count == before[target].replay_count + 1, "the replayed event"
    )
    await scenario.settle()
    after = await scenario.states()
    assert {i: s for i, s in after.items() if i != target} == {i: s for i, s in before.items() if i != target}
    assert later(after[target].processed_at, before[target].processed_at)
    assert await fact_snapshot(scenario) == facts
    metrics = await asyncio.to_thread(scenario.metrics)
    assert metrics["salesflow_events_replayed_total"] == metrics_before["salesflow_events_replayed_total"] + 1
    assert metrics.get("salesflow_event_freshness_seconds_count", 0) == metrics_before.get(
        "salesflow_event_freshness_seconds_count", 0
    )
