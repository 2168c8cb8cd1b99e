"""What upcasting costs: the batch core on all-v2 records against a v1/v2 mix, no Kafka.

``python -m bench.upcast [--events 20000] [--batch 500] [--rounds 7]``. The demo generator's records
(``bench.core``), with every ``lead.created`` made v2 (``campaign`` into ``utm``, ``dataschema`` the
v2 URI) for the all-v2 stream, and every other one of them left v1 for the mix, so that the handlers
(written against v2) see half the leads through the v1 -> v2 upcaster. The same events, the same
handlers: what differs is the upcasting alone. Rounds interleave (all-v2, mix, all-v2, ...) so that
the machine's drift falls on both; the figures are medians of CPU time. The target: the mix within
5% of all-v2, per event of the stream.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import msgspec
import orjson

from bench.core import core_round, fresh_processor, source_records
from salesflow.domain.events import EventType
from salesflow.domain.records import RecordIn
from salesflow.domain.versions import schema_uri
from salesflow.settings import Settings

try:  # the services run with it, so the measures do
    from salesflow.gc_policy import tune_for_batches
except ImportError:  # pragma: no cover - an A/B against a commit from before it

    def tune_for_batches() -> None:
        pass


TARGET_PCT = 5.0
V2 = schema_uri(EventType.LEAD_CREATED, "v2")


def as_v2(event: dict[str, Any]) -> dict[str, Any]:
    """A v1 ``lead.created`` as its producer would send it as v2."""
    data = dict(event["data"])
    campaign = data.pop("campaign", None)
    if campaign is not None:
        data["utm"] = {"campaign": campaign}
    return {**event, "dataschema": V2, "data": data}


def streams(count: int, settings: Settings) -> tuple[list[RecordIn], list[RecordIn], int]:
    """(all v2, the mix, how many records of the mix are v1 lead.created)."""
    all_v2, mixed, v1, leads = [], [], 0, 0
    for record in source_records(count, settings):
        event = orjson.loads(record.value or b"")
        if event["type"] != EventType.LEAD_CREATED.value:
            all_v2.append(record)
            mixed.append(record)
            continue
        upgraded = msgspec.structs.replace(record, value=orjson.dumps(as_v2(event)))
        all_v2.append(upgraded)
        leads += 1
        keep_v1 = leads % 2 == 1  # every other lead.created
        mixed.append(record if keep_v1 else upgraded)
        v1 += keep_v1
    return all_v2, mixed, v1


def measure(events: int = 20_000, batch: int = 500, rounds: int = 7) -> dict[str, float]:
    """The report's figures (``bench/report.py`` TARGETS ``upcast_cost_pct``)."""
    settings = Settings()
    all_v2, mixed, v1 = streams(events, settings)
    tune_for_batches()
    runs: dict[str, list[float]] = {"all-v2": [], "mix": []}
    for _ in range(rounds):
        for name, records in (("all-v2", all_v2), ("mix", mixed)):
            runs[name].append(core_round(fresh_processor(settings), records, batch) / len(records) * 1e6)
    base, mix = statistics.median(runs["all-v2"]), statistics.median(runs["mix"])
    return {
        "upcast_all_v2_us_per_event": round(base, 3),
        "upcast_mix_us_per_event": round(mix, 3),
        "upcast_cost_pct": round((mix - base) / base * 100, 2),
        "upcast_us_per_v1_event": round((mix - base) * len(mixed) / max(v1, 1), 3),
        "upcast_mix_v1_share": round(v1 / len(mixed), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    found = measure(args.events, args.batch, args.rounds)
    base, mix, cost = found["upcast_all_v2_us_per_event"], found["upcast_mix_us_per_event"], found["upcast_cost_pct"]
    print(f"{args.events:,} events, {found['upcast_mix_v1_share']:.1%} of them v1 lead.created in the mix,")
    print(f"batches of {args.batch}, medians of {args.rounds} interleaved rounds (CPU time)")
    print("| stream | µs/event | events/s of one core |")
    print("| --- | --- | --- |")
    print(f"| all v2 | {base:.2f} | {1e6 / base:,.0f} |")
    print(f"| v1/v2 mix | {mix:.2f} | {1e6 / mix:,.0f} |")
    verdict = "met" if cost < TARGET_PCT else "NOT met"
    print(
        f"upcasting cost: {cost:+.1f}% per event of the stream ({found['upcast_us_per_v1_event']:.2f} µs per v1 event);"
    )
    print(f"target < {TARGET_PCT:g}%: {verdict}")


if __name__ == "__main__":
    main()
