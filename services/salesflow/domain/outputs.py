"""What handlers return: facts for the analytics tables, commands for other services, and metric
observations. Handlers decide; the transport edge does the I/O."""

from __future__ import annotations

import functools
import math
from datetime import datetime
from typing import ClassVar, Literal, get_args
from uuid import UUID, uuid5

import msgspec

from salesflow.domain.events import ActionOutcome, Channel, StepStatus
from salesflow.domain.limits import INT32_MAX, MONEY_MAX, NUL_MESSAGE, time_problem

FunnelStage = Literal["created", "contacted", "in_sequence", "sequence_completed"]
TouchKind = Literal["first_touch", "message"]


class Fact(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """A row of an analytics table, keyed by the event that produced it (replays overwrite it).

    Each subclass is one fact kind: its tag (``kind`` in the outcome record) names it, ``table`` is
    the table its rows go to, and its fields are that table's columns (see ``FACT_KINDS``).

    A fact checks itself when a handler makes it: a string with a NUL, a money value or count beyond
    its column, a naive time or one out of range raises ``ValueError`` in the handler, so that handler
    fails for that event with the reason, and the projection never meets the value."""

    table: ClassVar[str]
    money: ClassVar[tuple[str, ...]] = ()  # NUMERIC(14,6) columns
    counts: ClassVar[tuple[str, ...]] = ()  # INTEGER columns

    event_id: UUID
    tenant_id: str
    lead_id: str
    occurred_at: datetime

    @property
    def kind(self) -> str:
        """The fact kind, as the outcome record names it (its tag)."""
        return str(type(self).__struct_config__.tag)

    def __post_init__(self) -> None:
        problem = _fact_problem(self)
        if problem:
            raise ValueError(f"{type(self).__name__}.{problem}")


class FunnelFact(Fact, frozen=True, kw_only=True, tag="funnel"):
    table: ClassVar[str] = "funnel_facts"
    stage: FunnelStage


class AttributionTouch(Fact, frozen=True, kw_only=True, tag="attribution"):
    table: ClassVar[str] = "attribution_touches"
    touch: TouchKind
    source: str | None = None
    campaign: str | None = None
    channel: Channel | None = None
    autopilot_action_id: str | None = None


class AIActionFact(Fact, frozen=True, kw_only=True, tag="ai_action"):
    table: ClassVar[str] = "ai_action_facts"
    money: ClassVar[tuple[str, ...]] = ("cost_usd", "value_usd")
    counts: ClassVar[tuple[str, ...]] = ("tokens",)
    action_id: str
    action_type: str
    outcome: ActionOutcome
    model: str | None = None
    cost_usd: float
    value_usd: float
    tokens: int | None = None


class MessageFact(Fact, frozen=True, kw_only=True, tag="message"):
    table: ClassVar[str] = "message_facts"
    message_id: str
    channel: Channel
    queued_at: datetime
    sent_at: datetime
    latency_seconds: float
    sequence_id: str | None = None
    autopilot_action_id: str | None = None


class SequenceStepFact(Fact, frozen=True, kw_only=True, tag="sequence_step"):
    table: ClassVar[str] = "sequence_step_facts"
    counts: ClassVar[tuple[str, ...]] = ("step_index", "step_count")
    sequence_id: str
    step_index: int
    step_count: int | None = None
    action: str
    status: StepStatus
    completed: bool


FactModel = FunnelFact | AttributionTouch | AIActionFact | MessageFact | SequenceStepFact
AnyFact = FactModel  # the union is tagged by ``kind`` (msgspec picks the struct by it)

# The one list of fact kinds: kind (as the outcome record names it) -> its struct. The projection's rows
# and COPY columns, and the schema's table list, are derived from it.
FACT_KINDS: dict[str, type[Fact]] = {str(model.__struct_config__.tag): model for model in get_args(FactModel)}


def fact_columns(model: type[Fact]) -> tuple[str, ...]:
    """A fact kind's table columns, in order: its fields."""
    return tuple(f.name for f in msgspec.structs.fields(model))


def _fact_problem(fact: Fact) -> str | None:
    """Why a fact's value would not fit its table, as ``field: why``; None when every value fits."""
    texts, times, floats = _fields_to_check(type(fact))
    for field in texts:
        value = getattr(fact, field)
        if type(value) is str and "\x00" in value:
            return f"{field}: {NUL_MESSAGE}"
    for field in times:
        value = getattr(fact, field)
        if value is not None:
            problem = "a time needs a zone" if value.tzinfo is None else time_problem(value)
            if problem:
                return f"{field}: {problem}"
    for field in floats:
        value = getattr(fact, field)
        if value is not None and not math.isfinite(value):
            return f"{field}: not a finite number"
    for field in fact.money:
        value = getattr(fact, field)
        if value is not None and not 0 <= value <= MONEY_MAX:
            return f"{field}: {value!r} is outside 0 to {MONEY_MAX} (NUMERIC(14,6))"
    for field in fact.counts:
        value = getattr(fact, field)
        if value is not None and not 0 <= value <= INT32_MAX:
            return f"{field}: {value!r} is outside 0 to {INT32_MAX} (INTEGER)"
    return None


@functools.cache
def _fields_to_check(fact: type[Fact]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """A fact kind's fields that may hold text (strings, literals, enums), times, and floats: worked out
    once per kind, so a fact's check reads only those."""
    texts, times, floats = [], [], []
    for field in msgspec.structs.fields(fact):
        kinds = set(get_args(field.type)) - {type(None)} or {field.type}
        if datetime in kinds:
            times.append(field.name)
        elif float in kinds:
            floats.append(field.name)
        elif not kinds <= {UUID, int, bool}:
            texts.append(field.name)
    return tuple(texts), tuple(times), tuple(floats)


class Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """A request to another service, published on its topic. Its id derives from the causing event,
    so a replay publishes the same command id and consumers can drop the repeat."""

    command_id: UUID
    causation_id: UUID
    tenant_id: str
    lead_id: str
    requested_at: datetime


class AutopilotCommand(Command, frozen=True, kw_only=True, tag="autopilot_command"):
    command: Literal["start_autopilot"] = "start_autopilot"


class NotificationRequest(Command, frozen=True, kw_only=True, tag="notification"):
    recipient_id: str
    template: Literal["lead_assigned"] = "lead_assigned"


class Observation(msgspec.Struct, frozen=True, kw_only=True):
    """One sample for a business metric, applied by the dispatch wrapper (skipped on replays)."""

    metric: str
    value: float = 1.0
    labels: tuple[tuple[str, str], ...] = ()


Output = FactModel | Command | Observation


def derived_id(event_id: UUID, purpose: str) -> UUID:
    """A stable id for something an event causes: the same on every replay."""
    return uuid5(event_id, purpose)
