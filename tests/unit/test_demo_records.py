"""The demo's invalid records (issue 11, defect 8): each is refused for the reason it is labelled with,
and each that names an event id names its own, so the dead-letter counts add up."""

from __future__ import annotations

import pytest

from salesflow.domain.decoding import decode_event
from salesflow.errors import InvalidEvent
from salesflow.producer.demo import invalid_records


def test_each_invalid_record_is_refused_for_its_reason_with_its_own_id() -> None:
    ids: list[str] = []
    records = invalid_records(12)
    assert len(records) == 12
    for value, reason in records:
        with pytest.raises(InvalidEvent) as caught:
            decode_event(value, max_bytes=64 * 1024)
        assert caught.value.reason == reason
        if caught.value.event_id is not None:
            ids.append(caught.value.event_id)
    assert len(ids) == 6  # of each 5 kinds, 3 carry an id (not JSON and not an object cannot): 3 + 3 + 0
    assert len(set(ids)) == len(ids)
