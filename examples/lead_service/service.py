"""``LeadService.create_lead``: the lead and its event in one transaction (the old backend's shape)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from examples.lead_service.models import leads
from salesflow.domain.events import LeadSource
from salesflow.domain.topics import Topics
from salesflow.outbox import EventBus, OutboxEventBus
from salesflow.producer import LeadCreatedEvent, UtmFields


class LeadService:
    """Leads of one database session; events go through ``bus`` (the outbox bus by default)."""

    def __init__(self, session: AsyncSession, bus: EventBus | None = None, topics: Topics | None = None) -> None:
        self.session = session
        self.bus = bus or OutboxEventBus(session, topics)

    async def create_lead(
        self,
        tenant_id: str,
        *,
        name: str,
        email: str,
        source: LeadSource,
        campaign: str | None = None,
        owner_id: str | None = None,
        autopilot: bool = False,
        request_id: str | None = None,
    ) -> UUID:
        """Insert the lead and publish ``lead.created``, committing both or neither."""
        lead_id = uuid4()
        now = datetime.now(UTC)
        async with self.session.begin():
            await self.session.execute(
                insert(leads).values(
                    id=lead_id,
                    tenant_id=tenant_id,
                    name=name,
                    email=email,
                    source=source.value,
                    campaign=campaign,
                    owner_id=owner_id,
                    autopilot=autopilot,
                    created_at=now,
                )
            )
            event = LeadCreatedEvent(
                tenant_id=tenant_id,
                occurred_at=now,
                lead_id=str(lead_id),
                source=source,
                utm=None if campaign is None else UtmFields(campaign=campaign),
                owner_id=owner_id,
                autopilot=autopilot,
            )
            await self.bus.publish(event, request_id=request_id)
        return lead_id
