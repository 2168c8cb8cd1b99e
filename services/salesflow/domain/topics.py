"""Topic names, derived from one configurable prefix."""

from __future__ import annotations

from dataclasses import dataclass

from salesflow.domain.events import EventType

# Where each event type is published: one topic per producing domain.
SOURCE_TOPIC_SUFFIX: dict[EventType, str] = {
    EventType.LEAD_CREATED: "leads.v1",
    EventType.AUTOPILOT_ACTION_EXECUTED: "autopilot.v1",
    EventType.MESSAGE_SENT: "messages.v1",
    EventType.SEQUENCE_STEP_EXECUTED: "sequences.v1",
}


@dataclass(frozen=True)
class Topics:
    """All topic names of the pipeline for one prefix (default ``salesflow.``)."""

    prefix: str = "salesflow."

    def source(self, event_type: EventType) -> str:
        return self.prefix + SOURCE_TOPIC_SUFFIX[event_type]

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.source(t) for t in EventType)

    @property
    def outcomes(self) -> str:
        return self.prefix + "outcomes.v1"

    @property
    def deadletter(self) -> str:
        return self.prefix + "deadletter.v1"

    @property
    def autopilot_commands(self) -> str:
        return self.prefix + "autopilot.commands.v1"

    @property
    def notifications(self) -> str:
        return self.prefix + "notifications.v1"

    @property
    def watermarks(self) -> str:
        """Compacted: the processor's highest processed offset per source partition (replay detection)."""
        return self.prefix + "processor.watermarks.v1"

    @property
    def compacted(self) -> tuple[str, ...]:
        return (self.watermarks,)

    @property
    def all(self) -> tuple[str, ...]:
        return (
            *self.sources,
            self.outcomes,
            self.deadletter,
            self.autopilot_commands,
            self.notifications,
            self.watermarks,
        )
