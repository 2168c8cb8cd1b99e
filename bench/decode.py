"""Decoding micro-benchmark: µs per record for each event type and for invalid records, per decoder.

``python -m bench.decode [--rounds 7] [--calls 2000]``. The candidates take turns (interleaved rounds on
the same records, the demo generator's mix), so a busy machine slows them alike, and each is timed in
CPU time of this process; medians and minima of the rounds are printed as a Markdown table. No Kafka,
no database.

Candidates:
- ``before``: what ``decode_event`` did before this change: orjson to a dict (its errors as reasons),
  then the envelope model validates the dict (``validate_envelope``); no duplicate-key check;
- ``decode_event``: the decoder as it is (orjson, the duplicate-key gate, dict validation; content mode
  checked);
- ``pydantic_json``: pydantic-core's ``model_validate_json`` on the bytes, into the envelope model the
  record's type names, no duplicate-key check (the JSON-bytes alternative, as a floor);
- ``jiter_dict``: jiter parsing with its duplicate-key check, then dict validation (the other way to
  check duplicates in one parse);
- ``msgspec``: msgspec decoding into hand-written Structs of the same shape (a floor for a msgspec
  decoder; it is not a candidate as such: its Structs would be a second copy of the contract's
  constraints, and handlers would still need the pydantic model).
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import jiter
import msgspec
import orjson

from salesflow.domain import decoding
from salesflow.domain.events import DEFAULT_SCHEMA_VERSION, EventType, payload_model
from salesflow.errors import DeadLetterReason as Reason
from salesflow.errors import InvalidEvent
from salesflow.producer.demo import DemoGenerator, invalid_records
from salesflow.producer.envelope import encode

MAX_BYTES = 1 << 20
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class _Envelope(msgspec.Struct, tag_field="type"):
    specversion: Literal["1.0"]
    id: UUID
    source: str
    time: datetime
    tenantid: Id
    requestid: str | None = None
    dataschema: str | None = None
    datacontenttype: str | None = None


class _Lead(msgspec.Struct):
    lead_id: Id
    source: Literal["manual", "zero_input", "import", "web_form", "api", "referral"]
    campaign: str | None = None
    channel: Literal["whatsapp", "email", "linkedin", "sms"] | None = None
    owner_id: str | None = None
    autopilot: bool = False


class _Action(msgspec.Struct):
    lead_id: Id
    action_id: Id
    action_type: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    cost_usd: NonNegative
    outcome: Literal["succeeded", "failed", "skipped"]
    model: str | None = None
    tokens: Annotated[int, msgspec.Meta(ge=0)] | None = None
    value_usd: NonNegative | None = None


class _Message(msgspec.Struct):
    lead_id: Id
    message_id: Id
    channel: Literal["whatsapp", "email", "linkedin", "sms"]
    queued_at: datetime
    sent_at: datetime
    sequence_id: str | None = None
    autopilot_action_id: str | None = None


class _Step(msgspec.Struct):
    lead_id: Id
    sequence_id: Id
    step_index: Annotated[int, msgspec.Meta(ge=0)]
    action: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    status: Literal["executed", "skipped", "failed"]
    step_count: Annotated[int, msgspec.Meta(ge=1)] | None = None


class _LeadEvent(_Envelope, tag="lead.created"):
    data: _Lead | None = None


class _ActionEvent(_Envelope, tag="autopilot.action_executed"):
    data: _Action | None = None


class _MessageEvent(_Envelope, tag="message.sent"):
    data: _Message | None = None


class _StepEvent(_Envelope, tag="sequence.step_executed"):
    data: _Step | None = None


_MSGSPEC = msgspec.json.Decoder(_LeadEvent | _ActionEvent | _MessageEvent | _StepEvent)


def _quiet(decode: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def run(value: bytes) -> Any:
        try:
            return decode(value)
        except Exception as exc:  # every candidate's own error type: invalid records are measured too
            return exc

    return run


def _before_loads(value: bytes) -> Any:
    # The JSON step of decode_event before duplicate keys were checked: orjson, errors as reasons.
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidEvent(Reason.INVALID_UTF8, "the value is not valid UTF-8") from None
        raise InvalidEvent(Reason.NOT_JSON, f"the value is not JSON: {exc}") from None


_TYPE = re.compile(rb'"type"\s*:\s*"([^"\\]*)"')


def _pydantic_json(value: bytes) -> Any:
    match = _TYPE.search(value)
    event_type = EventType(match.group(1).decode() if match else "")
    model = payload_model(event_type, DEFAULT_SCHEMA_VERSION)
    return decoding._envelope_model(model).model_validate_json(value)


CANDIDATES: dict[str, Callable[[bytes], Any]] = {
    "before": _quiet(lambda v: decoding.validate_envelope(_before_loads(v))),
    "decode_event": _quiet(lambda v: decoding.decode_event(v, (), max_bytes=MAX_BYTES)),
    "pydantic_json": _quiet(_pydantic_json),
    "jiter_dict": _quiet(lambda v: decoding.validate_envelope(jiter.from_json(v, catch_duplicate_keys=True))),
    "msgspec": _quiet(_MSGSPEC.decode),
}


def record_sets(count: int = 4000) -> dict[str, list[bytes]]:
    """The demo generator's events by type, and two kinds of invalid record."""
    sets: dict[str, list[bytes]] = {t.value: [] for t in EventType}
    for event in DemoGenerator(seed=11).events(count):
        sets[event["type"]].append(encode(event))
    bad = {reason: value or b"" for value, reason in invalid_records()}
    sets["invalid: invalid_field"] = [bad["invalid_field"]]
    sets["invalid: not_json"] = [bad["not_json"]]
    return sets


def _time(decode: Callable[[bytes], Any], values: list[bytes], calls: int) -> float:
    n = len(values)
    start = time.process_time()  # CPU time: other processes on a busy machine do not count
    for i in range(calls):
        decode(values[i % n])
    return (time.process_time() - start) / calls * 1e6


def measure(rounds: int, calls: int) -> dict[tuple[str, str], list[float]]:
    sets = record_sets()
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for name, values in sets.items():
            for candidate, decode in CANDIDATES.items():
                results.setdefault((name, candidate), []).append(_time(decode, values, calls))
    return results


def table(results: dict[tuple[str, str], list[float]]) -> str:
    names = list(dict.fromkeys(name for name, _ in results))
    lines = [
        "| records | " + " | ".join(CANDIDATES) + " |",
        "| --- | " + " | ".join("---:" for _ in CANDIDATES) + " |",
    ]
    for name in names:
        cells = [f"{statistics.median(results[name, c]):.1f} ({min(results[name, c]):.1f})" for c in CANDIDATES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    print("µs per record, median of rounds (minimum in parentheses)")
    print(table(measure(args.rounds, args.calls)))


if __name__ == "__main__":
    main()
