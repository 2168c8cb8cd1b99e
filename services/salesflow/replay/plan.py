"""An offset-reset plan, computed the way Kafka's ``kafka-consumer-groups --reset-offsets`` computes it.

Pure: the caller reads each partition's log start and end, the group's committed offset and (for a
time target) the first offset at or after the time; ``compute_plan`` decides. Kafka's rules, kept:
- ``--to-offset``, ``--shift-by`` and ``--from-file`` are clamped to [log start, log end], with a warning;
- but a negative offset in ``--from-file`` is refused ("Invalid negative offset"), not clamped;
- ``--to-datetime`` and ``--by-duration`` fall back to the log end where no record is that recent;
- ``--shift-by`` needs a committed offset; ``--to-current`` falls back to the log end without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka.structs import TopicPartition

from salesflow.errors import InvalidResetRequest
from salesflow.replay.targets import ResetTarget


@dataclass(frozen=True)
class PartitionState:
    """What the plan needs to know about one partition."""

    log_start: int
    log_end: int
    committed: int | None = None
    at_time: int | None = None  # first offset whose timestamp is >= the target time; None: no such record


@dataclass(frozen=True)
class PlanRow:
    topic: str
    partition: int
    current_offset: int | None
    new_offset: int
    log_start_offset: int
    log_end_offset: int

    @property
    def to_reprocess(self) -> int | None:
        """Records the group has processed and will process again (None: nothing committed yet)."""
        return None if self.current_offset is None else max(self.current_offset - self.new_offset, 0)

    @property
    def to_skip(self) -> int | None:
        """Records the group has not processed yet and will now skip."""
        return None if self.current_offset is None else max(self.new_offset - self.current_offset, 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "current_offset": self.current_offset,
            "new_offset": self.new_offset,
            "log_start_offset": self.log_start_offset,
            "log_end_offset": self.log_end_offset,
            "to_reprocess": self.to_reprocess,
            "to_skip": self.to_skip,
        }


@dataclass
class ResetPlan:
    """The new offset of each partition in scope, and what Kafka's tool would have warned about."""

    group: str
    target: ResetTarget
    rows: list[PlanRow]
    warnings: list[str] = field(default_factory=list)
    executed: bool = False

    @property
    def offsets(self) -> dict[TopicPartition, int]:
        return {TopicPartition(r.topic, r.partition): r.new_offset for r in self.rows}

    @property
    def total_to_reprocess(self) -> int:
        return sum(r.to_reprocess or 0 for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "target": self.target.describe(),
            "executed": self.executed,
            "partitions": [r.as_dict() for r in self.rows],
            "to_reprocess": self.total_to_reprocess,
            "warnings": self.warnings,
        }


def compute_plan(group: str, target: ResetTarget, states: Mapping[TopicPartition, PartitionState]) -> ResetPlan:
    """The new offset of every partition in ``states``, by ``target``'s rule."""
    warnings: list[str] = []
    rows = []
    for tp in sorted(states):
        state = states[tp]
        new = _new_offset(tp, target, state, warnings)
        rows.append(PlanRow(tp.topic, tp.partition, state.committed, new, state.log_start, state.log_end))
    return ResetPlan(group=group, target=target, rows=rows, warnings=warnings)


def _new_offset(tp: TopicPartition, target: ResetTarget, state: PartitionState, warnings: list[str]) -> int:
    kind = target.kind
    if kind == "to-earliest":
        return state.log_start
    if kind == "to-latest":
        return state.log_end
    if kind == "to-current":
        return state.committed if state.committed is not None else state.log_end
    if kind == "to-offset":
        return clamp(tp, _required(target.offset), state, warnings)
    if kind == "shift-by":
        if state.committed is None:
            raise InvalidResetRequest(
                f"cannot shift the offset of {tp.topic}-{tp.partition}: the group has no committed offset there"
            )
        return clamp(tp, state.committed + _required(target.offset), state, warnings)
    if kind == "from-file":
        if target.requested[tp] < 0:
            raise InvalidResetRequest(f"invalid negative offset {target.requested[tp]} for {tp.topic}-{tp.partition}")
        return clamp(tp, target.requested[tp], state, warnings)
    if target.uses_time:
        if state.at_time is None:
            warnings.append(
                f"no record of {tp.topic}-{tp.partition} at or after the requested time: "
                f"falling back to the latest offset {state.log_end}"
            )
            return state.log_end
        return state.at_time
    raise InvalidResetRequest(f"unknown reset target {kind!r}")


def clamp(tp: TopicPartition, offset: int, state: PartitionState, warnings: list[str]) -> int:
    """Kafka's range check: above the log end becomes the log end, below the log start the log start."""
    if offset > state.log_end:
        warnings.append(
            f"new offset ({offset}) is higher than the latest offset of {tp.topic}-{tp.partition}: "
            f"set to {state.log_end}"
        )
        return state.log_end
    if offset < state.log_start:
        warnings.append(
            f"new offset ({offset}) is lower than the earliest offset of {tp.topic}-{tp.partition}: "
            f"set to {state.log_start}"
        )
        return state.log_start
    return offset


def _required(value: int | None) -> int:
    if value is None:
        raise InvalidResetRequest("this reset target needs a number")
    return value
