"""The commit rule, written once for both worker engines.

A source record's offset becomes committable only when, in read order on its partition,

1. every record it produced (outcome, commands or dead letter) is acknowledged by the broker, and
2. the partition's replay watermark covering it is written (its own record acknowledged too).

A delivery that fails for good is kept as ``failure``: the engine stops instead of committing past it,
so the records are read again after a restart. The ledger is plain bookkeeping (no Kafka client):
the engines tell it what they read and what the broker acknowledged, and ask it what to mark and
what to commit.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

Partition = tuple[str, int]


@dataclass
class Ticket:
    """One source record in flight: how many of its records the broker has yet to acknowledge."""

    partition: Partition
    offset: int
    pending: int


class CommitLedger:
    """Source records in flight per partition, in read order, and the offsets they free for commit."""

    def __init__(self) -> None:
        self._reads: dict[Partition, deque[Ticket]] = {}
        self._committable: dict[Partition, int] = {}
        self.failure: BaseException | None = None

    def read(self, topic: str, partition: int, offset: int, outputs: int) -> Ticket:
        """Track a record, in read order, that produced ``outputs`` records to be acknowledged."""
        ticket = Ticket((topic, partition), offset, outputs)
        self._reads.setdefault(ticket.partition, deque()).append(ticket)
        return ticket

    def delivered(self, ticket: Ticket) -> None:
        """The broker acknowledged one of the ticket's records."""
        ticket.pending -= 1

    def failed(self, error: BaseException) -> None:
        """A delivery failed for good: nothing past it may be committed (the first failure is kept)."""
        if self.failure is None:
            self.failure = error

    def settled(self) -> dict[Partition, int]:
        """Per partition, the highest offset whose record and every record read before it are fully
        acknowledged, since the last call: the offsets the watermarks may now move to."""
        moved: dict[Partition, int] = {}
        for partition, tickets in self._reads.items():
            while tickets and tickets[0].pending <= 0:
                moved[partition] = tickets.popleft().offset
        return moved

    def mark_written(self, topic: str, partition: int, offset: int) -> None:
        """The watermark record saying ``offset`` was processed is acknowledged: commit up to it."""
        key = (topic, partition)
        self._committable[key] = max(self._committable.get(key, 0), offset + 1)

    def take_committable(self) -> dict[Partition, int]:
        """The next offsets to commit (Kafka's convention: the next record to read), since the last call."""
        taken, self._committable = self._committable, {}
        return taken

    def in_flight(self) -> int:
        """Records read and not yet settled, over all partitions."""
        return sum(len(t) for t in self._reads.values())

    def forget(self, partitions: list[Partition]) -> None:
        """Partitions taken away: what was in flight on them will be read again by their new owner."""
        for partition in partitions:
            self._reads.pop(partition, None)
            self._committable.pop(partition, None)
