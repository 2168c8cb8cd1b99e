"""Decoding micro-benchmark: µs per record for each event type and for invalid records, per decoder.

``python -m bench.decode [--rounds 7] [--calls 2000]``. The candidates take turns (interleaved rounds on
the same records, the demo generator's mix), so a busy machine slows them alike, and each is timed in
CPU time of this process; medians and minima of the rounds are printed as a Markdown table. No Kafka,
no database.

Candidates:
- ``before``: orjson to a dict (its errors as reasons), then ``validate_envelope``; no duplicate-key
  check;
- ``decode_event``: the decoder as it is (orjson, the duplicate-key gate, the extra-field and NUL rules,
  ``msgspec.convert`` into the contract's structs; content mode checked);
- ``struct_bytes``: msgspec decoding the bytes straight into the contract's envelope struct for the
  record's type: no duplicate-key check, no extra-field or NUL rule (the one-parse alternative, as a
  floor);
- ``jiter_dict``: jiter parsing with its duplicate-key check, then dict validation (the other way to
  check duplicates in one parse).
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Callable
from functools import cache
from typing import Any

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


@cache
def _struct_decoder(event_type: str) -> msgspec.json.Decoder[Any]:
    model = payload_model(EventType(event_type), DEFAULT_SCHEMA_VERSION)
    assert model is not None
    return msgspec.json.Decoder(decoding._envelope_model(model))


def _struct_bytes(value: bytes) -> Any:
    match = _TYPE.search(value)
    return _struct_decoder(match.group(1).decode() if match else "").decode(value)


CANDIDATES: dict[str, Callable[[bytes], Any]] = {
    "before": _quiet(lambda v: decoding.validate_envelope(_before_loads(v))),
    "decode_event": _quiet(lambda v: decoding.decode_event(v, (), max_bytes=MAX_BYTES)),
    "struct_bytes": _quiet(_struct_bytes),
    "jiter_dict": _quiet(lambda v: decoding.validate_envelope(jiter.from_json(v, catch_duplicate_keys=True))),
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
