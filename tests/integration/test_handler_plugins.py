"""Installed handler plugins in a real worker, on the real broker and database.

The example plugin (``examples/lead_scoring``) and a faulty one (``handler_plugins/faulty_plugin``)
are installed with pip into a folder of this test only (never into the shared venv), and that
folder is put on the worker's PYTHONPATH, where ``importlib.metadata`` finds their entry points.

One scenario in steps (module fixtures, in order):
1. a first run: lead scores and alerts written once per event; a transient failure retried; a
   permanent one makes the event ``failed`` with its error, its writes rolled back;
2. the worker SIGKILLed between processing and its offset commit, restarted: the re-delivered
   records leave every row as it was;
3. a replay by offset reset: the score (``on_replay="recompute"``) runs again to the same result,
   the alert (``"skip"``) does not.
Apart from it: start-up refuses a handler with an unknown dependency, in one line.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from salesflow.bootstrap import event_producer
from salesflow.db.engine import create_engine
from salesflow.domain.events import EventType
from salesflow.kafka_admin import create_topics, read_topic
from salesflow.replay.group_lag import group_lag
from salesflow.replay.kafka_tools import kafka_tools
from salesflow.settings import Settings
from salesflow.testing import event_dict
from tests.conftest import SettingsFactory
from tests.harness import ROOT, Service, settings_env, wait_for

pytestmark = pytest.mark.integration

PLUGINS = (ROOT / "examples" / "lead_scoring", ROOT / "tests" / "integration" / "handler_plugins" / "faulty_plugin")
# The scoring rules of the example, written out again: the test's own oracle.
SOURCE_POINTS = {"referral": 30, "web_form": 20, "api": 10, "import": 5}
SOURCES = list(SOURCE_POINTS)
TENANTS = ("acme", "globex")
RESET_COMMAND = ("replay", "offsets", "--all-topics", "--to-earliest", "--execute", "--json")


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two plugins, pip-installed (no dependencies) into a folder of their own. Built from copies:
    setuptools writes build/ and *.egg-info/ next to the sources it builds."""
    target, sources = tmp_path_factory.mktemp("plugins"), tmp_path_factory.mktemp("plugin-sources")
    copies = [
        shutil.copytree(p, sources / p.name, ignore=shutil.ignore_patterns("build", "*.egg-info")) for p in PLUGINS
    ]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), *map(str, copies)],
        check=True,
        timeout=300,
    )
    return target


@contextmanager
def on_pythonpath(path: Path) -> Iterator[None]:
    """Child processes started inside see ``path`` first on their PYTHONPATH (``settings_env`` copies
    this process's environment)."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(path), before)))
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before


def journey(tenant: str, lead: str, source: str, *, action: bool) -> list[dict[str, Any]]:
    events = [event_dict(EventType.LEAD_CREATED, tenantid=tenant, lead_id=lead, source=source)]
    events.append(event_dict(EventType.MESSAGE_SENT, tenantid=tenant, lead_id=lead, message_id=f"m-{lead}"))
    if action:
        events.append(event_dict(EventType.AUTOPILOT_ACTION_EXECUTED, tenantid=tenant, lead_id=lead))
    return events


def journeys(tag: str, leads: int) -> list[dict[str, Any]]:
    return [
        e
        for tenant in TENANTS
        for n in range(leads)
        for e in journey(tenant, f"{tag}-{n}", SOURCES[n % len(SOURCES)], action=n % 2 == 0)
    ]


def expected_scores(events: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[int, int]]:
    """(tenant, lead) -> (score, scored events): the example's rules applied by hand."""
    score: Counter[tuple[str, str]] = Counter()
    scored: Counter[tuple[str, str]] = Counter()
    for e in events:
        key = (e["tenantid"], e["data"]["lead_id"])
        scored[key] += 1
        if e["type"] == "lead.created":
            score[key] += SOURCE_POINTS[e["data"]["source"]]
        elif e["type"] == "message.sent":
            score[key] += 5
        else:
            score[key] += 10 if e["data"]["outcome"] == "succeeded" else 0
    return {key: (score[key], scored[key]) for key in scored}


