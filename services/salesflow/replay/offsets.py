"""``salesflow replay offsets``: plan (and on request apply) a reset of a consumer group's offsets.

The scope and the targets are those of ``kafka-consumer-groups --reset-offsets``; so is the refusal
to touch a group with live members, for the plan too (offsets move under a live group). The plan is
computed by ``replay.plan``; this module reads what it needs from Kafka and commits the result.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.structs import TopicPartition

from salesflow.errors import InvalidResetRequest, ReplayError
from salesflow.replay.kafka_tools import KafkaTools, commit_group_offsets, kafka_tools
from salesflow.replay.plan import PartitionState, ResetPlan, compute_plan
from salesflow.replay.targets import ResetTarget, TopicScope
from salesflow.settings import Settings


async def reset_offsets(
    settings: Settings,
    group: str,
    target: ResetTarget,
    *,
    topics: Sequence[TopicScope] = (),
    all_topics: bool = False,
    execute: bool = False,
) -> ResetPlan:
    """The plan for ``group``; with ``execute`` it is committed, and read back to confirm it."""
    async with kafka_tools(settings) as tools:
        plan = await build_plan(tools, group, target, topics=topics, all_topics=all_topics)
        if execute:
            await tools.ensure_idle(group)  # again: a member may have joined while we planned
            await commit_group_offsets(settings, group, plan.offsets)
            committed = await tools.committed(group)
            wrong = {tp: o for tp, o in plan.offsets.items() if committed.get(tp) != o}
            if wrong:
                raise ReplayError(f"offsets of group {group!r} not as planned after the commit: {wrong}")
            plan.executed = True
        return plan


async def build_plan(
    tools: KafkaTools,
    group: str,
    target: ResetTarget,
    *,
    topics: Sequence[TopicScope] = (),
    all_topics: bool = False,
) -> ResetPlan:
    """Read the group and its partitions, and compute where each offset goes."""
    _check_scope(target, topics, all_topics)
    await tools.ensure_idle(group)
    committed = await tools.committed(group)
    partitions = await _partitions_in_scope(tools, target, topics, all_topics, committed)
    starts = await tools.log_starts(partitions)
    ends = await tools.log_ends(partitions)
    at_time: dict[TopicPartition, int | None] = {}
    if target.uses_time and target.timestamp_ms is not None:
        at_time = await tools.offsets_at(partitions, target.timestamp_ms)
    states = {
        tp: PartitionState(log_start=starts[tp], log_end=ends[tp], committed=committed.get(tp), at_time=at_time.get(tp))
        for tp in partitions
    }
    return compute_plan(group, target, states)


def _check_scope(target: ResetTarget, topics: Sequence[TopicScope], all_topics: bool) -> None:
    if target.kind == "from-file":
        if topics or all_topics:
            raise InvalidResetRequest("--from-file takes its partitions from the file: leave out --topic/--all-topics")
        return
    if bool(topics) == all_topics:
        raise InvalidResetRequest("name the scope: one or more --topic T[:P,...], or --all-topics")


async def _partitions_in_scope(
    tools: KafkaTools,
    target: ResetTarget,
    topics: Sequence[TopicScope],
    all_topics: bool,
    committed: dict[TopicPartition, int],
) -> list[TopicPartition]:
    if all_topics:
        # As Kafka's tool: "all topics" are those the group has committed offsets for.
        return sorted(committed)
    if target.kind == "from-file":
        requested = sorted(target.requested)
        scopes = [
            TopicScope(t, tuple(tp.partition for tp in requested if tp.topic == t))
            for t in sorted({tp.topic for tp in requested})
        ]
        return await tools.partitions(scopes)
    return await tools.partitions(topics)
