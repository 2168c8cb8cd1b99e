"""`salesflow replay offsets` against Kafka's own `kafka-consumer-groups --reset-offsets --dry-run`: the same
group, scope and target must give the same new offsets, clamping and fallbacks included. Also: --execute
applies the plan, a group with live members is refused, and `salesflow lag` agrees with `--describe`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.structs import TopicPartition

from salesflow.devstack import CONSUMER_GROUP_COMMAND, kafka_tool
from salesflow.domain.events import EventType
from salesflow.kafka_clients import aiokafka_producer, client_options
from salesflow.replay import targets
from salesflow.replay.group_lag import group_lag
from salesflow.replay.kafka_tools import commit_group_offsets
from salesflow.replay.offsets import reset_offsets
from salesflow.settings import Settings
from tests.conftest import SettingsFactory
from tests.harness import ROOT, settings_env

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000
# Records per partition of topic A (leads) and B (messages); A's partition 0 loses its first 2 records.
A_COUNTS = {0: 10, 1: 6, 2: 0}
B_COUNTS = {0: 5, 1: 0, 2: 3}
A_DELETED_BEFORE = 2
COMMITTED = {("A", 0): 7, ("A", 1): 3, ("B", 0): 5}


@dataclass
class World:
    settings: Settings
    group: str
    a: str
    b: str
    base_ms: int  # record i of every partition has timestamp base + i hours; base is 10 hours ago

    def tp(self, name: str, partition: int) -> TopicPartition:
        return TopicPartition(self.a if name == "A" else self.b, partition)


@pytest.fixture(scope="module")
async def world(settings_factory: SettingsFactory) -> AsyncIterator[World]:
    from salesflow.kafka_admin import create_topics

    settings = settings_factory()
    await create_topics(settings)
    found = World(
        settings,
        settings.processor_group,
        settings.topics.source(EventType.LEAD_CREATED),
        settings.topics.source(EventType.MESSAGE_SENT),
        int(time.time() * 1000) - 10 * HOUR_MS,
    )
    producer = aiokafka_producer(settings)
    await producer.start()
    try:
        for topic, counts in ((found.a, A_COUNTS), (found.b, B_COUNTS)):
            for partition, count in counts.items():
                for i in range(count):
                    await producer.send_and_wait(
                        topic, b"{}", key=b"k", partition=partition, timestamp_ms=found.base_ms + i * HOUR_MS
                    )
    finally:
        await producer.stop()
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        await admin.delete_records({found.tp("A", 0): RecordsToDelete(A_DELETED_BEFORE)})
    finally:
        await admin.close()
    await commit_group_offsets(settings, found.group, {found.tp(n, p): o for (n, p), o in COMMITTED.items()})
    yield found


def kafka_dry_run(world: World, *args: str) -> dict[TopicPartition, int]:
    """Kafka's own plan: `kafka-consumer-groups --reset-offsets ... --dry-run`, parsed."""
    done = kafka_tool(
        CONSUMER_GROUP_COMMAND,
        [
            "--bootstrap-server",
            world.settings.kafka_bootstrap_servers,
            "--group",
            world.group,
            "--reset-offsets",
            *args,
            "--dry-run",
        ],
    )
    assert done.returncode == 0, done.stdout + done.stderr
    plan: dict[TopicPartition, int] = {}
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[0] == world.group:
            plan[TopicPartition(fields[1], int(fields[2]))] = int(fields[3])
    assert plan, done.stdout + done.stderr
    return plan


def kafka_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# (id, our target, our scope, Kafka's arguments); "{A}", "{B}" and "{T}" are filled in per run.
CASES = [
    ("to-earliest", lambda w: targets.to_earliest(), ["{A}"], ["--to-earliest", "--topic", "{A}"]),
    ("to-latest-all-topics", lambda w: targets.to_latest(), "all", ["--to-latest", "--all-topics"]),
    (
        "to-offset-clamped-to-end",
        lambda w: targets.to_offset(4),
        ["{A}", "{B}:0,2"],
        ["--to-offset", "4", "--topic", "{A}", "--topic", "{B}:0,2"],
    ),
    ("to-offset-clamped-to-start", lambda w: targets.to_offset(1), ["{A}:0"], ["--to-offset", "1", "--topic", "{A}:0"]),
    ("shift-back-clamped", lambda w: targets.shift_by(-6), ["{A}:0,1"], ["--shift-by", "-6", "--topic", "{A}:0,1"]),
    ("shift-forward-clamped", lambda w: targets.shift_by(5), "all", ["--shift-by", "5", "--all-topics"]),
    (
        "to-datetime",
        lambda w: targets.to_datetime(kafka_time(w.base_ms + int(2.5 * HOUR_MS))),
        ["{A}", "{B}"],
        ["--to-datetime", "{T}", "--topic", "{A}", "--topic", "{B}"],
    ),
    (
        "by-duration",
        lambda w: targets.by_duration("PT5H30M"),
        ["{A}", "{B}"],
        ["--by-duration", "PT5H30M", "--topic", "{A}", "--topic", "{B}"],
    ),
    (
        "to-current",
        lambda w: targets.to_current(),
        ["{A}", "{B}:1"],
        ["--to-current", "--topic", "{A}", "--topic", "{B}:1"],
    ),
]