@dataclass
class Run:
    settings: Settings
    engine: AsyncEngine
    start: Callable[[], Service]
    events: list[dict[str, Any]] = field(default_factory=list)
    worker: Service | None = None

    @property
    def ids(self) -> list[uuid.UUID]:
        return [uuid.UUID(e["id"]) for e in self.events]

    async def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(text(sql), params)]

    async def produce(self, events: list[dict[str, Any]]) -> None:
        self.events.extend(events)
        async with event_producer(self.settings) as producer:
            assert not (await producer.send_all(events)).failed

    async def wait_final(self, what: str, newer_than: Any = None) -> None:
        async def done() -> bool:
            found = await self.rows(
                "SELECT count(*) AS n FROM events WHERE id = ANY(:ids) AND status IN ('processed', 'failed')"
                + (" AND processed_at > :t" if newer_than is not None else ""),
                ids=self.ids,
                **({"t": newer_than} if newer_than is not None else {}),
            )
            return bool(found[0]["n"] == len(self.ids))

        await wait_for(done, timeout=120, every=0.5, what=what)

    async def settle(self) -> None:
        async def caught_up() -> bool:
            worker = await group_lag(self.settings, self.settings.processor_group)
            projection = await group_lag(self.settings, self.settings.projection_group)
            return worker.rows != [] and worker.total_lag == 0 and projection.total_lag == 0

        await wait_for(caught_up, timeout=90, every=0.5, what="the worker and the projection to catch up")

    async def snapshot(self) -> dict[str, Any]:
        """The plugin's rows, for comparing before and after."""
        return {
            "points": await self.rows(
                "SELECT tenant_id, event_id, lead_id, reason, points FROM lead_score_points ORDER BY 1, 2"
            ),
            "scores": await self.rows("SELECT tenant_id, lead_id, score, events FROM lead_scores ORDER BY 1, 2"),
            "alerts": await self.rows("SELECT tenant_id, lead_id, event_id FROM lead_alerts ORDER BY 1, 2, 3"),
            "faulty": await self.rows("SELECT event_id, lead_id FROM faulty_plugin_writes ORDER BY 1"),
        }

    async def runs(self, handler: str) -> dict[uuid.UUID, int]:
        found = await self.rows("SELECT event_id, runs FROM handler_effects WHERE handler = :h", h=handler)
        return {r["event_id"]: r["runs"] for r in found}

    async def check_written_once(self) -> None:
        """Every scored event has one ledger row, every lead its expected score, every referral one
        alert; the doomed events wrote nothing through the faulty plugin."""
        now = await self.snapshot()
        scored = self.events  # every event type the example scores
        assert Counter(r["event_id"] for r in now["points"]) == Counter(uuid.UUID(e["id"]) for e in scored)
        scores = {(r["tenant_id"], r["lead_id"]): (r["score"], r["events"]) for r in now["scores"]}
        assert scores == expected_scores(scored)
        referrals = [e for e in self.events if e["type"] == "lead.created" and e["data"]["source"] == "referral"]
        assert sorted(r["event_id"] for r in now["alerts"]) == sorted(uuid.UUID(e["id"]) for e in referrals)
        leads_created = [e for e in self.events if e["type"] == "lead.created"]
        not_doomed = [uuid.UUID(e["id"]) for e in leads_created if not e["data"]["lead_id"].startswith("doomed-")]
        assert sorted(r["event_id"] for r in now["faulty"]) == sorted(not_doomed)

    async def redelivered(self, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Events of ``ids`` processed more than once: two outcomes, an outcome with a handler skipped
        (its effects were there before: a first processing whose outcome was lost), or a second run."""
        records = await read_topic(self.settings, self.settings.topics.outcomes)
        outcomes = [orjson.loads(value) for _, value in records if value]
        wanted = set(ids)
        counts = Counter(uuid.UUID(o["event_id"]) for o in outcomes)
        skipped = {uuid.UUID(o["event_id"]) for o in outcomes if any(h["attempts"] == 0 for h in o["handlers"])}
        rerun = {i for i, runs in (await self.runs("lead_scoring.score")).items() if runs > 1}
        return wanted & ({i for i, n in counts.items() if n > 1} | skipped | rerun)

    async def stop_and_reset(self) -> None:
        assert self.worker is not None
        self.worker.stop()
        async with kafka_tools(self.settings) as tools:

            async def idle() -> bool:
                return (await tools.describe_group(self.settings.processor_group)).idle

            await wait_for(idle, timeout=60, what="the processor group to be empty")
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "salesflow.cli.main", *RESET_COMMAND],
            env=settings_env(self.settings),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
async def first_run(
    settings_factory: SettingsFactory, service_factory: Any, database_url: str, plugin_path: Path
) -> AsyncIterator[Run]:
    settings = settings_factory(handler_plugins="salesflow-lead-scoring,faulty")
    await create_topics(settings)
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(
            text("CREATE TABLE IF NOT EXISTS faulty_plugin_writes (event_id uuid PRIMARY KEY, lead_id text NOT NULL)")
        )

    def start_worker() -> Service:
        with on_pythonpath(plugin_path):
            started: Service = service_factory("worker", settings)
            return started

    run = Run(settings, engine, start_worker)
    service_factory("projection", settings)
    run.worker = run.start()
    try:
        flaky_and_doomed = [
            event_dict(EventType.LEAD_CREATED, tenantid="acme", lead_id=f"{kind}-{n}", source="api")
            for kind in ("flaky", "doomed")
            for n in range(2)
        ]
        await run.produce(journeys("first", 4) + flaky_and_doomed)
        await run.wait_final("the first run")
        yield run
    finally:
        if run.worker is not None:
            run.worker.stop()
        await engine.dispose()


async def test_1_the_plugins_write_their_rows_once_per_event(first_run: Run) -> None:
    await first_run.check_written_once()
    assert set((await first_run.runs("lead_scoring.score")).values()) == {1}
    assert set((await first_run.runs("lead_scoring.alert_on_referral")).values()) == {1}


async def test_1_a_transient_failure_is_retried_and_its_first_writes_rolled_back(first_run: Run) -> None:
    flaky = [e["id"] for e in first_run.events if e["data"]["lead_id"].startswith("flaky-")]
    rows = await first_run.rows(
        "SELECT status, attempts, error_message FROM events WHERE id = ANY(:ids)", ids=[uuid.UUID(i) for i in flaky]
    )
    assert rows == [{"status": "processed", "attempts": 2, "error_message": None}] * 2
    # Written on the first attempt and on the second: one row, so the first was rolled back.
    written = await first_run.rows(
        "SELECT count(*) AS n FROM faulty_plugin_writes WHERE lead_id LIKE 'flaky-%' AND event_id = ANY(:ids)",
        ids=[uuid.UUID(i) for i in flaky],
    )
    assert written == [{"n": 2}]


async def test_1_a_permanent_failure_marks_the_event_failed_with_its_error_and_rolls_back(first_run: Run) -> None:
    doomed = [uuid.UUID(e["id"]) for e in first_run.events if e["data"]["lead_id"].startswith("doomed-")]
    rows = await first_run.rows("SELECT status, error_message FROM events WHERE id = ANY(:ids)", ids=doomed)
    assert len(rows) == 2
    for row in rows:
        assert row["status"] == "failed"
        assert row["error_message"].startswith("faulty.enrich: ValueError: crm rejected lead doomed-")
    assert await first_run.rows("SELECT * FROM faulty_plugin_writes WHERE event_id = ANY(:ids)", ids=doomed) == []
    effects = await first_run.runs("faulty.enrich")
    assert not set(doomed) & set(effects)  # no idempotency record either: a replay may try again
    # The other handlers of those events still ran: the lead is scored.
    assert set(doomed) <= set(await first_run.runs("lead_scoring.score"))


@pytest.fixture(scope="module")
async def killed_run(first_run: Run) -> tuple[Run, int]:
    """Kill the worker (SIGKILL) as soon as it has processed part of a new batch, before Faust's
    next offset commit (every second); restart it. Until a re-delivery is seen, up to three rounds."""
    redelivered = 0
    for round_ in range(3):
        batch = journeys(f"kill{round_}", 25)
        batch_ids = [uuid.UUID(e["id"]) for e in batch]
        await first_run.produce(batch)

        async def some_applied(ids: list[uuid.UUID] = batch_ids) -> bool:
            found = await first_run.rows(
                "SELECT count(*) AS n FROM handler_effects WHERE event_id = ANY(:ids)", ids=ids
            )
            return bool(found[0]["n"] > 0)

        await wait_for(some_applied, timeout=60, every=0.05, what="the worker to apply part of the batch")
        assert first_run.worker is not None
        first_run.worker.kill()
        first_run.worker = first_run.start()
        await first_run.wait_final("the batch after the restart")
        await first_run.settle()
        redelivered = len(await first_run.redelivered(batch_ids))
        if redelivered:
            break
    return first_run, redelivered


async def test_2_records_redelivered_after_a_sigkill_leave_the_rows_as_they_were(killed_run: tuple[Run, int]) -> None:
    run, redelivered = killed_run
    assert redelivered > 0, "no record was re-delivered: the kill came after the commit three times"
    await run.check_written_once()
    assert set((await run.runs("lead_scoring.alert_on_referral")).values()) == {1}


@pytest.fixture(scope="module")
async def replayed_run(killed_run: tuple[Run, int]) -> tuple[Run, dict[str, Any], dict[str, dict[uuid.UUID, int]]]:
    run, _ = killed_run
    before = await run.snapshot()
    runs_before = {h: await run.runs(h) for h in ("lead_scoring.score", "lead_scoring.alert_on_referral")}
    started = (await run.rows("SELECT now() AS t"))[0]["t"]
    await run.stop_and_reset()
    run.worker = run.start()
    await run.wait_final("a new outcome of every event after the reset", newer_than=started)
    await run.settle()
    return run, before, runs_before


async def test_3_a_replay_recomputes_the_score_to_the_same_rows_and_skips_the_alert(replayed_run: Any) -> None:
    run, before, runs_before = replayed_run
    assert await run.snapshot() == before
    await run.check_written_once()
    score_runs = await run.runs("lead_scoring.score")
    # At least once more (a record re-read after a rebalance would count twice): recomputed, not skipped.
    assert all(score_runs[i] > runs_before["lead_scoring.score"][i] for i in runs_before["lead_scoring.score"])
    assert await run.runs("lead_scoring.alert_on_referral") == runs_before["lead_scoring.alert_on_referral"]


def test_the_cli_lists_plugin_handlers_with_their_origin_and_injections(
    settings_factory: SettingsFactory, plugin_path: Path
) -> None:
    with on_pythonpath(plugin_path):
        env = settings_env(settings_factory(handler_plugins="all"))
    env["COLUMNS"] = "250"
    done = subprocess.run(
        [sys.executable, "-m", "salesflow.cli.main", "handlers"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    score = [line for line in lines if "lead_scoring.score" in line and "lead.created" in line]
    assert len(score) == 1
    assert "plugin salesflow-lead-scoring (lead_scoring)" in score[0] and "db: db, event: event" in score[0]
    assert "recompute" in score[0]
    (alert,) = [line for line in lines if "lead_scoring.alert_on_referral" in line]
    assert "db: db, event: event, logger: logger" in alert and "skip" in alert
    (faulty,) = [line for line in lines if "faulty.enrich" in line]
    assert "plugin salesflow-faulty-plugin (faulty)" in faulty
    assert any("analytics.lead_funnel" in line and "built-in" in line for line in lines)


def test_plugins_none_loads_no_plugin(settings_factory: SettingsFactory, plugin_path: Path) -> None:
    with on_pythonpath(plugin_path):
        env = settings_env(settings_factory(handler_plugins="none"))
    env["COLUMNS"] = "250"
    done = subprocess.run(
        [sys.executable, "-m", "salesflow.cli.main", "handlers"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "analytics.lead_funnel" in done.stdout
    assert "lead_scoring" not in done.stdout and "faulty" not in done.stdout


def test_the_worker_refuses_to_start_with_an_unknown_dependency_in_one_line(settings_factory: SettingsFactory) -> None:
    settings = settings_factory(handler_modules="tests.integration.handler_plugins.bad_dependency")
    done = subprocess.run(
        [sys.executable, "-m", "salesflow.cli.main", "worker"],
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("error: handler 'crm.sync_lead': parameter 'crm_client' (object) is not a known")
