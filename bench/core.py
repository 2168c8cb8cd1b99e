"""The batch core alone: µs of CPU per event through ``EventProcessor.process_batch``, no Kafka.

``python -m bench.core [--events 20000] [--batch 500] [--rounds 5] [--profile]``. The records are the
demo generator's mix, as the source topics hold them; the core runs with the default handlers,
metrics, replay detection and the outcome/command records, exactly as both engines call it. Beside it,
in the same interleaved rounds, the raw floor: orjson parsing each record and serializing it back
(what any JSON-in, JSON-out worker pays at least). The garbage collector is tuned as the worker's
(``salesflow.gc_policy``). ``--profile`` prints cProfile's top functions of
one extra round instead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import time
from collections.abc import Callable

import orjson

from salesflow.bootstrap import build_processor
from salesflow.domain.events import EventType
from salesflow.domain.records import RecordIn
from salesflow.handlers.registry import DEFAULT_REGISTRY
from salesflow.metrics import PipelineMetrics
from salesflow.processor.core import EventProcessor
from salesflow.producer.demo import DemoGenerator
from salesflow.producer.envelope import encode, record_key
from salesflow.settings import Settings

try:  # the services run with it, so the measures do
    from salesflow.gc_policy import tune_for_batches
except ImportError:  # an A/B against a commit from before it: its default collector

    def tune_for_batches() -> None:
        pass


def source_records(count: int, settings: Settings) -> list[RecordIn]:
    topics = settings.topics
    records = []
    for offset, event in enumerate(DemoGenerator(seed=11).events(count)):
        records.append(
            RecordIn(
                topic=topics.source(EventType(event["type"])),
                partition=0,
                offset=offset,
                timestamp_ms=int(time.time() * 1000),
                key=record_key(event),
                value=encode(event),
                headers=(("content-type", b"application/cloudevents+json"),),
            )
        )
    return records


def core_round(processor: EventProcessor, records: list[RecordIn], batch: int) -> float:
    """CPU seconds for the core over every record, in batches as the engines hand them over."""
    loop = asyncio.new_event_loop()
    try:
        started = time.process_time()
        for i in range(0, len(records), batch):
            loop.run_until_complete(processor.process_batch(records[i : i + batch]))
        return time.process_time() - started
    finally:
        loop.close()


def raw_round(records: list[RecordIn]) -> float:
    started = time.process_time()
    for record in records:
        orjson.dumps(orjson.loads(record.value or b""))
    return time.process_time() - started


def fresh_processor(settings: Settings) -> EventProcessor:
    # A fresh processor a round: the watermarks start empty, so no record counts as a replay.
    return build_processor(settings, PipelineMetrics(), DEFAULT_REGISTRY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    settings = Settings()
    records = source_records(args.events, settings)
    tune_for_batches()
    if args.profile:
        processor = fresh_processor(settings)
        core_round(processor, records[:1000], args.batch)  # warm up caches before the profile
        profiler = cProfile.Profile()
        profiler.runcall(core_round, fresh_processor(settings), records, args.batch)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        return
    runs: dict[str, list[float]] = {"core": [], "raw": []}
    rounds: dict[str, Callable[[], float]] = {
        "core": lambda: core_round(fresh_processor(settings), records, args.batch),
        "raw": lambda: raw_round(records),
    }
    for _ in range(args.rounds):
        for name, run in rounds.items():
            runs[name].append(run() / len(records) * 1e6)
    core, raw = statistics.median(runs["core"]), statistics.median(runs["raw"])
    print(f"{len(records):,} events, batches of {args.batch}, medians of {args.rounds} interleaved rounds (CPU time)")
    print("| measure | µs/event | events/s of one core |")
    print("| --- | --- | --- |")
    print(f"| batch core | {core:.1f} | {1e6 / core:,.0f} |")
    print(f"| raw floor: orjson parse + serialize | {raw:.1f} | {1e6 / raw:,.0f} |")


if __name__ == "__main__":
    main()
