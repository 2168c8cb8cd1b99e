from __future__ import annotations

import json
import logging

from salesflow.domain.records import RecordIn
from salesflow.logs import JsonFormatter, record_fields


def test_a_line_about_an_event_carries_its_id_type_and_position() -> None:
    record = RecordIn(topic="salesflow.leads.v1", partition=2, offset=41, timestamp_ms=None, key=None, value=b"")
    line = logging.LogRecord(
        "salesflow.processor", logging.WARNING, __file__, 1, "dead-lettered: %s", ("not_json",), None
    )
    for key, value in record_fields(record, event_id="e-1", event_type="lead.created", reason="not_json").items():
        setattr(line, key, value)
    parsed = json.loads(JsonFormatter().format(line))
    assert parsed["message"] == "dead-lettered: not_json" and parsed["level"] == "warning"
    assert (parsed["topic"], parsed["partition"], parsed["offset"]) == ("salesflow.leads.v1", 2, 41)
    assert (parsed["event_id"], parsed["event_type"], parsed["reason"]) == ("e-1", "lead.created", "not_json")


def test_lines_without_event_fields_and_with_exceptions_stay_valid_json() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        line = logging.LogRecord("x", logging.ERROR, __file__, 1, "oops", (), sys.exc_info())
    parsed = json.loads(JsonFormatter().format(line))
    assert "event_id" not in parsed and "RuntimeError: boom" in parsed["exception"]
