"""What the replay tools ask Kafka: group state and members, committed offsets, log start and end,
offsets by time, and committing new offsets for an idle group.

aiokafka has no admin call to alter a group's offsets, so ``commit_group_offsets`` does what Kafka's
own tool does underneath: a consumer with the group id, partitions assigned by hand (it never joins
the group), and one commit, which the coordinator accepts only while the group has no members.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import for_code
from aiokafka.structs import TopicPartition

from salesflow.errors import GroupHasLiveMembers, InvalidResetRequest
from salesflow.kafka_admin import admin_client, plain_consumer
from salesflow.kafka_clients import client_options
from salesflow.replay.targets import TopicScope
from salesflow.settings import Settings

log = logging.getLogger(__name__)

# Kafka's tool alters offsets only in these states; any other state means live members.
IDLE_STATES = frozenset({"Empty", "Dead"})


@dataclass(frozen=True)
class Member:
    member_id: str
    client_id: str
    host: str
    partitions: tuple[TopicPartition, ...] = ()


@dataclass(frozen=True)
class GroupDescription:
    group: str
    state: str
    members: tuple[Member, ...] = field(default_factory=tuple)

    @property
    def idle(self) -> bool:
        return self.state in IDLE_STATES and not self.members

    def owner(self, tp: TopicPartition) -> Member | None:
        return next((m for m in self.members if tp in m.partitions), None)


class KafkaTools:
    """An admin client and a group-less consumer, for reading offsets and group state."""

    def __init__(self, settings: Settings, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> None:
        self.settings = settings
        self.admin = admin
        self.consumer = consumer

    async def describe_group(self, group: str) -> GroupDescription:
        # One group per request: aiokafka fails to decode some multi-group DescribeGroups answers.
        (response,) = await self.admin.describe_consumer_groups([group])
        (found,) = response.to_object()["groups"]
        if found["error_code"]:
            raise for_code(found["error_code"])(f"cannot describe group {group!r}")
        members = tuple(
            Member(m["member_id"], m["client_id"], m["client_host"].lstrip("/"), _assigned(m["member_assignment"]))
            for m in found["members"]
        )
        return GroupDescription(group, found["state"], members)

    async def ensure_idle(self, group: str) -> GroupDescription:
        """Raise ``GroupHasLiveMembers`` unless the group is empty (or unknown)."""
        described = await self.describe_group(group)
        if not described.idle:
            raise GroupHasLiveMembers(group, described.state, len(described.members))
        return described

    async def committed(self, group: str) -> dict[TopicPartition, int]:
        """The group's committed offsets; partitions without one are left out."""
        found = await self.admin.list_consumer_group_offsets(group)
        return {TopicPartition(tp.topic, tp.partition): meta.offset for tp, meta in found.items() if meta.offset >= 0}

    async def partitions(self, scopes: Iterable[TopicScope]) -> list[TopicPartition]:
        """Every partition a list of ``--topic`` scopes names; unknown topics or partitions are refused."""
        scopes = list(scopes)
        known = await self.topic_partitions([s.topic for s in scopes])
        result: list[TopicPartition] = []
        for scope in scopes:
            existing = known[scope.topic]
            wanted = scope.partitions if scope.partitions is not None else existing
            missing = sorted(set(wanted) - set(existing))
            if missing:
                raise InvalidResetRequest(
                    f"topic {scope.topic!r} has no partition {', '.join(map(str, missing))} (it has {len(existing)})"
                )
            result.extend(TopicPartition(scope.topic, p) for p in wanted)
        return sorted(set(result))

    async def topic_partitions(self, topics: Iterable[str]) -> dict[str, tuple[int, ...]]:
        topics = sorted(set(topics))
        if not topics:
            return {}
        described = await self.admin.describe_topics(topics)
        found: dict[str, tuple[int, ...]] = {}
        for topic in described:
            if topic["error_code"]:
                raise InvalidResetRequest(f"topic {topic['topic']!r} does not exist")
            found[topic["topic"]] = tuple(sorted(p["partition"] for p in topic["partitions"]))
        return found

    async def log_starts(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        tps = list(tps)
        return dict(await self.consumer.beginning_offsets(tps)) if tps else {}

    async def log_ends(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        tps = list(tps)
        return dict(await self.consumer.end_offsets(tps)) if tps else {}

    async def offsets_at(self, tps: Iterable[TopicPartition], timestamp_ms: int) -> dict[TopicPartition, int | None]:
        """The first offset whose timestamp is at or after ``timestamp_ms``; None where there is none."""
        tps = list(tps)
        if not tps:
            return {}
        found = await self.consumer.offsets_for_times({tp: max(timestamp_ms, 0) for tp in tps})
        return {tp: (hit.offset if hit is not None else None) for tp, hit in found.items()}


@asynccontextmanager
async def kafka_tools(settings: Settings) -> AsyncIterator[KafkaTools]:
    async with admin_client(settings) as admin, plain_consumer(settings) as consumer:
        yield KafkaTools(settings, admin, consumer)


async def commit_group_offsets(settings: Settings, group: str, offsets: Mapping[TopicPartition, int]) -> None:
    """Commit ``offsets`` for ``group`` without joining it (the group must have no live members)."""
    if not offsets:
        return
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = list(offsets)
        consumer.assign(tps)
        consumer.pause(*tps)  # assigned only to commit: fetch nothing
        await consumer.commit(dict(offsets))
    finally:
        await consumer.stop()


def _assigned(raw: bytes | None) -> tuple[TopicPartition, ...]:
    if not raw:
        return ()
    try:
        decoded = ConsumerProtocolMemberAssignment.decode(raw)
    except Exception:
        log.debug("could not decode a member assignment of %d bytes", len(raw))
        return ()
    return tuple(TopicPartition(tp.topic, tp.partition) for tp in decoded.partitions())
