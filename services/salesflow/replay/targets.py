"""The scope and target of an offset reset, parsed as Kafka's ``kafka-consumer-groups`` parses them.

Pure: no I/O. ``--topic T`` or ``--topic T:0,1`` names the scope; one ``ResetTarget`` names where the
group's offsets go (``--to-earliest``, ``--to-offset N``, ``--to-datetime``, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from aiokafka.structs import TopicPartition

from salesflow.errors import InvalidResetRequest

ResetKind = Literal[
    "to-earliest", "to-latest", "to-offset", "shift-by", "to-datetime", "by-duration", "from-file", "to-current"
]


@dataclass(frozen=True)
class TopicScope:
    """``T`` (every partition of the topic) or ``T:0,1`` (those partitions)."""

    topic: str
    partitions: tuple[int, ...] | None = None

    @classmethod
    def parse(cls, spec: str) -> TopicScope:
        topic, sep, parts = spec.strip().partition(":")
        if not topic:
            raise InvalidResetRequest(f"--topic {spec!r}: no topic name")
        if not sep:
            return cls(topic)
        try:
            partitions = tuple(sorted({int(p) for p in parts.split(",") if p.strip()}))
        except ValueError:
            raise InvalidResetRequest(f"--topic {spec!r}: partitions must be integers, as in T:0,1") from None
        if not partitions or min(partitions) < 0:
            raise InvalidResetRequest(f"--topic {spec!r}: list the partitions, as in T:0,1")
        return cls(topic, partitions)


@dataclass(frozen=True)
class ResetTarget:
    """Where the offsets go. ``timestamp_ms`` is resolved when the target is built (as Kafka does for
    ``--by-duration``: now minus the duration), so a plan and its execution use the same instant."""

    kind: ResetKind
    argument: str = ""
    offset: int | None = None
    timestamp_ms: int | None = None
    requested: dict[TopicPartition, int] = field(default_factory=dict)

    def describe(self) -> str:
        return f"--{self.kind}" + (f" {self.argument}" if self.argument else "")

    @property
    def uses_time(self) -> bool:
        return self.kind in ("to-datetime", "by-duration")


def to_earliest() -> ResetTarget:
    return ResetTarget("to-earliest")


def to_latest() -> ResetTarget:
    return ResetTarget("to-latest")


def to_current() -> ResetTarget:
    return ResetTarget("to-current")


def to_offset(offset: int) -> ResetTarget:
    return ResetTarget("to-offset", str(offset), offset=offset)


def shift_by(delta: int) -> ResetTarget:
    return ResetTarget("shift-by", str(delta), offset=delta)


def to_datetime(text: str) -> ResetTarget:
    return ResetTarget("to-datetime", text, timestamp_ms=parse_datetime_ms(text))


def by_duration(text: str, now: datetime | None = None) -> ResetTarget:
    moment = (now or datetime.now(UTC)) - parse_duration(text)
    return ResetTarget("by-duration", text, timestamp_ms=int(moment.timestamp() * 1000))


def from_file(name: str, content: str, group: str) -> ResetTarget:
    return ResetTarget("from-file", name, requested=parse_reset_csv(content, group))


def parse_datetime_ms(text: str) -> int:
    """``YYYY-MM-DDTHH:mm:SS[.sss][Z|±hh:mm]``, as Kafka's tool takes it; without a zone, local time."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidResetRequest(
            f"--to-datetime {text!r}: expected YYYY-MM-DDTHH:mm:SS.sss, optionally with Z or ±hh:mm"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # Kafka's tool reads a zoneless time in the local zone too
    return int(moment.timestamp() * 1000)


# java.time.Duration.parse: PnDTnHnMn.nS, each part optional and signed, the whole optionally negated.
_DURATION = re.compile(
    r"(?P<neg>[-+]?)P(?:(?P<d>[-+]?\d+)D)?"
    r"(?:T(?:(?P<h>[-+]?\d+)H)?(?:(?P<m>[-+]?\d+)M)?(?:(?P<s>[-+]?\d+(?:[.,]\d{0,9})?)S)?)?",
    re.IGNORECASE,
)


def parse_duration(text: str) -> timedelta:
    """An ISO-8601 duration in Java's ``Duration.parse`` form, such as ``PT1H30M`` or ``P1DT12H``."""
    found = _DURATION.fullmatch(text.strip())
    if not found or text.strip().upper().endswith("T") or not any(found.group(g) for g in "dhms"):
        raise InvalidResetRequest(f"--by-duration {text!r}: expected an ISO-8601 duration such as PT1H30M or P1D")
    seconds = float((found.group("s") or "0").replace(",", "."))
    duration = timedelta(
        days=int(found.group("d") or 0),
        hours=int(found.group("h") or 0),
        minutes=int(found.group("m") or 0),
        seconds=seconds,
    )
    return -duration if found.group("neg") == "-" else duration


def parse_reset_csv(content: str, group: str) -> dict[TopicPartition, int]:
    """Kafka's ``--export`` format: ``topic,partition,offset`` lines, or ``group,topic,partition,offset``
    when several groups are in one file (then only this group's lines count)."""
    offsets: dict[TopicPartition, int] = {}
    for number, line in enumerate(content.splitlines(), start=1):
        fields = [f.strip() for f in line.split(",")]
        if not line.strip():
            continue
        if len(fields) == 4:
            if fields[0] != group:
                continue
            fields = fields[1:]
        if len(fields) != 3:
            raise InvalidResetRequest(f"line {number}: expected topic,partition,offset, got {line.strip()!r}")
        topic, partition, offset = fields
        try:
            offsets[TopicPartition(topic, int(partition))] = int(offset)
        except ValueError:
            problem = f"line {number}: partition and offset must be integers: {line.strip()!r}"
            raise InvalidResetRequest(problem) from None
    if not offsets:
        raise InvalidResetRequest(f"the reset file has no offsets for group {group!r}")
    return offsets
