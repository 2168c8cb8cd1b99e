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
import socket
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.domain.decoding import decode_event
from salesflow.domain.events import EventType
from salesflow.domain.outputs import Fact
from salesflow.handlers import DEFAULT_REGISTRY
from salesflow.kafka_admin import create_topics
from salesflow.producer.client import event_producer
from salesflow.producer.envelope import encode
from salesflow.replay.kafka_tools import kafka_tools
from salesflow.replay.lag import group_lag
from salesflow.settings import Settings
from tests.conftest import SettingsFactory
from tests.factories import make_event
from tests.harness import ROOT, Service, settings_env, wait_for

pytestmark = pytest.mark.integration

RUN = uuid4().hex[:6]
TENANTS = (f"acme-{RUN}", f"globex-{RUN}")
FACT_TABLES = ("funnel_facts", "attribution_touches", "ai_action_facts", "message_facts", "sequence_step_facts")
VIEWS = ("funnel_daily", "ai_roi_daily", "attribution_daily")

# The worker of step 1: the default handlers, two of them broken.
BROKEN_WORKER = """
import faust
from salesflow import bootstrap
from salesflow.handlers import DEFAULT_REGISTRY
from salesflow.handlers.registry import HandlerRegistry
from salesflow.settings import Settings

def broken(handler):
    if handler.name == "analytics.sequence_progress":
        async def fn(event):
            raise RuntimeError("bug: step index off by one")
        return fn
    if handler.name == "attribution.first_touch":
        async def fn(event):
            return [o.model_copy(update={"campaign": "BROKEN"}) for o in await handler.fn(event)]
        return fn
    return handler.fn

registry = HandlerRegistry()
for event_type in DEFAULT_REGISTRY.table():
    for handler in DEFAULT_REGISTRY.handlers_for(event_type):
        registry.register(event_type, name=handler.name)(broken(handler))
app, _ = bootstrap.build_worker_app(Settings(), registry)
faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()
"""


def journeys() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for tenant in TENANTS:
        for n in range(3):
            lead, t = f"lead-{n}", n * 10.0
            events.append(make_event(EventType.LEAD_CREATED, tenant, t, lead_id=lead, autopilot=n % 2 == 0))
            if n % 2 == 0:
                events.append(make_event(EventType.AUTOPILOT_ACTION_EXECUTED, tenant, t + 1, lead_id=lead,
                                         action_id=f"act-{n}", cost_usd=0.25, value_usd=2.5))
            events.append(make_event(EventType.MESSAGE_SENT, tenant, t + 2, lead_id=lead, message_id=f"m-{n}"))
            for step in range(2):
                events.append(make_event(EventType.SEQUENCE_STEP_EXECUTED, tenant, t + 3 + step, lead_id=lead,
                                         step_index=step, step_count=2, status="executed"))
    return events


@dataclass(frozen=True)
class State:
    status: str
    replay_count: int
    processed_at: datetime | None


