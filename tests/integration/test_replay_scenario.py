"""The harness of ``test_replay_recompute.py`` (no tests here): lead journeys, a worker with broken
handlers, and a ``Scenario`` that runs the worker, resets its group with the CLI, waits on Postgres and
the groups' lag, and snapshots fact tables, views and the worker's metrics."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID, uuid4

import msgspec
import orjson
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.domain.decoding import decode_event
from salesflow.domain.events import EventType
from salesflow.domain.outputs import Fact
from salesflow.domain.upcasting import upcast
from salesflow.handlers import DEFAULT_REGISTRY
from salesflow.producer.envelope import encode
from salesflow.replay.group_lag import group_lag
from salesflow.replay.kafka_tools import kafka_tools
from salesflow.settings import Settings
from salesflow.testing.factories import event_dict
from tests.harness import ROOT, Service, settings_env, wait_for

RUN = uuid4().hex[:6]
TENANTS = (f"acme-{RUN}", f"globex-{RUN}")
FACT_TABLES = ("funnel_facts", "attribution_touches", "ai_action_facts", "message_facts", "sequence_step_facts")
VIEWS = ("funnel_daily", "ai_roi_daily", "attribution_daily")

# The worker of step 1: the default handlers, two of them broken.
BROKEN_WORKER = """
import msgspec

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
            return [msgspec.structs.replace(o, campaign="BROKEN") for o in await handler.fn(event)]
        return fn
    return handler.fn

registry = HandlerRegistry()
for event_type in DEFAULT_REGISTRY.table():
    for handler in DEFAULT_REGISTRY.handlers_for(event_type):
        registry.register(event_type, name=handler.name)(broken(handler))
bootstrap.run_worker(Settings(), registry)  # the engine of SALESFLOW_WORKER_ENGINE
"""


def journeys() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for tenant in TENANTS:
        for n in range(3):
            lead, t = f"lead-{n}", n * 10.0
            events.append(event_dict(EventType.LEAD_CREATED, tenant, t, lead_id=lead, autopilot=n % 2 == 0))
            if n % 2 == 0:
                events.append(
                    event_dict(
                        EventType.AUTOPILOT_ACTION_EXECUTED,
                        tenant,
                        t + 1,
                        lead_id=lead,
                        action_id=f"act-{n}",
                        cost_usd=0.25,
                        value_usd=2.5,
                    )
                )
            events.append(event_dict(EventType.MESSAGE_SENT, tenant, t + 2, lead_id=lead, message_id=f"m-{n}"))
            for step in range(2):
                events.append(
                    event_dict(
                        EventType.SEQUENCE_STEP_EXECUTED,
                        tenant,
                        t + 3 + step,
                        lead_id=lead,
                        step_index=step,
                        step_count=2,
                        status="executed",
                    )
                )
    return events


@dataclass(frozen=True)
class State:
    status: str
    replay_count: int
    processed_at: datetime | None


def later(new: datetime | None, old: datetime | None) -> bool:
    """``new > old``; both must be set (a processed event has its time)."""
    assert new is not None and old is not None, f"no processing time: {new!r}, {old!r}"
    return new > old


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
        done = subprocess.run(
            [sys.executable, "-m", "salesflow.cli.main", *args],
            env=settings_env(self.settings),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"salesflow {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done

    async def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(text(sql), params)]

    async def states(self) -> dict[UUID, State]:
        found = await self.rows(
            "SELECT id, status, replay_count, processed_at FROM events WHERE id = ANY(:ids)", ids=self.ids
        )
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
        done = await asyncio.to_thread(
            self.cli, "replay", "offsets", "--all-topics", "--to-earliest", "--execute", "--json"
        )
        plan: dict[str, Any] = orjson.loads(done.stdout)
        return plan

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
        await self.wait_until(
            lambda now: all(
                s.status == "processed" and later(s.processed_at, before[i].processed_at) for i, s in now.items()
            ),
            "a new outcome of every event",
        )
        await self.settle()
        self.reruns.append((before, await self.states(), await asyncio.to_thread(self.metrics)))

    def start_fixed_worker(self) -> None:
        self.worker = self.start("worker", self.settings.model_copy(update={"worker_metrics_port": self.metrics_port}))

    def metrics(self) -> dict[str, float]:
        """Worker metrics summed over labels, by sample name."""
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        sums: defaultdict[str, float] = defaultdict(float)
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
        self.process = subprocess.Popen(
            [sys.executable, "-c", BROKEN_WORKER], env=settings_env(self.settings), stdout=log, stderr=log, cwd=ROOT
        )
        return self


async def fixed_handler_facts(events: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    facts: dict[str, Counter[str]] = {table: Counter() for table in FACT_TABLES}
    for raw in events:
        event = decode_event(encode(raw), max_bytes=1 << 20)
        for handler in DEFAULT_REGISTRY.handlers_for(event.type):
            # as dispatch does: the event upcast to the payload version the handler takes
            for out in await handler.fn(upcast(event, handler.takes or type(event.data))) or ():
                if isinstance(out, Fact):
                    facts[out.table][_row_key(msgspec.structs.asdict(out))] += 1
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
    return {
        view: sorted(
            _row_key(r) for r in await scenario.rows(f"SELECT * FROM {view} WHERE tenant_id = ANY(:t)", t=list(tenants))
        )
        for view in VIEWS
    }


def by_type(scenario: Scenario, event_type: EventType) -> list[UUID]:
    return [UUID(e["id"]) for e in scenario.events if e["type"] == event_type.value]
