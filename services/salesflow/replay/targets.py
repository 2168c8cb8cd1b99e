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


# Kafka's ``Utils.getDateTime``: SimpleDateFormat ``yyyy-MM-dd'T'HH:mm:ss.SSSX``, the milliseconds
# required (1 to 3 digits), the zone optional (``Z``, ``±hh``, ``±hhmm`` or ``±hh:mm``) and UTC without one.
_KAFKA_DATETIME = re.compile(
    r"(?P<local>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.(?P<ms>\d{1,3}))(?P<zone>Z|[+-]\d{2}(?::?\d{2})?)?"
)
DATETIME_FORMAT = "YYYY-MM-DDTHH:mm:SS.sss, optionally with a zone (Z, ±hh, ±hhmm or ±hh:mm; UTC without one)"


def parse_datetime_ms(text: str) -> int:
    """``YYYY-MM-DDTHH:mm:SS.sss[Z|±hh[:mm]]``, refused and read exactly as Kafka's tool does."""
    value = text.strip()
    if "T" not in value:
        raise InvalidResetRequest(
            f"--to-datetime {text!r}: error parsing timestamp: it does not contain a 'T' according to ISO8601 "
            f"format; expected {DATETIME_FORMAT}"
        )
    found = _KAFKA_DATETIME.fullmatch(value)
    moment = _datetime(found) if found else None
    if moment is None:
        raise InvalidResetRequest(f"--to-datetime {text!r}: unparseable date; expected {DATETIME_FORMAT}")
    return int(moment.timestamp() * 1000)


def _datetime(found: re.Match[str]) -> datetime | None:
    zone = found.group("zone") or "Z"
    if zone != "Z" and len(zone) == 3:
        zone += ":00"
    local = found.group("local")[: -len(found.group("ms"))] + found.group("ms").ljust(3, "0")
    try:
        return datetime.fromisoformat(local + zone.replace("Z", "+00:00"))
    except ValueError:  # a month 13, a day 32, ...
        return None


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
    when several groups are in one file (then only this group's lines count). A negative offset or
    partition is refused, as Kafka's tool refuses it."""
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
            tp, new = TopicPartition(topic, int(partition)), int(offset)
        except ValueError:
            problem = f"line {number}: partition and offset must be integers: {line.strip()!r}"
            raise InvalidResetRequest(problem) from None
        # Kafka's tool refuses these (``new OffsetAndMetadata(-1)``: "Invalid negative offset") rather
        # than clamping them to the log start as it clamps an offset that is merely too low.
        if new < 0:
            raise InvalidResetRequest(f"line {number}: invalid negative offset {new} for {topic}-{tp.partition}")
        if tp.partition < 0:
            raise InvalidResetRequest(f"line {number}: invalid negative partition {tp.partition} of {topic}")
        offsets[tp] = new
    if not offsets:
        raise InvalidResetRequest(f"the reset file has no offsets for group {group!r}")
    return offsets