@dataclass
class Scenario:
    settings: Settings
    engine: AsyncEngine
    events: list[dict[str, Any]]
    start: Callable[[str, Settings], Service]
    metrics_port: int
    worker: Service | None = None
    seen_pending_after_final: list[str] = field(default_factory=list)
    copies: Counter[UUID] = field(default_factory=Counter)  # records of each event on its source topic
    reruns: list[tuple[dict[UUID, State], dict[UUID, State], dict[str, float]]] = field(default_factory=list)

    @property
    def ids(self) -> list[UUID]:
        return [UUID(e["id"]) for e in self.events]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "salesflow.cli.main", *args], env=settings_env(self.settings),
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"salesflow {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done

    async def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(text(sql), params)]

    async def states(self) -> dict[UUID, State]:
        found = await self.rows("SELECT id, status, replay_count, processed_at FROM events WHERE id = ANY(:ids)",
                                ids=self.ids)
        return {r["id"]: State(r["status"], r["replay_count"], r["processed_at"]) for r in found}

    async def wait_until(self, check: Callable[[dict[UUID, State]], bool], what: str) -> None:
        """Poll the events until ``check`` holds, and note any event seen `pending` after being final."""
        final: set[UUID] = set()

        async def poll() -> bool:
            now = await self.states()
            self.seen_pending_after_final += [str(i) for i, s in now.items() if s.status == "pending" and i in final]
            final.update(i for i, s in now.items() if s.status != "pending")
            return len(now) == len(self.ids) and check(now)

        try:
            await wait_for(poll, timeout=90, every=0.2, what=what)
        except AssertionError as exc:
            seen = Counter((s.status, s.replay_count) for s in (await self.states()).values())
            log = self.worker.log_tail(30) if self.worker else ""
            raise AssertionError(f"{exc}\n(status, replay_count): {dict(seen)}\nworker log:\n{log}") from None

    async def stop_worker_and_reset(self) -> dict[str, Any]:
        assert self.worker is not None
        self.worker.stop()
        async with kafka_tools(self.settings) as tools:
            async def idle() -> bool:
                return (await tools.describe_group(self.settings.processor_group)).idle

            await wait_for(idle, timeout=60, what="the processor group to be empty")
        done = await asyncio.to_thread(self.cli, "replay", "offsets", "--all-topics", "--to-earliest", "--execute", "--json")
        return orjson.loads(done.stdout)

    async def settle(self) -> None:
        """Wait until the worker has committed every source record and the projection every outcome."""
        async def caught_up() -> bool:
            worker = await group_lag(self.settings, self.settings.processor_group)
            projection = await group_lag(self.settings, self.settings.projection_group)
            return worker.rows != [] and worker.total_lag == 0 and projection.total_lag == 0

        await wait_for(caught_up, timeout=60, every=0.5, what="the worker and the projection to catch up")

    async def rerun_from_earliest(self) -> None:
        """Reset the processor group to the earliest offsets and run the fixed worker until every event has a
        new outcome; keep the states before and after, and the new worker's metrics, for the tests."""
        before = await self.states()
        plan = await self.stop_worker_and_reset()
        # Every record is read again, re-published copies too.
        assert plan["executed"] and plan["to_reprocess"] == sum(self.copies.values())
        self.start_fixed_worker()
        await self.wait_until(lambda now: all(s.status == "processed" and s.processed_at > before[i].processed_at
                                              for i, s in now.items()), "a new outcome of every event")
        await self.settle()
        self.reruns.append((before, await self.states(), await asyncio.to_thread(self.metrics)))

    def start_fixed_worker(self) -> None:
        self.worker = self.start("worker", self.settings.model_copy(update={"worker_metrics_port": self.metrics_port}))

    def metrics(self) -> dict[str, float]:
        """Worker metrics summed over labels, by sample name."""
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        sums: Counter[str] = Counter()
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                sums[sample.name] += sample.value
        return dict(sums)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BrokenWorker(Service):
    def start(self) -> Service:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen([sys.executable, "-c", BROKEN_WORKER], env=settings_env(self.settings),
                                        stdout=log, stderr=log, cwd=ROOT)
        return self


@pytest.fixture(scope="module")
async def broken_run(settings_factory: SettingsFactory, service_factory: Any, database_url: str,
                     tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scenario]:
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


