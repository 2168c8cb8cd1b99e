"""Upcasters: pure functions that turn a payload of one version into the next (v1 -> v2 -> ...).

Records stay on the topics as they were sent; a handler declares the version it takes and sees every
older record through the chain of upcasters (as the eventsourcing library's ``upcast_vX_vY`` and
Axon's upcasters do). The table ``UPCASTERS`` is the one place that says how; a new version of a type
comes with the upcaster from the version before it (``salesflow schemas check`` refuses it without).

An upcaster never fails on a payload its version accepts (``tests/unit/test_upcasting.py`` checks it
for every valid one, with Hypothesis), so a handler never sees a half-converted event.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import msgspec

from salesflow.domain.events import MODEL_VERSIONS, CloudEvent, LeadCreatedV1, LeadCreatedV2, LeadSourceV2, Payload, Utm

Upcaster = Callable[[Any], Payload]


def lead_created_v1_to_v2(v1: LeadCreatedV1) -> LeadCreatedV2:
    """``campaign`` moves into ``utm``; every v1 source is a v2 source. A v1 extra field named like a v2
    field (``utm``) stays out of the v2 payload: v1 never gave it that meaning (the stored payload
    keeps it)."""
    return LeadCreatedV2(
        lead_id=v1.lead_id,
        source=LeadSourceV2(v1.source.value),
        utm=None if v1.campaign is None else Utm(campaign=v1.campaign),
        channel=v1.channel,
        owner_id=v1.owner_id,
        autopilot=v1.autopilot,
        extra=_without(v1.extra, _V2_NAMES) if v1.extra else v1.extra,
    )


_V2_NAMES = frozenset(f.encode_name for f in msgspec.structs.fields(LeadCreatedV2) if f.encode_name)

# from model -> (to model, upcaster): each step goes up one version of one event type.
UPCASTERS: dict[type[Payload], tuple[type[Payload], Upcaster]] = {
    LeadCreatedV1: (LeadCreatedV2, lead_created_v1_to_v2),
}


class NoUpcastPath(ValueError):
    """No chain of upcasters leads from one payload version to another (an older one, or a sibling)."""

    def __init__(self, source: type[Payload], target: type[Payload], taker: str = "") -> None:
        wanted = f", which {taker} takes" if taker else ""
        super().__init__(f"no upcaster chain from {_name(source)} to {_name(target)}{wanted}")
        self.source = source
        self.target = target


@cache
def chain(source: type[Payload], target: type[Payload]) -> tuple[Upcaster, ...]:
    """The upcasters that turn a ``source`` payload into a ``target`` one, in order (empty: the same
    version); ``NoUpcastPath`` when there is none."""
    steps: list[Upcaster] = []
    at = source
    while at is not target:
        step = UPCASTERS.get(at)
        if step is None:
            raise NoUpcastPath(source, target)
        at, upcaster = step
        steps.append(upcaster)
    return tuple(steps)


def upcast_payload(payload: Payload, target: type[Payload]) -> Payload:
    for step in chain(type(payload), target):
        payload = step(payload)
    return payload


def upcast(event: CloudEvent[Any], target: type[Payload]) -> CloudEvent[Any]:
    """``event`` with its payload as a ``target`` (the envelope as it was: id, tenant, time, ...)."""
    if type(event.data) is target:
        return event
    return msgspec.structs.replace(event, data=upcast_payload(event.data, target))


def _without(extra: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in extra.items() if k not in names}


def _name(model: type[Payload]) -> str:
    return f"{model.__name__} ({MODEL_VERSIONS.get(model, '?')})"
