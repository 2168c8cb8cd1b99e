"""The projection alone, without Kafka: rows/s from records to committed rows, beside raw COPY.

``python -m bench.projection_core [--events 20000] [--batch 1000] [--rounds 3] [--profile]``. The
records are the demo generator's mix as the source topics hold them and the batch core's outcome
records for them, handed to the projection's own ``items_of`` and ``write_all`` (the next poll read
while one is written, as the service's loop does) in polls of ``--batch`` records (half sources,
half outcomes), against a database of the run's own on the local stack. Each round empties the
tables first. Beside it, in the same interleaved rounds, raw COPY of the same final rows
(``bench.throughput.raw_copy``). Reported: final rows (events and facts) per second of wall time,
and the projection process's own CPU per record (the rest is Postgres and the wait for it). The
garbage collector is tuned as the service's (``salesflow.gc_policy``).
``--profile`` prints cProfile's top functions of one extra round instead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import time
from typing import Any, cast

from aiokafka import ConsumerRecord

from bench.core import fresh_processor, source_records
from bench.stack import BenchStack
from bench.throughput import PROJECTION_TABLES, projection_rows, raw_copy
from salesflow.db.engine import create_engine
from salesflow.domain.records import RecordIn
from salesflow.metrics import PipelineMetrics
from salesflow.projection.service import Projection
from salesflow.settings import Settings

try:  # the service's loop: the next poll is read while a batch is written
    from salesflow.projection.service import WriteAhead
except ImportError:  # an A/B against a commit from before it: one poll after the other
    WriteAhead = None  # type: ignore[assignment,misc]

try:  # the services run with it, so the measures do
    from salesflow.gc_policy import tune_for_batches
except ImportError:  # an A/B against a commit from before it: its default collector

    def tune_for_batches() -> None:
        pass


async def outcome_records(records: list[RecordIn], settings: Settings) -> list[RecordIn]:
    """The outcome records the batch core makes of ``records``, as the projection reads them."""
    processor = fresh_processor(settings)
    outcomes = []
    for i in range(0, len(records), 500):
        for outs in await processor.process_batch(records[i : i + 500]):
            outcomes += [o for o in outs if o.topic == settings.topics.outcomes]
    now = int(time.time() * 1000)
    return [RecordIn(o.topic, 0, offset, now, o.key, o.value, tuple(o.headers)) for offset, o in enumerate(outcomes)]


def consumer_record(record: RecordIn) -> ConsumerRecord[bytes, bytes]:
    """As aiokafka hands it to the projection."""
    key, value = record.key or b"", record.value or b""
    return ConsumerRecord(
        record.topic,
        record.partition,
        record.offset,
        record.timestamp_ms or 0,
        0,
        key,
        value,
        None,
        len(key),
        len(value),
        list(record.headers),
    )


def polls(sources: list[Any], outcomes: list[Any], batch: int) -> list[list[Any]]:
    half = batch // 2
    return [sources[i : i + half] + outcomes[i : i + half] for i in range(0, max(len(sources), len(outcomes)), half)]


async def projection_round(
    projection: Projection, stack: BenchStack, batches: list[list[RecordIn]]
) -> tuple[float, float]:
    """Wall and CPU seconds for every poll written, the tables emptied first."""
    conn = await stack.connect()
    try:
        await conn.execute(f"TRUNCATE {', '.join(PROJECTION_TABLES)}")
    finally:
        await conn.close()
    wall, cpu = time.perf_counter(), time.process_time()
    if WriteAhead is None:
        for records in batches:
            await projection.write_all(projection.items_of(records))
    else:
        ahead = WriteAhead(projection.write_all)
        for records in batches:
            await ahead.submit(records, projection.items_of(records))
        await ahead.drain()
    return time.perf_counter() - wall, time.process_time() - cpu


async def run(args: argparse.Namespace) -> None:
    stack = BenchStack.open()
    await stack.create_database()
    try:
        settings = Settings(database_url=stack.database_url)
        sources = source_records(args.events, settings)
        outcomes = await outcome_records(sources, settings)
        sources, outcomes = [consumer_record(r) for r in sources], [consumer_record(r) for r in outcomes]
        tables, events = projection_rows([*sources, *outcomes], settings)
        rows = sum(len(t) for t in tables.values())
        batches = polls(sources, outcomes, args.batch)
        engine = create_engine(stack.database_url)
        projection = Projection(settings=settings, engine=engine, metrics=PipelineMetrics(), consumer=cast(Any, None))
        tune_for_batches()
        try:
            await projection_round(projection, stack, batches[:4])  # connections and staging tables made
            if args.profile:
                profiler = cProfile.Profile()
                profiler.enable()
                await projection_round(projection, stack, batches)
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
                return
            runs: dict[str, list[float]] = {"projection": [], "cpu": [], "copy": []}
            for _ in range(args.rounds):
                wall, cpu = await projection_round(projection, stack, batches)
                runs["projection"].append(rows / wall)
                runs["cpu"].append(cpu / (len(sources) + len(outcomes)) * 1e6)
                runs["copy"].append(await raw_copy(stack, tables))
        finally:
            await engine.dispose()
    finally:
        await stack.drop_database()
    proj, cpu, copy = (statistics.median(runs[k]) for k in ("projection", "cpu", "copy"))
    print(
        f"{events:,} events and {rows - events:,} facts from {len(sources) + len(outcomes):,} records, "
        f"polls of {args.batch}, medians of {args.rounds} interleaved rounds"
    )
    print("| measure | rows/s | ratio | projection CPU µs/record |")
    print("| --- | --- | --- | --- |")
    print(f"| projection (items_of + write_all) | {proj:,.0f} | {proj / copy:.3f} x COPY | {cpu:.1f} |")
    print(f"| raw COPY of the final rows | {copy:,.0f} | - | - |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
