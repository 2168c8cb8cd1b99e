"""Replay detection: the highest offset already processed on each source partition.

A record at or below its partition's watermark has been processed before, so it is a replay (after an
offset reset, or a redelivery after a crash): it recomputes its facts but does not count twice in the
business metrics or burn the freshness SLO. The marks live on a compacted topic, keyed by consumer
group, topic and partition, so they survive restarts and move with partitions between workers.
"""

from __future__ import annotations

from collections.abc import Iterable

from salesflow.domain.records import RecordOut

Partition = tuple[str, int]


class ReplayWatermarks:
    def __init__(self, group: str, topic: str) -> None:
        self.group = group
        self.topic = topic  # the compacted topic the marks are kept on
        self._marks: dict[Partition, int] = {}
        self._dirty: set[Partition] = set()

    def is_replay(self, topic: str, partition: int, offset: int) -> bool:
        return offset <= self._marks.get((topic, partition), -1)

    def advance(self, topic: str, partition: int, offset: int) -> None:
        if offset > self._marks.get((topic, partition), -1):
            self._marks[(topic, partition)] = offset
            self._dirty.add((topic, partition))

    def key(self, topic: str, partition: int) -> bytes:
        """The compacted topic's key of a partition's mark, for this group."""
        return f"{self.group}|{topic}|{partition}".encode()

    def parse(self, key: bytes | None, value: bytes | None) -> tuple[str, int, int] | None:
        """(topic, partition, offset) of a mark record of this group; None for anything else."""
        if key is None or value is None:
            return None
        text = key.decode("utf-8", "replace")
        if not text.startswith(f"{self.group}|"):
            return None
        topic, _, partition = text[len(self.group) + 1 :].rpartition("|")
        if not (partition.isdigit() and value.isdigit()):
            return None
        return topic, int(partition), int(value)

    def mark(self, topic: str, partition: int) -> int | None:
        return self._marks.get((topic, partition))

    def load(self, records: Iterable[tuple[bytes | None, bytes | None]]) -> None:
        """Take the marks of this group from the compacted topic's records (later records win)."""
        for key, value in records:
            parsed = self.parse(key, value)
            if parsed is not None:
                # Never move a mark back: this worker may already be past what the topic says.
                self.advance(*parsed)
        self._dirty.clear()

    def pending_records(self, partitions: Iterable[Partition] | None = None) -> list[RecordOut]:
        """The marks that moved since the last call (of ``partitions``, or all), as records for the
        compacted topic. Each engine's ledger asks for its own partitions only."""
        wanted = self._dirty if partitions is None else self._dirty.intersection(partitions)
        records = [
            RecordOut(topic=self.topic, key=self.key(t, p), value=str(self._marks[(t, p)]).encode())
            for t, p in sorted(wanted)
        ]
        self._dirty.difference_update(wanted)
        return records