async def fixed_handler_facts(events: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    tables = {"funnel": "funnel_facts", "attribution": "attribution_touches", "ai_action": "ai_action_facts",
              "message": "message_facts", "sequence_step": "sequence_step_facts"}
    facts: dict[str, Counter[str]] = {table: Counter() for table in FACT_TABLES}
    for raw in events:
        event = decode_event(encode(raw), max_bytes=1 << 20)
        for handler in DEFAULT_REGISTRY.handlers_for(event.type):
            for out in await handler.fn(event):
                if isinstance(out, Fact):
                    facts[tables[out.kind]][_row_key(out.model_dump(exclude={"kind"}))] += 1
    return facts


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    return value


def _row_key(row: dict[str, Any]) -> str:
    return repr(sorted((k, _plain(v)) for k, v in row.items() if k != "updated_at"))


async def fact_snapshot(scenario: Scenario) -> dict[str, Counter[str]]:
    snapshot = {}
    for table in FACT_TABLES:
        found = await scenario.rows(f"SELECT * FROM {table} WHERE event_id = ANY(:ids)", ids=scenario.ids)
        snapshot[table] = Counter(_row_key(r) for r in found)
    return snapshot


async def view_snapshot(scenario: Scenario, tenants: tuple[str, ...] = TENANTS) -> dict[str, list[str]]:
    return {view: sorted(_row_key(r) for r in await scenario.rows(f"SELECT * FROM {view} WHERE tenant_id = ANY(:t)",
                                                                    t=list(tenants)))
            for view in VIEWS}


def by_type(scenario: Scenario, event_type: EventType) -> list[UUID]:
    return [UUID(e["id"]) for e in scenario.events if e["type"] == event_type.value]




async def test_1_broken_handlers_fail_events_and_record_wrong_facts(broken_run: Scenario) -> None:
    now = await broken_run.states()
    steps = set(by_type(broken_run, EventType.SEQUENCE_STEP_EXECUTED))
    assert {i for i, s in now.items() if s.status == "failed"} == steps
    campaigns = await broken_run.rows("SELECT DISTINCT campaign FROM attribution_touches WHERE event_id = ANY(:ids) "
                                      "AND touch = 'first_touch'", ids=broken_run.ids)
    assert campaigns == [{"campaign": "BROKEN"}]
    assert await broken_run.rows("SELECT * FROM sequence_step_facts WHERE event_id = ANY(:ids)", ids=broken_run.ids) == []


async def test_1_replay_failed_republishes_the_oldest_failed_events(broken_run: Scenario) -> None:
    done = await asyncio.to_thread(broken_run.cli, "replay", "failed", "--type", "sequence.step_executed",
                                   "--limit", "2", "--json")
    results = orjson.loads(done.stdout)["results"]
    assert [r["status"] for r in results] == ["republished", "republished"]
    chosen = {UUID(r["event_id"]) for r in results}
    oldest = sorted((e["time"], e["id"]) for e in broken_run.events if e["type"] == "sequence.step_executed")[:2]
    assert chosen == {UUID(i) for _, i in oldest}
    # Re-published to the original partition, at a new offset.
    assert all(r["republished"]["topic"] == r["original"]["topic"]
               and r["republished"]["partition"] == r["original"]["partition"]
               and r["republished"]["offset"] > r["original"]["offset"] for r in results)
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
    errors = await fixed_run.rows("SELECT count(*) AS n FROM events WHERE id = ANY(:ids) AND error_message IS NOT NULL",
                                  ids=fixed_run.ids)
    assert errors == [{"n": 0}]
    assert fixed_run.seen_pending_after_final == []


def assert_counted_as_replays(scenario: Scenario) -> None:
    before, after, metrics = scenario.reruns[-1]
    for event_id, state in after.items():
        # One more per record read; copies of one event projected in one batch count once.
        assert before[event_id].replay_count + 1 <= state.replay_count <= before[event_id].replay_count + \
            scenario.copies[event_id], event_id
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
    await scenario.wait_until(lambda now: now[target].replay_count == before[target].replay_count + 1,
                              "the replayed event")
    await scenario.settle()
    after = await scenario.states()
    assert {i: s for i, s in after.items() if i != target} == {i: s for i, s in before.items() if i != target}
    assert after[target].processed_at > before[target].processed_at
    assert await fact_snapshot(scenario) == facts
    metrics = await asyncio.to_thread(scenario.metrics)
    assert metrics["salesflow_events_replayed_total"] == metrics_before["salesflow_events_replayed_total"] + 1
    assert metrics.get("salesflow_event_freshness_seconds_count", 0) == \
        metrics_before.get("salesflow_event_freshness_seconds_count", 0)
