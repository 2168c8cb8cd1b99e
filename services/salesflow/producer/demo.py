"""A demo and load generator: realistic leads that go created -> messages -> sequence steps, with
autopilot actions that cost money and sometimes earn it, across several tenants.

Deterministic for a seed, so tests can rely on the numbers. Each lead's events keep their order;
leads are interleaved, as a busy CRM's are.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from salesflow.domain.events import EventType
from salesflow.producer.envelope import encode, envelope

Clock = Callable[[], datetime]

TENANTS = ("acme", "globex", "initech", "umbrella")
LEAD_SOURCES = (("web_form", 30), ("zero_input", 20), ("import", 15), ("api", 15), ("referral", 10), ("manual", 10))
CHANNELS = (("email", 45), ("whatsapp", 30), ("linkedin", 15), ("sms", 10))
CAMPAIGNS = ("spring-promo", "webinar-q4", "partner-referral", None)
ACTIONS = (("send_message", 50), ("qualify_lead", 30), ("schedule_followup", 20))
MODELS = ("gpt-4o-mini", "claude-haiku", "llama-3-70b")
SEQUENCE_ACTIONS = ("email", "wait", "task", "linkedin")
ACTIVE_LEADS = 32  # how many leads are mid-journey at once


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


class DemoGenerator:
    def __init__(self, seed: int = 7, clock: Clock | None = None) -> None:
        self.rng = random.Random(seed)
        self.clock = clock or (lambda: datetime.now(UTC))

    def _uuid(self) -> UUID:
        return UUID(int=self.rng.getrandbits(128), version=4)

    def events(self, count: int) -> Iterator[dict[str, Any]]:
        """Exactly ``count`` events, leads interleaved, each lead's journey in order."""
        journeys: list[Iterator[dict[str, Any]]] = []
        produced = 0
        while produced < count:
            while len(journeys) < ACTIVE_LEADS:
                journeys.append(self._journey())
            journey = self.rng.choice(journeys)
            event = next(journey, None)
            if event is None:
                journeys.remove(journey)
                continue
            produced += 1
            yield event

    def _journey(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        tenant = rng.choice(TENANTS)
        lead_id = f"lead-{self._uuid().hex[:12]}"
        autopilot = rng.random() < 0.4
        yield self._event(
            EventType.LEAD_CREATED,
            tenant,
            {
                "lead_id": lead_id,
                "source": _weighted(rng, LEAD_SOURCES),
                "campaign": rng.choice(CAMPAIGNS),
                "channel": _weighted(rng, CHANNELS),
                "owner_id": f"user-{rng.randint(1, 12)}",
                "autopilot": autopilot,
            },
        )
        action_ids: list[str] = []
        if autopilot:
            for _ in range(rng.randint(1, 3)):
                action_ids.append(f"act-{self._uuid().hex[:12]}")
                yield self._event(EventType.AUTOPILOT_ACTION_EXECUTED, tenant, self._action(lead_id, action_ids[-1]))
        sequence_id = f"seq-{rng.randint(1, 6)}"
        for _ in range(rng.randint(1, 3)):
            yield self._event(EventType.MESSAGE_SENT, tenant, self._message(lead_id, sequence_id, action_ids))
        step_count = rng.randint(3, 5)
        for step_index in range(rng.randint(1, step_count)):
            yield self._event(
                EventType.SEQUENCE_STEP_EXECUTED,
                tenant,
                {
                    "lead_id": lead_id,
                    "sequence_id": sequence_id,
                    "step_index": step_index,
                    "step_count": step_count,
                    "action": rng.choice(SEQUENCE_ACTIONS),
                    "status": rng.choices(["executed", "skipped", "failed"], weights=[90, 7, 3])[0],
                },
            )

    def _action(self, lead_id: str, action_id: str) -> dict[str, Any]:
        rng = self.rng
        outcome = rng.choices(["succeeded", "failed", "skipped"], weights=[85, 10, 5])[0]
        earns = outcome == "succeeded" and rng.random() < 0.12
        return {
            "lead_id": lead_id,
            "action_id": action_id,
            "action_type": _weighted(rng, ACTIONS),
            "model": rng.choice(MODELS),
            "cost_usd": round(rng.uniform(0.02, 0.60), 6),
            "tokens": rng.randint(200, 4000),
            "outcome": outcome,
            "value_usd": round(rng.uniform(5, 250), 2) if earns else 0.0,
        }

    def _message(self, lead_id: str, sequence_id: str, action_ids: list[str]) -> dict[str, Any]:
        rng = self.rng
        sent_at = self.clock()
        # Most messages leave within seconds; a few sit in a provider queue for minutes.
        latency = rng.uniform(0.2, 20) if rng.random() < 0.99 else rng.uniform(60, 600)
        return {
            "lead_id": lead_id,
            "message_id": f"msg-{self._uuid().hex[:12]}",
            "channel": _weighted(rng, CHANNELS),
            "queued_at": _iso(sent_at - timedelta(seconds=latency)),
            "sent_at": _iso(sent_at),
            "sequence_id": sequence_id,
            "autopilot_action_id": rng.choice(action_ids) if action_ids else None,
        }

    def _event(self, event_type: EventType, tenant: str, data: dict[str, Any]) -> dict[str, Any]:
        return envelope(event_type, tenant, data, event_id=self._uuid(), time=self.clock())


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def invalid_records(count: int = 5) -> list[tuple[bytes | None, str]]:
    """``count`` bad records for the demo, each with the reason the processor should give. The kinds
    repeat in turn; each record that carries an event id carries its own, so each is one event."""
    return [_invalid_record(n) for n in range(count)]


def _invalid_record(n: int) -> tuple[bytes | None, str]:
    good = envelope(EventType.LEAD_CREATED, "acme", {"lead_id": f"lead-bad-{n}", "source": "api"})
    kinds: list[tuple[bytes | None, str]] = [
        (b"this is not json", "not_json"),
        (b"[1, 2, 3]", "not_an_object"),
        (encode({**good, "type": "lead.deleted"}), "unknown_type"),
        (encode({k: v for k, v in good.items() if k != "tenantid"}), "missing_field"),
        (encode({**good, "data": {"lead_id": good["data"]["lead_id"], "source": "carrier_pigeon"}}), "invalid_field"),
    ]
    return kinds[n % len(kinds)]
