"""What handlers return: facts for the analytics tables, commands for other services, and metric
observations. Handlers decide; the transport edge does the I/O."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal, get_args
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field

from salesflow.domain.events import ActionOutcome, Channel, StepStatus

FunnelStage = Literal["created", "contacted", "in_sequence", "sequence_completed"]
TouchKind = Literal["first_touch", "message"]


class Fact(BaseModel):
    """A row of an analytics table, keyed by the event that produced it (replays overwrite it).

    Each subclass is one fact kind: its ``kind`` literal names it in the outcome record, ``table`` is
    the table its rows go to, and its other fields are that table's columns (see ``FACT_KINDS``)."""

    model_config = ConfigDict(frozen=True)
    table: ClassVar[str]

    event_id: UUID
    tenant_id: str
    lead_id: str
    occurred_at: datetime


class FunnelFact(Fact):
    table: ClassVar[str] = "funnel_facts"
    kind: Literal["funnel"] = "funnel"
    stage: FunnelStage


class AttributionTouch(Fact):
    table: ClassVar[str] = "attribution_touches"
    kind: Literal["attribution"] = "attribution"
    touch: TouchKind
    source: str | None = None
    campaign: str | None = None
    channel: Channel | None = None
    autopilot_action_id: str | None = None


class AIActionFact(Fact):
    table: ClassVar[str] = "ai_action_facts"
    kind: Literal["ai_action"] = "ai_action"
    action_id: str
    action_type: str
    outcome: ActionOutcome
    model: str | None = None
    cost_usd: float
    value_usd: float
    tokens: int | None = None


class MessageFact(Fact):
    table: ClassVar[str] = "message_facts"
    kind: Literal["message"] = "message"
    message_id: str
    channel: Channel
    queued_at: datetime
    sent_at: datetime
    latency_seconds: float
    sequence_id: str | None = None
    autopilot_action_id: str | None = None


class SequenceStepFact(Fact):
    table: ClassVar[str] = "sequence_step_facts"
    kind: Literal["sequence_step"] = "sequence_step"
    sequence_id: str
    step_index: int
    step_count: int | None = None
    action: str
    status: StepStatus
    completed: bool


FactModel = FunnelFact | AttributionTouch | AIActionFact | MessageFact | SequenceStepFact
AnyFact = Annotated[FactModel, Field(discriminator="kind")]

# The one list of fact kinds: kind (as the outcome record names it) -> its model. The projection's rows
# and COPY columns, and the schema's table list, are derived from it.
FACT_KINDS: dict[str, type[Fact]] = {model.model_fields["kind"].default: model for model in get_args(FactModel)}


class Command(BaseModel):
    """A request to another service, published on its topic. Its id derives from the causing event,
    so a replay publishes the same command id and consumers can drop the repeat."""

    model_config = ConfigDict(frozen=True)

    command_id: UUID
    causation_id: UUID
    tenant_id: str
    lead_id: str
    requested_at: datetime


class AutopilotCommand(Command):
    kind: Literal["autopilot_command"] = "autopilot_command"
    command: Literal["start_autopilot"] = "start_autopilot"


class NotificationRequest(Command):
    kind: Literal["notification"] = "notification"
    recipient_id: str
    template: Literal["lead_assigned"] = "lead_assigned"


class Observation(BaseModel):
    """One sample for a business metric, applied by the dispatch wrapper (skipped on replays)."""

    model_config = ConfigDict(frozen=True)

    metric: str
    value: float = 1.0
    labels: tuple[tuple[str, str], ...] = ()


Output = FactModel | Command | Observation


def derived_id(event_id: UUID, purpose: str) -> UUID:
    """A stable id for something an event causes: the same on every replay."""
    return uuid5(event_id, purpose)
