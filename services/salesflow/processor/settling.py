"""What every engine does around the core, the same way: the replay marks of what is settled, the
marks reloaded when partitions are assigned, and the lag of what was processed. An engine is then
only a Kafka client: it reads, produces, acknowledges and commits with its own library.

A partition's offsets are committed once its records are acknowledged and its mark is written
(``processor.commits``). A mark that moved is written when its record is acknowledged; a mark that
did not move (a replay below it) is already on the compacted topic, so nothing waits for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from salesflow.domain.records import RecordIn, RecordOut
from salesflow.kafka_admin import read_topic
from salesflow.lag import LagTracker
from salesflow.processor.commits import CommitLedger
from salesflow.processor.core import EventProcessor
from salesflow.settings import Settings


class Settling:
    """One worker's marks and lag; each engine's ledgers settle through it."""

    def __init__(self, settings: Settings, processor: EventProcessor) -> None:
        self.settings = settings
        self.marks = processor.watermarks
        self.lag = LagTracker(processor.metrics, settings.processor_group)

    async def assigned(self) -> None:
        """Partitions came to this worker: another may have moved their marks since we last looked."""
        self.marks.load(await read_topic(self.settings, self.marks.topic))
        self.lag.forget()

    def processed(self, records: Sequence[RecordIn]) -> None:
        """The core is done with ``records``. Lag is a gauge: each partition's last record is enough."""
        for record in {(r.topic, r.partition): r for r in records}.values():
            seconds = record.timestamp_ms / 1000 if record.timestamp_ms is not None else None
            self.lag.processed(record.topic, record.partition, record.offset, seconds)

    def marks_to_publish(self, ledger: CommitLedger) -> list[RecordOut]:
        """Move the marks of what ``ledger`` has settled; the mark records to publish. Each must be
        handed to ``mark_acknowledged`` once the broker has it, to free its partition's commit."""
        settled = ledger.settled()
        if not settled:
            return []
        for (topic, partition), offset in settled.items():
            self.marks.advance(topic, partition, offset)
        records = self.marks.pending_records(settled)
        moved = {record.key for record in records}
        for (topic, partition), offset in settled.items():
            if self.marks.key(topic, partition) not in moved:
                ledger.mark_written(topic, partition, offset)
        return records

    def mark_acknowledged(self, ledger: CommitLedger, key: bytes | None, value: bytes | None) -> None:
        parsed = self.marks.parse(key, value)
        if parsed is not None:
            ledger.mark_written(*parsed)
