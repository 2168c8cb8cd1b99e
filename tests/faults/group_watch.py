"""Watch a consumer group from outside (the admin API, as ``kafka-consumer-groups --describe`` does),
for any engine and group protocol: who holds which partitions, and whether the group rebalanced."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from salesflow.kafka_clients import librdkafka_options
from salesflow.settings import Settings

Assignment = dict[str, frozenset[tuple[str, int]]]  # member (its instance id, else its member id) -> partitions


@dataclass
class Sample:
    at: float  # time.monotonic()
    state: str
    assignment: Assignment
    member_ids: frozenset[str]


@dataclass
class GroupWatch:
    """Samples ``group`` every ``every`` seconds until stopped."""

    settings: Settings
    group: str
    every: float = 0.5
    samples: list[Sample] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> GroupWatch:
        self._admin = AdminClient(librdkafka_options(self.settings))
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            try:
                self.samples.append(await asyncio.to_thread(self._describe))
            except Exception as exc:  # the broker may be busy: a missed sample is no verdict
                print(f"[group-watch] describe failed: {exc!r}")
            await asyncio.sleep(self.every)

    def _describe(self) -> Sample:
        (future,) = self._admin.describe_consumer_groups([self.group], request_timeout=5).values()
        group = future.result()
        assignment: Assignment = {
            member.group_instance_id or member.member_id: frozenset(
                (tp.topic, tp.partition) for tp in member.assignment.topic_partitions
            )
            for member in group.members
        }
        state = group.state.name if isinstance(group.state, ConsumerGroupState) else str(group.state)
        return Sample(time.monotonic(), state, assignment, frozenset(m.member_id for m in group.members))

    async def until_settled(self, members: int, timeout: float = 120) -> Assignment:
        """Wait until the group is stable with ``members`` members that all hold partitions."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = self.samples[-1] if self.samples else None
            if last and last.state == "STABLE" and len(last.assignment) == members and all(last.assignment.values()):
                return last.assignment
            await asyncio.sleep(self.every)
        raise AssertionError(f"group {self.group} did not settle with {members} members: {self.samples[-3:]}")

    async def until_rejoined(self, since: float, members: int, timeout: float = 120) -> float:
        """Wait until a member id unseen before ``since`` is in the group, with ``members`` members
        all holding partitions (a restarted static member replaces its old id); returns when."""
        before = {m for s in self.samples if s.at < since for m in s.member_ids}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for sample in (s for s in self.samples if s.at >= since):
                if sample.member_ids - before and len(sample.assignment) == members and all(sample.assignment.values()):
                    return sample.at
            await asyncio.sleep(self.every)
        raise AssertionError(f"no new member joined group {self.group}: {self.samples[-3:]}")

    def rebalances_since(self, since: float, baseline: Assignment) -> int:
        """How many times the group was disturbed after ``since``: a run of samples out of the stable
        state, or holding another assignment than the last stable one, counts once. A static member
        that restarts keeps its id and its partitions: no rebalance."""
        later = [s for s in self.samples if s.at >= since]
        assert later, "no sample of the group after the fault"
        reference, disturbed, count = baseline, False, 0
        for sample in later:
            now_disturbed = sample.state != "STABLE" or (bool(sample.assignment) and sample.assignment != reference)
            if now_disturbed and not disturbed:
                count += 1
            if sample.state == "STABLE" and sample.assignment:
                reference = sample.assignment
                # A stable sample ends the episode, whatever assignment it settled on.
                now_disturbed = False
            disturbed = now_disturbed
        return count
