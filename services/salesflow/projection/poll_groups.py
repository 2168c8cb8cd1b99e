"""The items of one poll, grouped as the writer takes them, with each event id owned by one tenant.

An event belongs to the tenant that first sent its id: within a batch the first record of an id (by
the records' timestamps: a poll hands out partitions of several topics in no order of their own)
claims it for its tenant, and a later record of the same id from another tenant becomes an
``id_conflict`` rejection here; against the rows already in Postgres the writer decides the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

from salesflow.projection.rows import DeadLetterRow, Item, OutcomeRows, PendingRow, Rejection, RejectReason


@dataclass
class Batch:
    """The rows one poll of the projection's topics turns into, in the order they are written."""

    pending: dict[UUID, PendingRow] = field(default_factory=dict)
    outcomes: dict[UUID, OutcomeRows] = field(default_factory=dict)
    dead_letters: list[DeadLetterRow] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    owners: dict[UUID, str] = field(default_factory=dict)

    @classmethod
    def of(cls, items: Iterable[Item]) -> Batch:
        batch = cls()
        for item in sorted(items, key=_sent_at):  # stable: one partition's records stay in order
            batch.add(item)
        return batch

    def __len__(self) -> int:
        return len(self.pending) + len(self.outcomes) + len(self.dead_letters) + len(self.rejected)

    def add(self, item: Item) -> None:
        if isinstance(item, Rejection):
            self.rejected.append(item)
        elif not self._claim(item):
            self.rejected.append(conflict(item))
        elif isinstance(item, PendingRow):
            self.pending.setdefault(item.event_id, item)  # the first; a repeat carries the same event
        elif isinstance(item, OutcomeRows):
            kept = self.outcomes.get(item.event_id)
            # One row can take one upsert per statement: keep the newest outcome of an event here.
            if kept is None or kept.processed_at <= item.processed_at:
                self.outcomes[item.event_id] = item
        else:
            self.dead_letters.append(item)

    def _claim(self, item: PendingRow | OutcomeRows | DeadLetterRow) -> bool:
        """True when the item's tenant owns its event id in this batch (the first to name it does)."""
        if item.event_id is None or item.tenant_id is None:
            return True  # a dead letter that names no tenant claims nothing (and marks no owned row)
        owner = self.owners.get(item.event_id)
        if owner is None:
            if item.tenant_id is not None:
                self.owners[item.event_id] = item.tenant_id
            return True
        return owner == item.tenant_id


def conflict(item: PendingRow | OutcomeRows | DeadLetterRow) -> Rejection:
    """The rejection of a record whose event id another tenant owns."""
    return Rejection(
        item.record,
        RejectReason.ID_CONFLICT,
        f"event id {item.event_id} belongs to another tenant; this record (tenant {item.tenant_id!r}) is not merged",
        event_id=item.event_id,
        tenant_id=item.tenant_id,
    )


def _sent_at(item: Item) -> int:
    return item.record.timestamp_ms or 0