@pytest.mark.parametrize(("target", "scope", "kafka_args"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_our_plan_gives_the_offsets_kafkas_tool_gives(
    world: World, target: Callable[[World], targets.ResetTarget], scope: str | list[str], kafka_args: list[str]
) -> None:
    def fill(text: str) -> str:
        return text.format(A=world.a, B=world.b, T=kafka_time(world.base_ms + int(2.5 * HOUR_MS)))

    scopes = [] if scope == "all" else [targets.TopicScope.parse(fill(s)) for s in scope]
    ours = await reset_offsets(world.settings, world.group, target(world), topics=scopes, all_topics=scope == "all")
    theirs = await asyncio.to_thread(kafka_dry_run, world, *map(fill, kafka_args))
    assert ours.offsets == theirs
    assert not ours.executed


async def test_clamping_and_time_fallbacks_are_reported(world: World) -> None:
    topic_a = [targets.TopicScope(world.a)]
    clamped = await reset_offsets(world.settings, world.group, targets.to_offset(1), topics=topic_a)
    assert clamped.offsets == {world.tp("A", 0): A_DELETED_BEFORE, world.tp("A", 1): 1, world.tp("A", 2): 0}
    assert any("lower than the earliest" in w for w in clamped.warnings)
    assert any("higher than the latest" in w for w in clamped.warnings)  # the empty partition 2: end 0
    late = await reset_offsets(world.settings, world.group, targets.by_duration("PT1M"), topics=topic_a)
    assert late.offsets == {world.tp("A", p): (A_COUNTS[p]) for p in A_COUNTS}
    assert len(late.warnings) == 3 and all("falling back to the latest" in w for w in late.warnings)


async def test_from_file_matches_kafka(world: World, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.csv"
    plan_file.write_text(f"{world.a},0,5\n{world.a},1,100\n{world.b},2,1\n")
    ours = await reset_offsets(
        world.settings, world.group, targets.from_file(str(plan_file), plan_file.read_text(), world.group)
    )
    theirs = await asyncio.to_thread(kafka_dry_run, world, "--from-file", str(plan_file))
    assert ours.offsets == theirs == {world.tp("A", 0): 5, world.tp("A", 1): 6, world.tp("B", 2): 1}


def salesflow_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "salesflow.cli.main", *args],
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_execute_applies_the_plan_kafka_then_describes(settings_factory: SettingsFactory, world: World) -> None:
    group = f"{world.group}-exec"
    await commit_group_offsets(world.settings, group, {world.tp("A", 0): 9, world.tp("A", 1): 6})
    dry = await asyncio.to_thread(
        salesflow_cli,
        world.settings,
        "replay",
        "offsets",
        "--group",
        group,
        "--all-topics",
        "--shift-by",
        "-2",
        "--json",
    )
    assert dry.returncode == 0, dry.stderr
    assert orjson.loads(dry.stdout)["executed"] is False
    done = await asyncio.to_thread(
        salesflow_cli,
        world.settings,
        "replay",
        "offsets",
        "--group",
        group,
        "--all-topics",
        "--shift-by",
        "-2",
        "--execute",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    plan = orjson.loads(done.stdout)
    assert plan["executed"] is True and plan["to_reprocess"] == 4
    described = kafka_tool(
        CONSUMER_GROUP_COMMAND,
        ["--bootstrap-server", world.settings.kafka_bootstrap_servers, "--describe", "--group", group],
    )
    current = {
        (f[1], int(f[2])): int(f[3])
        for f in map(str.split, described.stdout.splitlines())
        if len(f) >= 6 and f[0] == group
    }
    assert current == {(world.a, 0): 7, (world.a, 1): 4}


async def test_a_group_with_live_members_is_refused(world: World) -> None:
    group = f"{world.group}-live"
    consumer = AIOKafkaConsumer(world.a, **client_options(world.settings), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=2000)  # joined and assigned
        refused = await asyncio.to_thread(
            salesflow_cli,
            world.settings,
            "replay",
            "offsets",
            "--group",
            group,
            "--topic",
            world.a,
            "--to-earliest",
            "--execute",
        )
        assert refused.returncode == 3
        assert "live member" in refused.stderr and "refused" in refused.stderr
        theirs = await asyncio.to_thread(
            kafka_tool,
            CONSUMER_GROUP_COMMAND,
            [
                "--bootstrap-server",
                world.settings.kafka_bootstrap_servers,
                "--group",
                group,
                "--reset-offsets",
                "--topic",
                world.a,
                "--to-earliest",
                "--dry-run",
            ],
        )
        assert "inactive" in theirs.stdout + theirs.stderr  # Kafka's tool refuses it too
    finally:
        await consumer.stop()


async def test_lag_agrees_with_kafkas_describe(world: World) -> None:
    asked_at = time.time()
    ours = await group_lag(world.settings, world.group)
    described = await asyncio.to_thread(
        kafka_tool,
        CONSUMER_GROUP_COMMAND,
        ["--bootstrap-server", world.settings.kafka_bootstrap_servers, "--describe", "--group", world.group],
    )
    rows = [f for f in map(str.split, described.stdout.splitlines()) if len(f) >= 6 and f[0] == world.group]
    theirs = {(f[1], int(f[2])): (int(f[3]), int(f[4]), int(f[5])) for f in rows}
    assert {(r.topic, r.partition): (r.current_offset, r.log_end_offset, r.lag) for r in ours.rows} == theirs
    seconds = {(r.topic, r.partition): r.lag_seconds for r in ours.rows}
    # A-1 is committed at 3: its oldest unprocessed record is 3 hours after base (base was 10 hours ago
    # when the module's fixture ran, so about 7 hours old, plus however long the module has run since).
    oldest = world.base_ms / 1000 + 3 * 3600
    assert seconds[(world.a, 1)] == pytest.approx(asked_at - oldest, abs=120)
    assert seconds[(world.b, 0)] == 0.0  # no lag
    cli = await asyncio.to_thread(salesflow_cli, world.settings, "lag", "--group", world.group)
    assert cli.returncode == 0 and "LAG-SECONDS" in cli.stdout and world.a in cli.stdout
