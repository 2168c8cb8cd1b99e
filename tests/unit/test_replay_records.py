"""Pure pieces of per-event replay and redrive: naming dead letters, finding a record's event id."""

from __future__ import annotations

import orjson
import pytest

from salesflow.domain.records import RecordIn
from salesflow.errors import ReplayError
from salesflow.replay.deadletters import DeadLetterId
from salesflow.replay.republish import record_event_id

ID = "0f8e5c1a-3b7d-4d6e-9a63-1d2b3c4d5e6f"


def test_dead_letter_ids_round_trip() -> None:
    ident = DeadLetterId.parse("salesflow.leads.v1:2:17")
    assert ident == DeadLetterId("salesflow.leads.v1", 2, 17) and str(ident) == "salesflow.leads.v1:2:17"
    for bad in ("", "topic", "topic:1", ":1:2", "t:x:2", "t:1:y"):
        with pytest.raises(ReplayError, match="topic:partition:offset"):
            DeadLetterId.parse(bad)


def record(value: bytes | None, headers: tuple[tuple[str, bytes], ...] = ()) -> RecordIn:
    return RecordIn(topic="t", partition=0, offset=0, timestamp_ms=None, key=None, value=value, headers=headers)


def test_the_event_id_of_a_record_in_either_mode() -> None:
    assert record_event_id(record(orjson.dumps({"id": ID, "type": "lead.created"}))) == ID
    assert record_event_id(record(b'{"lead_id": "l"}', (("ce_id", ID.encode()),))) == ID
    assert record_event_id(record(b"not json")) is None
    assert record_event_id(record(b"[1, 2]")) is None
    assert record_event_id(record(orjson.dumps({"id": 5}))) is None
    assert record_event_id(record(None)) is None
